import pytest
from django.db import ProgrammingError, transaction
from django.core.exceptions import PermissionDenied

from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.medical.models import AuditEvent, Case
from apps.medical.diagnosis import read_patients
from tests.medical.conftest import DDXPLUS

BASE = "/api/medical/v1"


@pytest.fixture
def api(client, clinician):
    client.force_login(clinician)
    return client


@pytest.fixture
def patient():
    return read_patients(DDXPLUS / "patients_dev.csv")[0]


def test_diagnosis_returns_the_sorted_differential_and_the_next_question(api, ddxplus_model, patient):
    response = api.post(f"{BASE}/diagnosis", {"sex": patient.sex, "age": patient.age, "evidence": patient.evidence},
                        content_type="application/json")

    body = response.json()
    assert response.status_code == 200
    assert body["conditions"][0]["name"] == patient.pathology
    probabilities = [c["probability"] for c in body["conditions"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert set(body) == {"conditions", "next_question", "urgency", "should_stop", "model_version", "disclaimer"}
    assert body["disclaimer"].startswith("Decision support, not a diagnosis")
    assert body["should_stop"] is True  # the full evidence settles it
    assert AuditEvent.objects.filter(action="api.diagnosis", actor__username="clinician").count() == 1


@pytest.mark.parametrize("body,field,message", [
    ({"sex": "M", "age": 30, "evidence": ["E_999"]}, "evidence[0]", "unknown evidence 'E_999'"),
    ({"sex": "M", "age": 30, "evidence": ["E_91", "E_55_@_V_9999"]}, "evidence[1]", "E_55 needs one of the values"),
    ({"sex": "M", "age": 150, "evidence": []}, "age", "age: Ensure this value is less than or equal to 120."),
    ({"sex": "X", "age": 30, "evidence": []}, "sex", "sex: \"X\" is not a valid choice."),
])
def test_bad_input_is_a_422_naming_the_field(api, ddxplus_model, body, field, message):
    response = api.post(f"{BASE}/diagnosis", body, content_type="application/json")

    assert response.status_code == 422
    assert response.json()["field"] == field
    assert message in response.json()["detail"]


def test_explain_lists_findings_for_and_against(api, ddxplus_model, patient):
    response = api.post(f"{BASE}/explain", {"sex": patient.sex, "age": patient.age, "evidence": patient.evidence,
                                            "condition": patient.pathology}, content_type="application/json")
    unknown = api.post(f"{BASE}/explain", {"sex": "M", "age": 30, "evidence": [], "condition": "Dragon pox"},
                       content_type="application/json")

    assert response.status_code == 200
    assert response.json()["for"][0]["weight"] > 0
    assert unknown.status_code == 422 and unknown.json()["field"] == "condition"


def test_evidence_search_finds_questions(api, ddxplus_model):
    results = api.get(f"{BASE}/evidences?q=fever").json()

    assert "E_91" in [r["code"] for r in results]


def test_a_case_stores_its_note_de_identified_and_is_audited(api, ddxplus_model, patient):
    response = api.post(f"{BASE}/cases", {"sex": "F", "age": 54, "evidence": [patient.initial_evidence],
                                          "note": "Mrs. Jane Doe, phone 020 7946 0958, pain since 01/02/2024."},
                        content_type="application/json")

    case = Case.objects.get(id=response.json()["case"])
    assert response.status_code == 201
    assert case.note == "[NAME], phone [PHONE], pain since [DATE]."
    assert "Jane" not in str(list(AuditEvent.objects.values_list("details", flat=True)))
    api.get(f"{BASE}/cases/{case.id}")
    assert list(AuditEvent.objects.filter(case=case).order_by("id").values_list("action", flat=True)) == [
        "case.create", "diagnosis.compute", "case.view"]


def test_the_audit_log_cannot_be_changed_or_deleted(ddxplus_model, clinician):
    event = AuditEvent.objects.create(actor=clinician, action="case.view")

    with pytest.raises(PermissionDenied):
        event.details = {"tampered": True}
        event.save()
    with pytest.raises(PermissionDenied):
        event.delete()
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():  # the database refuses it too
        AuditEvent.objects.filter(id=event.id).update(action="edited")
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(id=event.id).delete()


def test_only_clinicians_and_admins_reach_the_medical_api(client, ddxplus_model, patient):
    body = {"sex": patient.sex, "age": patient.age, "evidence": patient.evidence}
    for role, allowed in ((Role.CLINICIAN, True), (Role.ADMIN, True), (Role.SUPPORT_AGENT, False),
                          (Role.DEVELOPER, False)):
        client.force_login(user_create(username=f"user-{role}", password="pw-roles-123", role=role))
        response = client.post(f"{BASE}/diagnosis", body, content_type="application/json")
        assert (response.status_code == 200) is allowed, role


def test_without_an_active_model_the_api_says_so(api, db):
    response = api.post(f"{BASE}/diagnosis", {"sex": "M", "age": 30, "evidence": []}, content_type="application/json")

    assert response.status_code == 503
    assert "No diagnosis model is active" in response.json()["detail"]
