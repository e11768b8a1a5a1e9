"""Four eyes for large jobs (issue 18): a job's approval state, the admins' permission to
approve and reject the jobs of others, and the audit entries for it."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from phone_numbers.roles import ADMINS, grant_permissions


def grant_approve_permission(apps, schema_editor):
    # Only admins approve; the view also refuses the job's own starter.
    grant_permissions(apps, {ADMINS: [("phone_numbers", "approve_importjob")]})


class Migration(migrations.Migration):
    dependencies = [
        ("phone_numbers", "0014_space_inventory"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="importjob",
            options={
                "ordering": ["-created_at", "-pk"],
                "permissions": [
                    ("pause_importjob", "Can pause and resume import jobs"),
                    ("approve_importjob", "Can approve and reject large import jobs of others"),
                ],
            },
        ),
        migrations.AddField(
            model_name="importjob",
            name="approved_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="importjob",
            name="approved_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="importjob",
            name="needs_approval",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="importjob",
            name="rejected_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="importjob",
            name="rejected_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="importjob",
            name="rejection_reason",
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="action",
            field=models.CharField(
                choices=[
                    ("login", "Logged in"),
                    ("login_failed", "Login failed"),
                    ("locked_out", "Locked out (too many failed logins)"),
                    ("logout", "Logged out"),
                    ("project_created", "Project created"),
                    ("project_changed", "Project changed"),
                    ("project_deactivated", "Project deactivated"),
                    ("project_reactivated", "Project reactivated"),
                    ("credential_added", "API token added"),
                    ("credential_replaced", "API token replaced (old one revoked)"),
                    ("connection_checked", "Connection check started"),
                    ("job_previewed", "Import previewed"),
                    ("job_confirmed", "Import confirmed"),
                    ("job_paused", "Job paused"),
                    ("job_resumed", "Job resumed"),
                    ("job_cancelled", "Job cancelled"),
                    ("job_approval_requested", "Approval requested (large job)"),
                    ("job_approved", "Job approved"),
                    ("job_rejected", "Job rejected"),
                    ("job_retried", "Failed numbers retried"),
                    ("number_retried", "Number edited and retried"),
                    ("job_exported", "Job exported (CSV)"),
                    ("numbers_exported", "Numbers exported (CSV)"),
                    ("audit_exported", "Audit log exported (CSV)"),
                    ("user_created", "User created"),
                    ("user_changed", "User changed"),
                    ("user_deleted", "User deleted"),
                    ("password_changed", "Password changed"),
                    ("group_created", "Group created"),
                    ("group_changed", "Group changed"),
                    ("group_deleted", "Group deleted"),
                    ("lockout_lifted", "Login lockout lifted"),
                ],
                db_index=True,
                max_length=32,
            ),
        ),
        migrations.AlterField(
            model_name="audittally",
            name="action",
            field=models.CharField(
                choices=[
                    ("login", "Logged in"),
                    ("login_failed", "Login failed"),
                    ("locked_out", "Locked out (too many failed logins)"),
                    ("logout", "Logged out"),
                    ("project_created", "Project created"),
                    ("project_changed", "Project changed"),
                    ("project_deactivated", "Project deactivated"),
                    ("project_reactivated", "Project reactivated"),
                    ("credential_added", "API token added"),
                    ("credential_replaced", "API token replaced (old one revoked)"),
                    ("connection_checked", "Connection check started"),
                    ("job_previewed", "Import previewed"),
                    ("job_confirmed", "Import confirmed"),
                    ("job_paused", "Job paused"),
                    ("job_resumed", "Job resumed"),
                    ("job_cancelled", "Job cancelled"),
                    ("job_approval_requested", "Approval requested (large job)"),
                    ("job_approved", "Job approved"),
                    ("job_rejected", "Job rejected"),
                    ("job_retried", "Failed numbers retried"),
                    ("number_retried", "Number edited and retried"),
                    ("job_exported", "Job exported (CSV)"),
                    ("numbers_exported", "Numbers exported (CSV)"),
                    ("audit_exported", "Audit log exported (CSV)"),
                    ("user_created", "User created"),
                    ("user_changed", "User changed"),
                    ("user_deleted", "User deleted"),
                    ("password_changed", "Password changed"),
                    ("group_created", "Group created"),
                    ("group_changed", "Group changed"),
                    ("group_deleted", "Group deleted"),
                    ("lockout_lifted", "Login lockout lifted"),
                ],
                max_length=32,
            ),
        ),
        migrations.RunPython(grant_approve_permission, migrations.RunPython.noop),
    ]
