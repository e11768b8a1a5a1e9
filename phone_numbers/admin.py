from django.contrib import admin

from phone_numbers.models import AuditEntry, Credential, ImportJob, NumberImport, Project


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
