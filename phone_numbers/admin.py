from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin

from phone_numbers import logins
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

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "space_host", "project_id", "is_active", "connection_status"]
    list_filter = ["is_active", "connection_status"]
    search_fields = ["name", "space_host"]
    readonly_fields = ["connection_status", "connection_detail", "connection_checked_at"]
    inlines = [CredentialInline]

    def has_delete_permission(self, request, obj=None) -> bool:
        # Projects are deactivated, never deleted: their history must stay.
        return False


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    list_display = ["project", "token_last4", "created_at", "revoked_at"]
    fields = CredentialInline.fields
    readonly_fields = fields

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
