"""A search for a project's name (README, "Benchmarks").

Its numbers are paged newest first by an index of (project, id) (search.newest_by_text),
where by the project alone PostgreSQL read all of them, or walked the whole table's ids down
to the project's newest. It serves every lookup by project, so the foreign key's own index
goes, after the new one is built.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("phone_numbers", "0020_space_number_search_rows"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="numberimport",
            index=models.Index(fields=["project", "id"], name="numberimport_project_rows"),
        ),
        migrations.AlterField(
            model_name="numberimport",
            name="project",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="numbers",
                to="phone_numbers.project",
            ),
        ),
    ]
