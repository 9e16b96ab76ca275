from institutions.admin_base import TenantAdmin


class ViewOnlyTenantAdmin(TenantAdmin):
    """Rows written only by services (valuations, matches, runs): staff look, never edit."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
