"""The job page and the jobs list at a 50,000-number job (README, "Benchmarks").

A job's rows are listed by id: an index of (job, id) finds a large job's first page at once,
where the job's index alone left PostgreSQL walking the whole table's ids (385 ms at 50,000
of a million numbers). It also serves every lookup by job, so the foreign key's own index
goes. The counts by status read (job, status, attempts) alone, never the table (118 ms of table
reads at 50,000); it replaces (job, status), which it begins with.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("phone_numbers", "0012_space_host_checks"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="numberimport",
            index=models.Index(fields=["job", "id"], name="numberimport_job_rows"),
        ),
        migrations.AddIndex(
            model_name="numberimport",
            index=models.Index(
                fields=["job", "status", "attempts"], name="numberimport_job_counts"
            ),
        ),
        migrations.AlterField(
            model_name="numberimport",
            name="job",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="numbers",
                to="phone_numbers.importjob",
            ),
        ),
        migrations.RemoveIndex(
            model_name="numberimport",
            name="numberimport_job_status",
        ),
    ]
