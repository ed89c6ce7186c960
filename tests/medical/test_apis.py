import pytest

from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.medical.models import AuditEvent, Case, CaseShare

BASE = "/api/medical/v1"


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


def test_explain_with_a_condition_that_is_not_text_is_a_422(api, ddxplus_model):
    response = api.post(f"{BASE}/explain", {"sex": "M", "age": 30, "evidence": [], "condition": ["x"]},
                        content_type="application/json")

    assert response.status_code == 422
    assert response.json() == {"detail": "condition: Not a valid string.", "code": "invalid", "field": "condition"}


@pytest.mark.parametrize("body,field", [([1, 2], "non_field_errors"), ({"sex": "M", "age": 30, "evidence": [{}]},
                                                                        "evidence[0]")])
def test_a_body_of_the_wrong_shape_is_a_422_naming_it(api, db, body, field):
    response = api.post(f"{BASE}/diagnosis", body, content_type="application/json")

    assert response.status_code == 422
    assert response.json()["field"] == field


CASE_ROUTES = [("get", "/cases/{id}", None), ("post", "/cases/{id}/answer", {"evidence": "E_91", "answer": "yes"}),
               ("post", "/cases/{id}/shares", {"username": "clinician"}), ("delete", "/cases/{id}/shares/clinician", None)]


@pytest.mark.parametrize("method,route,body", CASE_ROUTES)
def test_every_case_route_hides_another_clinicians_case(client, case, colleague, method, route, body):
    client.force_login(colleague)

    hidden = getattr(client, method)(BASE + route.format(id=case.id), body, content_type="application/json")
    unknown = getattr(client, method)(BASE + route.format(id=case.id + 1000), body, content_type="application/json")
    not_a_number = getattr(client, method)(BASE + route.format(id="abc"), body, content_type="application/json")

    assert hidden.status_code == unknown.status_code == not_a_number.status_code == 404
    assert hidden.json() == unknown.json() == not_a_number.json() == {
        "detail": "No such case.", "code": "not_found", "field": "case"}
    assert AuditEvent.objects.count() == 0


def test_nul_characters_in_a_query_or_a_path_are_4xx_not_500(api, ddxplus_model, case):
    search = api.get(f"{BASE}/evidences?q=fe%00ver")
    unshare = api.delete(f"{BASE}/cases/{case.id}/shares/col%00league")

    assert search.status_code == 200
    assert unshare.status_code == 422 and unshare.json()["field"] == "username"


def test_the_case_list_holds_own_and_shared_cases(client, case, clinician, colleague):
    theirs = Case.objects.create(clinician=colleague, age=30, sex="M", evidence=[])
    client.force_login(clinician)
    before = client.get(f"{BASE}/cases").json()
    CaseShare.objects.create(case=theirs, clinician=clinician, shared_by=colleague)

    after = client.get(f"{BASE}/cases").json()

    assert [row["id"] for row in before] == [case.id]
    assert [(row["id"], row["clinician"]) for row in after] == [(theirs.id, "colleague"), (case.id, "clinician")]


def test_the_creator_shares_a_case_and_stops_sharing_it(api, client, case, colleague):
    shared = api.post(f"{BASE}/cases/{case.id}/shares", {"username": "colleague"}, content_type="application/json")
    client.force_login(colleague)
    seen = client.get(f"{BASE}/cases/{case.id}")
    reshare = client.post(f"{BASE}/cases/{case.id}/shares", {"username": "colleague"}, content_type="application/json")
    client.force_login(case.clinician)
    stopped = client.delete(f"{BASE}/cases/{case.id}/shares/colleague")
    client.force_login(colleague)
    after = client.get(f"{BASE}/cases/{case.id}")

    assert shared.status_code == 200 and shared.json()["shared_with"] == ["colleague"]
    assert seen.status_code == 200 and seen.json()["note"] == "[NAME], fever."
    assert reshare.status_code == 403 and reshare.json()["code"] == "not_case_creator"
    assert stopped.status_code == 204
    assert after.status_code == 404
    assert list(AuditEvent.objects.order_by("id").values_list("actor__username", "action", "details")) == [
        ("clinician", "case.share", {"clinician": "colleague"}), ("colleague", "case.view", {}),
        ("clinician", "case.unshare", {"clinician": "colleague"})]


@pytest.mark.parametrize("username,message", [("nobody", "username: no clinician is called 'nobody'."),
                                              ("admin", "username: no clinician is called 'admin'."),
                                              ("clinician", "username: the case is yours already.")])
def test_a_case_is_shared_only_with_another_clinician(api, case, admin, username, message):
    response = api.post(f"{BASE}/cases/{case.id}/shares", {"username": username}, content_type="application/json")

    assert response.status_code == 422
    assert response.json() == {"detail": message, "code": "invalid", "field": "username"}


def test_an_admin_opens_a_case_only_with_a_reason_that_is_audited(client, case, admin):
    client.force_login(admin)

    without = client.get(f"{BASE}/cases/{case.id}")
    with_header = client.get(f"{BASE}/cases/{case.id}", headers={"X-Break-Glass-Reason": "complaint review 17"})
    with_query = client.get(f"{BASE}/cases/{case.id}?reason=incident+review")

    assert without.status_code == 404
    assert with_header.status_code == with_query.status_code == 200
    assert with_header.json()["clinician"] == "clinician"
    assert list(AuditEvent.objects.order_by("id").values_list("actor__username", "action", "case_id", "details")) == [
        ("admin", "case.break_glass", case.id, {"reason": "complaint review 17"}),
        ("admin", "case.view", case.id, {}),
        ("admin", "case.break_glass", case.id, {"reason": "incident review"}),
        ("admin", "case.view", case.id, {})]


def test_a_clinician_it_was_shared_with_answers_the_case(client, ddxplus_model, clinician, colleague):
    client.force_login(clinician)
    created = client.post(f"{BASE}/cases", {"sex": "M", "age": 40, "evidence": ["E_91"]},
                          content_type="application/json").json()
    client.post(f"{BASE}/cases/{created['case']}/shares", {"username": "colleague"}, content_type="application/json")
    client.force_login(colleague)

    answered = client.post(f"{BASE}/cases/{created['case']}/answer", {"evidence": "E_53", "answer": "no"},
                           content_type="application/json")

    assert answered.status_code == 200
    assert answered.json()["negatives"] == ["E_53"]
    assert answered.json()["result"]["model_version"] == ddxplus_model.version
    assert list(AuditEvent.objects.filter(actor=colleague).order_by("id").values_list("action", flat=True)) == [
        "case.answer", "diagnosis.compute"]


def test_answering_without_an_active_model_is_a_503_naming_it(api, case):
    response = api.post(f"{BASE}/cases/{case.id}/answer", {"evidence": "E_91", "answer": "yes"},
                        content_type="application/json")

    assert response.status_code == 503
    assert response.json()["code"] == "no_model"


def test_a_case_keeps_unknown_answers_apart_from_absent_and_unasked_ones(api, ddxplus_model):
    created = api.post(f"{BASE}/cases", {"sex": "M", "age": 58, "evidence": [
        "E_66", {"id": "E_50", "choice_id": "absent"}, {"id": "E_91", "choice_id": "unknown"}]},
                       content_type="application/json")
    case_id = created.json()["case"]

    unknown = api.post(f"{BASE}/cases/{case_id}/answer", {"evidence": "E_53", "answer": "unknown"},
                       content_type="application/json")
    then_no = api.post(f"{BASE}/cases/{case_id}/answer", {"evidence": "E_91", "answer": "no"},
                       content_type="application/json")
    shown = api.get(f"{BASE}/cases/{case_id}").json()

    assert created.status_code == 201
    assert (unknown.json()["evidence"], unknown.json()["negatives"], unknown.json()["unknown"]) == (
        ["E_66"], ["E_50"], ["E_53", "E_91"])
    assert (shown["evidence"], shown["negatives"], shown["unknown"]) == (["E_66"], ["E_50", "E_91"], ["E_53"])
    assert "E_53" not in {q["evidence"] for q in shown["result"]["next_questions"]}  # not asked again
    assert then_no.status_code == 200
