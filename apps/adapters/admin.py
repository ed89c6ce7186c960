from django.contrib import admin

from apps.adapters.models import Adapter, AdapterDataset, AdapterJob


@admin.register(AdapterDataset)
class AdapterDatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "domain", "origin", "created_by", "created_at")
    list_filter = ("domain",)
    readonly_fields = ("content_hash", "report", "created_at")
    exclude = ("train_examples", "validation_examples")  # thousands of examples: read them through the API


@admin.register(AdapterJob)
class AdapterJobAdmin(admin.ModelAdmin):
    list_display = ("adapter_name", "status", "attempts", "dataset", "created_by", "created_at", "finished_at")
    list_filter = ("status",)
    readonly_fields = ("progress", "log", "attempts", "heartbeat_at", "output_dir", "adapter", "created_at",
                       "started_at", "finished_at")


@admin.register(Adapter)
class AdapterAdmin(admin.ModelAdmin):
    """Promotion and retirement go through the console or the API (they load model_service): read-only here."""
    list_display = ("name", "version", "domain", "status", "promoted_at", "created_at")
    list_filter = ("status", "domain")
    readonly_fields = ("name", "domain", "version", "path", "metrics", "status", "promoted_at", "created_at")
