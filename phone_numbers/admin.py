from django.contrib import admin

from phone_numbers.models import Credential, Project


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
