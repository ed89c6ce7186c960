"""Building an adapter dataset from medical cases reads patient data: it is audited like any other read."""
import pytest

from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.medical.models import AuditEvent, Case, CaseResult, DiagnosisModel


@pytest.fixture
def cases(db):
    model = DiagnosisModel.objects.create(version=3, source="demo", artefact="unused", data_hash="x", patients=1)
    ana, ben = (user_create(username=name, password="pw-clinic-123", role=Role.CLINICIAN) for name in ("ana", "ben"))
    made = []
    for clinician, condition in ((ana, "Pneumonia"), (ben, "Influenza"), (ben, "Asthma")):
        case = Case.objects.create(clinician=clinician, age=40, sex="F", evidence=["E_91"])
        CaseResult.objects.create(case=case, model=model, evidence=case.evidence, result={
            "model_version": 3, "conditions": [{"name": condition, "probability": 0.6}],
            "urgency": {"level": "routine", "reasons": []}, "next_questions": [], "labels": {}})
        made.append(case)
    return made


def test_every_case_read_for_a_dataset_is_audited_with_the_admin(client, cases):
    admin = user_create(username="admin", password="pw-admin-1234", role=Role.ADMIN)
    client.force_login(admin)

    response = client.post("/api/adapters/v1/datasets", {"source": "medical_cases"}, content_type="application/json")

    assert response.status_code == 201
    assert response.json()["report"]["accepted"] == 3
    assert sorted(AuditEvent.objects.values_list("actor__username", "action", "case_id", "model_version", "details")) \
        == sorted(("admin", "case.export", case.id, 3, {"purpose": "adapter dataset"}) for case in cases)
