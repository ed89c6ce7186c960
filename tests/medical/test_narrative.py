import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.medical.models import AuditEvent, CaseResult, Condition
from apps.medical.narrative import narrative, narrative_messages
from apps.medical.services import diagnosis_narrative

RESULT = {"model_version": 1, "conditions": [{"name": "Influenza", "probability": 0.62},
                                             {"name": "Common cold (viral URTI)", "probability": 0.2}],
          "urgency": {"level": "routine", "reasons": []}, "next_questions": [], "labels": {}}


class ModelService(ThreadingHTTPServer):
    """A stand-in model_service that answers every chat request with `reply` and keeps the requests."""
    reply = ""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.chats: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def _send(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # /v1/models: no adapter loaded
        self._send({"data": [{"id": "base"}]})

    def do_POST(self):  # /v1/chat/completions
        self.server.chats.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self._send({"model": "base", "choices": [{"message": {"content": self.server.reply},
                                                  "finish_reason": "stop"}]})

    def log_message(self, *args):
        pass


@pytest.fixture
def model_service(settings):
    server = ModelService()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.MODEL_SERVICE_URL = server.url
    settings.MEDICAL_NARRATIVE_MODEL = True
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def conditions(db):
    for name in ("Influenza", "Common cold (viral URTI)", "Sepsis"):
        Condition.objects.create(name=name, icd10="J00", severity=3, source="demo")


def _narrative_events() -> list[dict]:
    return list(AuditEvent.objects.filter(action="diagnosis.narrative").values("actor__username", "model_version",
                                                                               "details"))


def test_a_rewording_that_keeps_the_facts_is_used_and_audited(model_service, conditions, clinician):
    model_service.reply = "Most likely influenza (62%), less likely a common cold (20%); urgency routine."

    text = diagnosis_narrative(result=RESULT, user=clinician)

    assert text == model_service.reply
    assert [chat["messages"] for chat in model_service.chats] == [narrative_messages(narrative(RESULT))]
    assert _narrative_events() == [{"actor__username": "clinician", "model_version": 1,
                                    "details": {"wording": "model", "model": "base model"}}]


@pytest.mark.parametrize("reply", ["Most likely influenza (75%); urgency routine.",
                                   "Influenza (62%) or a common cold (20%), but rule out sepsis."],
                         ids=["a new number", "a condition the result does not name"])
def test_a_rewording_that_adds_a_fact_falls_back_to_the_summary(model_service, conditions, clinician, reply):
    model_service.reply = reply

    text = diagnosis_narrative(result=RESULT, user=clinician)

    assert text == narrative(RESULT)
    assert [event["details"] for event in _narrative_events()] == [{"wording": "rejected", "model": "base model"}]


def test_without_model_service_the_summary_is_used_and_that_is_audited(settings, conditions, clinician):
    settings.MODEL_SERVICE_URL = "http://127.0.0.1:9"
    settings.MEDICAL_NARRATIVE_MODEL = True

    assert diagnosis_narrative(result=RESULT, user=clinician) == narrative(RESULT)
    assert [event["details"] for event in _narrative_events()] == [{"wording": "unavailable", "model": ""}]


def test_with_the_narrative_model_off_the_model_is_not_asked(model_service, settings, conditions, clinician):
    settings.MEDICAL_NARRATIVE_MODEL = False

    assert diagnosis_narrative(result=RESULT, user=clinician) == narrative(RESULT)
    assert model_service.chats == []
    assert _narrative_events() == []


def test_the_case_api_returns_the_narrative_stored_with_the_result(client, clinician, ddxplus_model):
    client.force_login(clinician)

    created = client.post("/api/medical/v1/cases", {"sex": "M", "age": 40, "evidence": ["E_91"]},
                          content_type="application/json").json()
    shown = client.get(f"/api/medical/v1/cases/{created['case']}").json()

    assert created["narrative"] == narrative(created)
    assert created["narrative"].startswith("Computed differential: ")
    assert shown["narrative"] == created["narrative"] == CaseResult.objects.get().result["narrative"]


def test_a_case_shows_the_models_narrative_when_it_passes_the_guard(client, clinician, ddxplus_model, model_service):
    model_service.reply = "A reworded summary without new facts."
    client.force_login(clinician)

    created = client.post("/api/medical/v1/cases", {"sex": "M", "age": 40, "evidence": ["E_91"]},
                          content_type="application/json").json()

    assert created["narrative"] == "A reworded summary without new facts."
    assert client.get(f"/api/medical/v1/cases/{created['case']}").json()["narrative"] == created["narrative"]
    assert list(AuditEvent.objects.filter(case=created["case"]).order_by("id").values_list("action", flat=True)) == [
        "case.create", "diagnosis.narrative", "diagnosis.compute", "case.view"]
