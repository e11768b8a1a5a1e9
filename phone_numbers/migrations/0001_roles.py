from django.db import migrations

from phone_numbers.roles import ADMINS, SUPPORT, grant_permissions


def create_roles(apps, schema_editor):
    grant_permissions(
        apps,
        {
            SUPPORT: [],
            ADMINS: [
                ("auth", "view_user"),
                ("auth", "add_user"),
                ("auth", "change_user"),
                ("auth", "view_group"),
            ],
        },
    )


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=[SUPPORT, ADMINS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, delete_roles)]
