"""The API a clinical system drives: answers present / absent / unknown, the interview, note proposals
and finding search, on the DDXPlus model."""
from apps.medical.features import split_token
from apps.medical.models import AuditEvent

BASE = "/api/medical/v1"
MAX_QUESTIONS = 30


def _post(api, path, body):
    return api.post(f"{BASE}/{path}", body, content_type="application/json")


def _answers_from_record(question: dict, patient) -> list[dict]:
    """How the simulated patient answers: from their DDXPlus record."""
    tokens = [t for t in patient.evidence if split_token(t)[0] == question["id"]]
    if question["type"] == "yes_no":
        return [{"id": question["id"], "choice_id": "present" if tokens else "absent"}]
    return [{"id": t, "choice_id": "present"} for t in tokens] or [{"id": question["id"], "choice_id": "absent"}]


def test_an_interview_driven_through_the_api_with_absent_and_unknown_answers(api, ddxplus_model, patient):
    body = {"sex": patient.sex, "age": patient.age,
            "evidence": [{"id": patient.initial_evidence, "choice_id": "present"}]}
    first = _post(api, "interview", body).json()
    body["evidence"].append({"id": first["question"]["id"], "choice_id": "unknown"})
    asked = [first["question"]["id"]]
    step = first
    while len(asked) < MAX_QUESTIONS:
        step = _post(api, "interview", body).json()
        if step["should_stop"]:
            break
        question = step["question"]
        assert question["type"] in {"yes_no", "choice", "multi", "scale"} and question["text"] != question["id"]
        if question["type"] == "yes_no":
            assert [c["id"] for c in question["choices"]] == ["present", "absent", "unknown"]
        else:
            assert all(c["id"].startswith(question["id"] + "_@_") for c in question["choices"])
        assert question["id"] not in asked  # an unknown answer is not asked again, nor any other
        asked.append(question["id"])
        body["evidence"] += _answers_from_record(question, patient)

    assert set(first) == {"question", "should_stop", "conditions", "triage", "model_version", "disclaimer"}
    assert first["triage"]["level"] in {"emergency", "see a doctor today", "routine"}
    assert patient.pathology in [c["name"] for c in step["conditions"][:3]]
    assert any(a["choice_id"] == "absent" for a in body["evidence"])
    audited = AuditEvent.objects.filter(action="api.interview").order_by("id").last().details
    assert first["question"]["id"] in audited["unknown"]


def test_diagnosis_takes_answer_objects_and_absent_answers_move_the_differential(api, ddxplus_model, patient):
    strings = _post(api, "diagnosis", {"sex": patient.sex, "age": patient.age, "evidence": patient.evidence})
    objects = _post(api, "diagnosis", {"sex": patient.sex, "age": patient.age,
                                       "evidence": [{"id": t, "choice_id": "present"} for t in patient.evidence]})
    start = [{"id": patient.initial_evidence, "choice_id": "present"}]
    before = _post(api, "diagnosis", {"sex": patient.sex, "age": patient.age, "evidence": start}).json()
    question = before["next_question"]["evidence"]
    after = _post(api, "diagnosis", {"sex": patient.sex, "age": patient.age,
                                     "evidence": [*start, {"id": question, "choice_id": "absent"}]}).json()

    assert strings.status_code == objects.status_code == 200
    assert strings.json()["conditions"] == objects.json()["conditions"]
    assert after["conditions"] != before["conditions"]
    assert after["next_question"]["evidence"] != question


BAD_ANSWERS = [
    ([{"id": "E_91", "choice_id": "present"}, {"id": "E_999", "choice_id": "absent"}], "evidence[1].id",
     "unknown evidence 'E_999'"),
    ([{"id": "E_55_@_V_9999", "choice_id": "unknown"}], "evidence[0].id", "E_55 needs one of the values"),
    (["E_91", {"id": "E_55", "choice_id": "present"}], "evidence[1].id", "E_55 needs one of the values"),
    ([{"id": "E_91", "choice_id": "maybe"}], "evidence[0]", "choice_id: one of"),
    ([{"id": "E_91", "choice_id": "present", "extra": 1}], "evidence[0]", '{"id": ..., "choice_id": ...}'),
]


def test_bad_answers_are_a_422_naming_the_answer(api, ddxplus_model):
    answered = [(path, field, message, _post(api, path, {"sex": "M", "age": 40, "evidence": evidence}))
                for evidence, field, message in BAD_ANSWERS for path in ("diagnosis", "interview")]

    assert [(path, r.status_code, r.json()["field"]) for path, _, _, r in answered] == [
        (path, 422, field) for path, field, _, _ in answered]
    assert all(message in r.json()["detail"] for _, _, message, r in answered)


def test_finding_search_and_note_proposals_through_the_api(api, ddxplus_model):
    chest = api.get(f"{BASE}/evidences", {"q": "chest pain"}).json()
    blood = api.get(f"{BASE}/evidences", {"q": "coughing blood"}).json()
    proposals = _post(api, "notes/findings", {"note": "Denies fever. ?PE. Pain radiating to the left arm."}).json()
    empty = _post(api, "notes/findings", {"note": ""}).json()

    located = [r for r in chest[:3] if r["code"] == "E_55"]
    assert located and located[0]["matched_value"]["label"] in {"upper chest", "lower chest"}
    assert blood[0]["code"] == "E_45" and blood[0]["matched_value"] is None
    assert [(p["token"], p["status"], p["text"]) for p in proposals["findings"]] == [
        ("E_91", "absent", "fever"), ("E_53", "present", "Pain"), ("E_57_@_V_31", "present", "left arm")]
    assert proposals["disclaimer"].startswith("Proposals") and empty["findings"] == []
    assert list(AuditEvent.objects.filter(action="api.note_findings").order_by("id").values_list(
        "details", flat=True)) == [{"proposed": 3}, {"proposed": 0}]  # counts only: no text of the note
