"""Admin pages of the medical app. The knowledge base comes from `import_ddxplus` / `load_demo_medical`
and models from `train_diagnosis`, so they are read-only here, but for activating a model (through
its service, which audits it). The audit log is append-only: read-only here as in the database.

Cases, their results and shares are deliberately not registered: every read of patient data goes
through `selectors.case_get_for_user`, which audits an admin's access; the admin site would not."""
from django.contrib import admin, messages

from apps.core.admin import ReadOnlyAdmin
from apps.medical import services
from apps.medical.models import AuditEvent, Condition, DiagnosisModel, Evidence


@admin.register(Evidence)
class EvidenceAdmin(ReadOnlyAdmin):
    list_display = ("code", "question_en", "data_type", "is_antecedent", "source")
    list_filter = ("source", "data_type", "is_antecedent")
    search_fields = ("code", "question_en")


@admin.register(Condition)
class ConditionAdmin(ReadOnlyAdmin):
    list_display = ("name", "icd10", "severity", "source")
    list_filter = ("source", "severity")
    search_fields = ("name", "icd10")


@admin.register(DiagnosisModel)
class DiagnosisModelAdmin(ReadOnlyAdmin):
    list_display = ("version", "source", "patients", "active", "trained_at", "trained_by")
    list_filter = ("active", "source")
    actions = ["activate"]

    @admin.action(description="Activate the selected model (one)")
    def activate(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one model to activate.", level=messages.ERROR)
            return
        model = services.diagnosis_model_activate(model=queryset.get(), user=request.user)
        self.message_user(request, f"Model v{model.version} is active.")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor", "action", "case", "model_version")
    list_filter = ("action",)
    search_fields = ("action", "actor__username")
