"""Retrieval tuning without a worker: who may queue one, what it needs, feedback pairs, the accuracy
series, the admin's answer threshold, the reconcile and automatic tuning."""
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.roles import Role
from apps.customer_service.models import Conversation, Entry, FeedbackPair, Message, RetrievalTuning
from apps.customer_service.selectors import suggestion_accuracy
from apps.customer_service.services import entry_create, entry_update, knowledge_base_create
from apps.customer_service.services.retrieval_tuning import retrieval_tuning_due, retrieval_tuning_start
from apps.customer_service.tasks import retrieval_tunings_reconcile
from tests.users import user_fixture

BASE = "/api/customer-service/v1"
agent = user_fixture("agent", Role.SUPPORT_AGENT)
admin = user_fixture("root", Role.ADMIN)


@pytest.fixture
def tunable_kb(kb):
    for question, phrasings in [("Where is my order?", ["where is my parcel", "has my package shipped"]),
                                ("How do I pay?", ["which payment methods", "can I pay by card"])]:
        entry_create(knowledge_base=kb, question=question, answer=f"Answer to {question}", phrasings=phrasings)
    return kb


@pytest.fixture
def queued_tasks(monkeypatch):
    """The Celery tasks the code under test queues, by name and arguments (no broker needed)."""
    from apps.customer_service import tasks

    sent = []
    monkeypatch.setattr(tasks.retrieval_tuning_task, "apply_async",
                        lambda args, countdown=0: sent.append(("tune", args, countdown)))
    monkeypatch.setattr(tasks.retrieval_tuning_task, "delay", lambda *args: sent.append(("tune", args, 0)))
    return sent


def post_json(client, path, body=None):
    return client.post(path, json.dumps(body or {}), content_type="application/json")


def test_an_admin_queues_a_tuning_and_a_second_waits_for_it(client, admin, tunable_kb, queued_tasks,
                                                            django_capture_on_commit_callbacks):
    client.force_login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(f"{BASE}/knowledge-bases/{tunable_kb.id}/tunings")
    second = client.post(f"{BASE}/knowledge-bases/{tunable_kb.id}/tunings")
    listed = client.get(f"{BASE}/knowledge-bases/{tunable_kb.id}/tunings")
    detail = client.get(f"{BASE}/tunings/{first.json()['id']}")

    assert first.status_code == 201
    body = first.json()
    assert (body["status"], body["version"], body["switched"]) == ("queued", 1, False)
    assert body["model_name"].startswith(f"kb-{tunable_kb.id}-v1-")
    assert queued_tasks == [("tune", (body["id"],), 0)]
    assert second.status_code == 409 and second.json()["code"] == "busy"
    assert [row["id"] for row in listed.json()["results"]] == [body["id"]]
    assert detail.json() == body


def test_a_support_agent_may_not_queue_a_tuning_or_set_the_threshold(client, agent, tunable_kb):
    client.force_login(agent)
    tuning = client.post(f"{BASE}/knowledge-bases/{tunable_kb.id}/tunings")
    threshold = client.patch(f"{BASE}/knowledge-bases/{tunable_kb.id}", json.dumps({"answer_threshold": 0.3}),
                             content_type="application/json")

    assert (tuning.status_code, tuning.json()["code"]) == (403, "admin_only")
    assert (threshold.status_code, threshold.json()["code"]) == (403, "admin_only")
    assert not RetrievalTuning.objects.exists()
    tunable_kb.refresh_from_db()
    assert tunable_kb.answer_threshold is None


def test_a_tuning_needs_phrasings_to_hold_out(client, admin, kb):
    entry_create(knowledge_base=kb, question="Where is my order?", answer="Account > Orders.", phrasings=["parcel?"])
    client.force_login(admin)

    response = client.post(f"{BASE}/knowledge-bases/{kb.id}/tunings")

    assert response.status_code == 400
    assert response.json()["code"] == "not_enough_data"
    assert "at least 2 enabled entries with two or more phrasings" in response.json()["detail"]


def test_an_admin_sets_and_resets_the_answer_threshold(client, admin, tunable_kb):
    client.force_login(admin)
    path = f"{BASE}/knowledge-bases/{tunable_kb.id}"

    chosen = client.patch(path, json.dumps({"answer_threshold": 0.35}), content_type="application/json")
    too_high = client.patch(path, json.dumps({"answer_threshold": 1.5}), content_type="application/json")
    reset = client.patch(path, json.dumps({"answer_threshold": None}), content_type="application/json")

    assert chosen.json()["answer_threshold"] == 0.35
    assert too_high.status_code == 400 and "answer_threshold" in too_high.json()
    assert reset.json()["answer_threshold"] is None
    assert reset.json()["default_threshold"] == chosen.json()["default_threshold"]
    assert reset.json()["embedding_model"] == "base"


def test_the_threshold_decides_what_is_answered_confidently(client, admin, demo_kb):
    client.force_login(admin)
    question = {"kb": demo_kb.id, "q": "How long does delivery take?"}
    before = client.get(f"{BASE}/search", question).json()
    for threshold, confident in ((0.0, True), (1.0, False)):
        client.patch(f"{BASE}/knowledge-bases/{demo_kb.id}", json.dumps({"answer_threshold": threshold}),
                     content_type="application/json")
        after = client.get(f"{BASE}/search", question).json()
        assert (after["confidence"], after["confident"]) == (before["confidence"], confident)


# --- feedback pairs ------------------------------------------------------------------------------

@pytest.fixture
def suggestion(tunable_kb, agent):
    conversation = Conversation.objects.create(knowledge_base=tunable_kb, assignee=agent)
    cited = tunable_kb.entries.get(question="Where is my order?")
    return Message.objects.create(conversation=conversation, role=Message.Role.ASSISTANT, text=cited.answer,
                                  standalone_question="my box never came",
                                  citations=[{"entry_id": cited.id, "question": cited.question, "score": 0.5}])


def feedback(client, message, **body):
    return post_json(client, f"{BASE}/messages/{message.id}/feedback", body)


def test_an_accepted_suggestion_pairs_the_question_with_the_cited_entry(client, agent, suggestion):
    client.force_login(agent)

    assert feedback(client, suggestion, action="accepted").status_code == 200

    pair = FeedbackPair.objects.get()
    assert (pair.text, pair.entry_id, pair.source, pair.message_id) == (
        "my box never came", suggestion.citations[0]["entry_id"], "accepted", suggestion.id)


def test_a_rejected_suggestion_with_the_right_entry_is_a_corrected_pair(client, agent, suggestion, tunable_kb):
    client.force_login(agent)
    right = tunable_kb.entries.get(question="How do I pay?")

    response = feedback(client, suggestion, action="rejected", entry=right.id)

    assert response.status_code == 200
    assert list(FeedbackPair.objects.values_list("text", "entry_id", "source")) == [
        ("my box never came", right.id, "corrected")]


def test_a_rejected_suggestion_without_an_entry_teaches_nothing(client, agent, suggestion):
    client.force_login(agent)

    assert feedback(client, suggestion, action="rejected").status_code == 200
    assert not FeedbackPair.objects.exists()


def test_an_entry_of_another_knowledge_base_is_refused(client, agent, suggestion):
    other = knowledge_base_create(name="Other")
    stranger = entry_create(knowledge_base=other, question="Q?", answer="A.")
    client.force_login(agent)

    response = feedback(client, suggestion, action="rejected", entry=stranger.id)

    assert response.status_code == 400
    assert response.json() == {"detail": f"Entry {stranger.id} is not in this conversation's knowledge base.",
                               "code": "invalid", "field": "entry"}
    suggestion.refresh_from_db()
    assert suggestion.feedback == "" and not FeedbackPair.objects.exists()  # nothing half-written


# --- accuracy over time ------------------------------------------------------------------------------

def test_suggestion_accuracy_per_day(client, agent, tunable_kb):
    conversation = Conversation.objects.create(knowledge_base=tunable_kb, assignee=agent)
    now = timezone.now()
    for days_ago, verdicts in ((2, ["accepted", "rejected", "edited", ""]), (0, ["rejected"])):
        for verdict in verdicts:
            message = Message.objects.create(conversation=conversation, role=Message.Role.ASSISTANT, text="x",
                                             feedback=verdict)
            Message.objects.filter(id=message.id).update(created_at=now - timedelta(days=days_ago))
    old = Message.objects.create(conversation=conversation, role=Message.Role.ASSISTANT, text="x", feedback="accepted")
    Message.objects.filter(id=old.id).update(created_at=now - timedelta(days=40))
    client.force_login(agent)

    rows = client.get(f"{BASE}/knowledge-bases/{tunable_kb.id}/accuracy", {"days": 30}).json()

    assert rows == [
        {"day": str((now - timedelta(days=2)).date()), "suggestions": 4, "right": 2, "wrong": 1, "accuracy": 0.667},
        {"day": str(now.date()), "suggestions": 1, "right": 0, "wrong": 1, "accuracy": 0.0}]
    assert len(suggestion_accuracy(knowledge_base=tunable_kb, days=60)) == 3
    assert client.get(f"{BASE}/knowledge-bases/{tunable_kb.id}/accuracy", {"days": 0}).status_code == 400


# --- automatic tuning and the reconcile --------------------------------------------------------------

def test_a_tuning_is_due_after_content_changes_but_not_after_its_own_switch(tunable_kb, queued_tasks, settings):
    settings.CUSTOMER_SERVICE_AUTO_TUNE_AFTER_S = 600
    assert retrieval_tuning_due(knowledge_base=tunable_kb)  # never tuned
    tuning = retrieval_tuning_start(knowledge_base=tunable_kb)
    assert not retrieval_tuning_due(knowledge_base=tunable_kb)  # one is queued
    RetrievalTuning.objects.filter(id=tuning.id).update(status="succeeded", switched=True)
    tunable_kb.embedding_model = tuning.model_name
    tunable_kb.save()  # the switch changes the knowledge base, not its entries
    assert not retrieval_tuning_due(knowledge_base=tunable_kb)
    entry = tunable_kb.entries.first()
    entry_update(entry=entry, phrasings=[*entry.phrasings, "a new way to ask"])
    assert retrieval_tuning_due(knowledge_base=tunable_kb)


def test_a_reindex_queues_a_tuning_after_the_configured_wait(tunable_kb, queued_tasks, settings,
                                                             django_capture_on_commit_callbacks):
    from apps.customer_service.services.retrieval_tuning import retrieval_tuning_schedule_if_due

    settings.CUSTOMER_SERVICE_AUTO_TUNE_AFTER_S = None
    assert retrieval_tuning_schedule_if_due(knowledge_base_id=tunable_kb.id) is None
    settings.CUSTOMER_SERVICE_AUTO_TUNE_AFTER_S = 600
    with django_capture_on_commit_callbacks(execute=True):
        tuning = retrieval_tuning_schedule_if_due(knowledge_base_id=tunable_kb.id)
    assert queued_tasks == [("tune", (tuning.id,), 600)]
    assert retrieval_tuning_schedule_if_due(knowledge_base_id=tunable_kb.id) is None  # one is queued already


def test_the_reconcile_queues_again_a_tuning_whose_worker_died(tunable_kb, queued_tasks, settings):
    settings.CUSTOMER_SERVICE_AUTO_TUNE_AFTER_S = None
    tuning = retrieval_tuning_start(knowledge_base=tunable_kb)
    RetrievalTuning.objects.filter(id=tuning.id).update(
        status="running", heartbeat_at=timezone.now() - timedelta(seconds=settings.ADAPTER_JOB_STALE_S + 1))

    assert retrieval_tunings_reconcile() == [tuning.id]
    assert RetrievalTuning.objects.get(id=tuning.id).status == "queued"
    assert retrieval_tunings_reconcile() == []  # queued again just now: left alone
    assert queued_tasks[-1] == ("tune", (tuning.id,), 0)


def test_deleting_a_knowledge_base_removes_its_tuned_models(tunable_kb, queued_tasks, settings,
                                                           django_capture_on_commit_callbacks):
    from apps.customer_service.services import knowledge_base_delete
    from apps.customer_service.services.retrieval_tuning import embedders_dir

    tuning = retrieval_tuning_start(knowledge_base=tunable_kb)
    folder = embedders_dir() / tuning.model_name
    folder.mkdir(parents=True)
    (folder / "modules.json").write_text("[]")

    with django_capture_on_commit_callbacks(execute=True):
        knowledge_base_delete(knowledge_base=tunable_kb)

    assert not folder.exists()
    assert not Entry.objects.exists()


def test_a_tuned_model_model_service_does_not_serve_sends_retrieval_back_to_the_base_model(demo_kb):
    from apps.customer_service.index_model import index_model_read
    from apps.customer_service.retrieval import index_directory
    from apps.customer_service.selectors import entry_search
    from apps.customer_service.services import knowledge_base_reindex

    demo_kb.embedding_model, demo_kb.calibration = "kb-lost-v1", {"weights": [1.0], "bias": 0.0, "threshold": 0.5}
    demo_kb.save()

    result = knowledge_base_reindex(knowledge_base_id=demo_kb.id)

    demo_kb.refresh_from_db()
    assert (result["dense"], result["model"]) == (True, "base")
    assert (demo_kb.embedding_model, demo_kb.calibration) == ("", {})
    assert demo_kb.index_error.startswith("back to the base model: ") and "kb-lost-v1" in demo_kb.index_error
    assert index_model_read(index_directory(demo_kb.id)) == ""
    assert entry_search(knowledge_base=demo_kb, question="How long does delivery take?").dense
