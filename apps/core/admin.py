from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Admin pages that show a model and never change it: its app's services own every write and its rules."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
