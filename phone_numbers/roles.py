"""The portal's two roles, as Django groups (PRODUCT.md, "Who uses it").

Migrations call `grant_permissions` to give each role the permissions of the models they add.
"""

from django.contrib.auth.management import create_permissions

SUPPORT = "Support"
ADMINS = "Admins"


def grant_permissions(apps, permissions_by_role: dict[str, list[tuple[str, str]]]) -> None:
    """Create the groups if needed and add the permissions, given as (app_label, codename)."""
    # On a fresh database Django creates permissions only after every migration has run, so
    # create them now from the migration's own model state.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, permissions in permissions_by_role.items():
        group, _ = group_model.objects.get_or_create(name=role)
        for app_label, codename in permissions:
            group.permissions.add(
                permission_model.objects.get(content_type__app_label=app_label, codename=codename)
            )
