"""Forget the connection details stored before checks kept to fixed sentences (issue 19).

They hold an error's own text or a remote server's words, which the project page must no
longer show; the status and its advice stay, and the next check stores its fixed sentence. An
"unchecked" project keeps its detail: that is the portal's own "No outcome within ..." note,
which marks a check that did not finish.
"""

from django.db import migrations


def forget_raw_details(apps, schema_editor):
    project = apps.get_model("phone_numbers", "Project")
    project.objects.exclude(connection_status="unchecked").update(connection_detail="")


class Migration(migrations.Migration):
    dependencies = [
        ("phone_numbers", "0009_audit_append_only"),
    ]

    operations = [migrations.RunPython(forget_raw_details, migrations.RunPython.noop)]
