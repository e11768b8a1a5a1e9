"""Users and groups: every change goes to the audit trail, and staff status follows Admins.

Model signals rather than the Django admin's hooks, so that every path is covered: the admin,
the password page, `manage.py` commands and a shell. The request, when there is one, comes
from audit.current_request(), so an entry says who made the change and from where.
Migrations use historical models, whose signals have other senders: they record nothing.
"""

from django.contrib.auth.models import Group, Permission, User
from django.db.models import Model, QuerySet
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver

from phone_numbers import audit
from phone_numbers.models import AuditAction
from phone_numbers.roles import ADMINS

# Fields whose changes are recorded with old and new values. The password hash never is:
# only "password changed". last_login is left out, as every login writes it.
TRACKED_FIELDS = {
    User: ["username", "first_name", "last_name", "email", "is_active", "is_staff", "is_superuser"],
    Group: ["name"],
}
# What a password change records: that it changed, never the hash. Bandit B105 is a false
# alarm: these are the words written instead of a password.
PASSWORD_CHANGE = {"password": "password changed"}  # nosec B105
ACTIONS = {
    User: (AuditAction.USER_CREATED, AuditAction.USER_CHANGED, AuditAction.USER_DELETED),
    Group: (AuditAction.GROUP_CREATED, AuditAction.GROUP_CHANGED, AuditAction.GROUP_DELETED),
}


def _record(instance: Model, action: AuditAction, changes: dict) -> None:
    audit.record(audit.current_request(), action, target=str(instance), changes=changes)


@receiver(pre_save, sender=User, dispatch_uid="accounts_user_before")
@receiver(pre_save, sender=Group, dispatch_uid="accounts_group_before")
def _remember_before(sender, instance, raw, update_fields, **kwargs) -> None:
    if raw or instance._state.adding:
        return
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    fields = [*TRACKED_FIELDS[sender], *(["password"] if sender is User else [])]
    instance._audit_before = sender.objects.filter(pk=instance.pk).values(*fields).first()


@receiver(post_save, sender=User, dispatch_uid="accounts_user_saved")
@receiver(post_save, sender=Group, dispatch_uid="accounts_group_saved")
def _saved(sender, instance, created, raw, update_fields, **kwargs) -> None:
    if raw:
        return
    created_action, changed_action, _ = ACTIONS[sender]
    fields = TRACKED_FIELDS[sender]
    if created:
        values = {name: getattr(instance, name) for name in fields}
        _record(instance, created_action, {k: v for k, v in values.items() if v != ""})
        return
    before = instance.__dict__.pop("_audit_before", None)
    if before is None:
        return
    changes = {
        name: {"old": before[name], "new": getattr(instance, name)}
        for name in fields
        if before[name] != getattr(instance, name)
    }
    if changes:
        _record(instance, changed_action, changes)
    if sender is User and _password_changed(instance, before["password"], update_fields):
        _record(instance, AuditAction.PASSWORD_CHANGED, PASSWORD_CHANGE)


def _password_changed(user: User, hash_before: str, update_fields) -> bool:
    if user.password == hash_before:
        return False
    # A login re-hashes a password whose hasher changed, saving the password alone after
    # forgetting the raw one (AbstractBaseUser.check_password): the same password.
    rehashed = user._password is None and update_fields == {"password"}
    return not rehashed


@receiver(post_delete, sender=User, dispatch_uid="accounts_user_deleted")
@receiver(post_delete, sender=Group, dispatch_uid="accounts_group_deleted")
def _deleted(sender, instance, **kwargs) -> None:
    _record(instance, ACTIONS[sender][2], {})


def _group_names(groups: QuerySet) -> set[str]:
    return set(groups.values_list("name", flat=True))


def _permission_names(permissions: QuerySet) -> set[str]:
    pairs = permissions.values_list("content_type__app_label", "codename")
    return {f"{app_label}.{codename}" for app_label, codename in pairs}


def _staff_follows_admins(user: User, before: set[str], after: set[str]) -> None:
    """Joining Admins gives staff status (admins manage users in the Django admin); leaving
    it takes it away, unless the user is a superuser."""
    if (ADMINS in before) == (ADMINS in after):
        return
    staff = ADMINS in after or user.is_superuser
    if user.is_staff != staff:
        user.is_staff = staff
        user.save(update_fields=["is_staff"])


def _audit_many_to_many(owner_model, field: str, names, then=None) -> None:
    """Record each change of `owner_model.field` (from either side) as old and new names,
    as a change of the owner; then call `then(owner, before, after)`."""
    key = f"_audit_{field}_before"

    def changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
        if action.startswith("pre_"):
            if not reverse:
                owners = [instance]
            elif pk_set is None:  # cleared from the other side: every owner it had
                owners = list(owner_model.objects.filter(**{field: instance}))
            else:
                owners = list(owner_model.objects.filter(pk__in=pk_set))
            before = {owner: names(getattr(owner, field).all()) for owner in owners}
            setattr(instance, key, before)
            return
        for owner, old in instance.__dict__.pop(key, {}).items():
            new = names(getattr(owner, field).all())
            if old != new:
                change = {field: {"old": sorted(old), "new": sorted(new)}}
                _record(owner, ACTIONS[owner_model][1], change)
                if then:
                    then(owner, old, new)

    through = getattr(owner_model, field).through
    m2m_changed.connect(changed, sender=through, weak=False, dispatch_uid=f"accounts_{key}")


_audit_many_to_many(User, "groups", _group_names, then=_staff_follows_admins)
_audit_many_to_many(User, "user_permissions", _permission_names)
_audit_many_to_many(Group, "permissions", _permission_names)


def assignable_groups(user: User) -> QuerySet:
    """The groups `user` may give anyone: those granting no permission `user` lacks."""
    if user.is_superuser:
        return Group.objects.all()
    own = Permission.objects.filter(group__user=user) | Permission.objects.filter(user=user)
    return Group.objects.exclude(permissions__in=Permission.objects.exclude(pk__in=own))
