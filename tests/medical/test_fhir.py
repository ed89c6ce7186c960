"""FHIR R4 export of a case, validated with fhir.resources (its R4B models: fhir.resources 8 ships R5 as
the default, R4B and STU3; R4B is R4's 4.3 release, the same Bundle, Patient, Observation and Condition)."""
from fhir.resources.R4B.bundle import Bundle

from apps.medical.fhir import PROBABILITY_URL, case_bundle
from apps.medical.models import AuditEvent, CaseResult, DiagnosisModel

BASE = "/api/medical/v1"
CONDITIONS = [{"name": "Pneumonia", "icd10": "j17, j18", "severity": 3, "probability": 0.61,
               "differential_probability": 0.4},
              {"name": "Pulmonary embolism", "icd10": "i26", "severity": 1, "probability": 0.2}]
LABELS = {"E_91": "Do you have a fever?", "E_55_@_V_101": "Do you feel pain somewhere? — upper chest"}


def _bundle(**changes) -> dict:
    facts = {"case_id": 7, "sex": "F", "evidence": ["E_91", "E_55_@_V_101", "E_56_@_7"], "negatives": ["E_201"],
             "conditions": CONDITIONS, "labels": LABELS,
             "questions": {"E_91": "Do you have a fever?", "E_201": "Do you have a cough?"},
             "timestamp": "2026-12-02T03:00:00+00:00"}
    return case_bundle(**{**facts, **changes})


def _resources(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_the_bundle_is_valid_fhir_with_a_patient_stub_findings_and_a_coded_differential():
    bundle = _bundle()
    Bundle.model_validate(bundle)  # raises on any invalid resource

    assert bundle["type"] == "collection"
    assert _resources(bundle, "Patient") == [{"resourceType": "Patient", "gender": "female"}]
    observations = _resources(bundle, "Observation")
    assert [o.get("valueBoolean") for o in observations] == [True, None, None, False]
    assert observations[1]["valueCodeableConcept"]["coding"][0] == {
        "system": "https://moe-suite.invalid/fhir/ddxplus-value", "code": "V_101", "display": "upper chest"}
    assert observations[2]["valueInteger"] == 7
    assert observations[3]["interpretation"][0]["coding"][0]["code"] == "NEG"
    pneumonia, embolism = _resources(bundle, "Condition")
    assert pneumonia["verificationStatus"]["coding"][0]["code"] == "differential"
    assert [c["code"] for c in pneumonia["code"]["coding"]] == ["J17", "J18"]
    assert {c["system"] for c in pneumonia["code"]["coding"]} == {"http://hl7.org/fhir/sid/icd-10"}
    assert pneumonia["extension"][0] == {"url": PROBABILITY_URL, "valueDecimal": 0.61}
    assert [e["url"] for e in embolism["extension"]] == [PROBABILITY_URL]
    subject = {e["resource"]["resourceType"]: e["fullUrl"] for e in bundle["entry"]}["Patient"]
    assert {r["subject"]["reference"] for r in observations + [pneumonia, embolism]} == {subject}


def test_the_patient_stub_names_no_gender_it_was_not_given_and_exports_are_stable():
    assert _resources(_bundle(sex="X"), "Patient") == [{"resourceType": "Patient"}]
    assert _bundle() == _bundle()


def test_the_export_route_serves_a_visible_case_and_hides_others(client, clinician, colleague, case, ddxplus_kb):
    model = DiagnosisModel.objects.create(version=1, source="ddxplus", artefact="unused", data_hash="x", patients=0)
    CaseResult.objects.create(case=case, model=model, evidence=case.evidence,
                              result={"conditions": CONDITIONS, "labels": {}})
    client.force_login(colleague)
    hidden = client.get(f"{BASE}/cases/{case.id}/fhir")
    client.force_login(clinician)
    response = client.get(f"{BASE}/cases/{case.id}/fhir")

    assert hidden.status_code == 404
    assert response.status_code == 200 and response["Content-Type"] == "application/fhir+json"
    bundle = Bundle.model_validate(response.json())
    fever = _resources(response.json(), "Observation")[0]
    assert fever["code"]["coding"][0]["code"] == "E_91" and fever["code"]["text"].startswith("Do you have a fever")
    assert len(bundle.entry) == 1 + 1 + len(CONDITIONS)
    assert case.note not in response.content.decode()  # the note never leaves in an export
    assert list(AuditEvent.objects.filter(case=case).values_list("action", flat=True)) == ["case.export_fhir"]


def test_a_finding_answered_dont_know_is_an_observation_with_a_data_absent_reason():
    bundle = _bundle(unknown=["E_53"], questions={"E_91": "Do you have a fever?", "E_53": "Do you have pain?"})
    Bundle.model_validate(bundle)

    unknown = _resources(bundle, "Observation")[-1]

    assert unknown["code"]["coding"][0]["code"] == "E_53"
    assert unknown["dataAbsentReason"] == {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "asked-unknown",
        "display": "Asked But Unknown"}], "text": "Don't know"}
    assert not {key for key in unknown if key.startswith("value")} and "interpretation" not in unknown
    assert len({e["fullUrl"] for e in bundle["entry"]}) == len(bundle["entry"])


def test_the_export_of_a_case_shows_its_unknown_answers(client, clinician, case, ddxplus_kb):
    case.negatives, case.unknown = ["E_201"], ["E_53"]
    case.save()
    client.force_login(clinician)

    bundle = client.get(f"{BASE}/cases/{case.id}/fhir").json()
    Bundle.model_validate(bundle)

    observations = {o["code"]["coding"][0]["code"]: o for o in _resources(bundle, "Observation")}
    assert observations["E_91"]["valueBoolean"] is True and observations["E_201"]["valueBoolean"] is False
    assert observations["E_53"]["dataAbsentReason"]["coding"][0]["code"] == "asked-unknown"
    assert "valueBoolean" not in observations["E_53"]
