from django.contrib.admin import site

from apps.medical.models import AuditEvent, Case, CaseResult, CaseShare, DiagnosisModel


def test_the_audit_log_is_read_only_in_the_admin(rf, admin):
    request = rf.get("/admin/medical/auditevent/")
    request.user = admin
    audit_admin = site._registry[AuditEvent]

    assert (audit_admin.has_add_permission(request), audit_admin.has_change_permission(request),
            audit_admin.has_delete_permission(request)) == (False, False, False)


def test_patient_data_is_not_in_the_admin():
    assert [site.is_registered(model) for model in (Case, CaseResult, CaseShare, DiagnosisModel)] == [
        False, False, False, True]
