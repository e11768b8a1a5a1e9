from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest

from phone_numbers import logins
from phone_numbers.accounts import assignable_groups
from phone_numbers.models import (
    AuditEntry,
    Credential,
    ImportJob,
    LoginThrottle,
    NumberImport,
    Project,
)


class CredentialInline(admin.TabularInline):
    model = Credential
    # The token itself is never shown, not even encrypted; tokens are added in the portal.
    fields = ["token_last4", "created_at", "created_by", "revoked_at", "revoked_by"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Credential]:
        # Not shown, so not decrypted: a token no key can read must not break the page.
        return super().get_queryset(request).defer("token")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    """Shown, never changed here: the portal's project pages add, edit and deactivate projects,
    with the audit trail and the token entered again when the Space host or project ID changes,
    which this admin has no place for."""

    list_display = ["name", "space_host", "project_id", "is_active", "connection_status"]
    list_filter = ["is_active", "connection_status"]
    search_fields = ["name", "space_host"]
    inlines = [CredentialInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Projects are deactivated, never deleted: their history must stay.
        return False


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    list_display = ["project", "token_last4", "created_at", "revoked_at"]
    fields = CredentialInline.fields
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Credential]:
        return super().get_queryset(request).defer("token")

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown, never changed here: imports change only through the portal's own pages."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    list_display = ["pk", "project", "created_by", "source", "ticket", "created_at", "paused_at"]
    list_filter = ["source", "project"]
    search_fields = ["ticket", "project__name"]
    list_select_related = ["project", "created_by"]


@admin.register(NumberImport)
class NumberImportAdmin(ReadOnlyAdmin):
    list_display = ["number", "project", "job", "status", "failure_category", "attempts"]
    list_filter = ["status", "failure_category", "number_type"]
    search_fields = ["number", "sid"]
    list_select_related = ["project", "job__project"]
    raw_id_fields = ["job", "project"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "username", "ip_address", "action", "project", "job", "target"]
    list_filter = ["action"]
    search_fields = ["username", "target"]
    list_select_related = ["project", "job__project"]


admin.site.unregister(User)


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    """Django's user admin for superusers; for anyone else (Admins) a restricted one.

    An admin cannot see or change a superuser (not even their password), cannot make anyone a
    superuser or give single permissions, and can give only the groups that grant nothing
    they lack. Staff status is not theirs to set either: it follows the Admins group
    (phone_numbers/accounts.py).
    """

    restricted_fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Permissions", {"fields": ("is_active", "groups")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )

    def get_queryset(self, request):
        users = super().get_queryset(request)
        if request.user.is_superuser:
            return users
        # Every view of one user (change, password, delete, history) finds it through here.
        return users.filter(is_superuser=False)

    def get_fieldsets(self, request, obj=None):
        if obj is None or request.user.is_superuser:
            return super().get_fieldsets(request, obj)
        return self.restricted_fieldsets

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "groups":
            kwargs["queryset"] = assignable_groups(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_related(self, request, form, formsets, change):
        # The form offers only assignable groups; the user keeps any other group they have.
        if "groups" in form.cleaned_data:
            kept = form.instance.groups.exclude(pk__in=assignable_groups(request.user))
            form.cleaned_data["groups"] = [*form.cleaned_data["groups"], *kept]
        super().save_related(request, form, formsets, change)


class LiftLockoutMixin:
    """The action by which an admin lets a locked-out or slowed-down username log in again."""

    def has_lift_permission(self, request) -> bool:
        return request.user.has_perm("phone_numbers.lift_lockout")

    def has_delete_permission(self, request, obj=None) -> bool:
        # Lifting goes through the action, which the audit log records; a bare delete would not.
        return False

    @admin.action(description="Lift the lockout of these usernames", permissions=["lift"])
    def lift_lockout(self, request, queryset) -> None:
        usernames = sorted({row.username for row in queryset if row.username})
        for username in usernames:
            logins.lift_lockout(request, username)
        self.message_user(request, f"Lockout lifted for {', '.join(usernames) or 'nobody'}.")


admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class PortalAccessAttemptAdmin(LiftLockoutMixin, AccessAttemptAdmin):
    actions = ["lift_lockout"]


@admin.register(LoginThrottle)
class LoginThrottleAdmin(LiftLockoutMixin, admin.ModelAdmin):
    list_display = ["username", "failures", "last_attempt_at", "slowed_until"]
    search_fields = ["username"]
    readonly_fields = list_display
    actions = ["lift_lockout"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
