"""Retrieval tuning end to end: agents' corrections reach a tuning on a real Celery worker, the gate
takes the tuned model, model_service serves it by name, the index is rebuilt with it, and a customer
wording the base model got wrong is now found. And the gate refuses a model worse than the one in use."""
import json
import signal
import time

import httpx
import numpy as np
import pytest
from django.conf import settings

from apps.accounts.roles import Role
from apps.customer_service.index_model import index_model_read
from apps.customer_service.models import Conversation, KnowledgeBase, Message, RetrievalTuning
from apps.customer_service.retrieval import index_directory
from apps.customer_service.services import entry_create, knowledge_base_create, knowledge_base_reindex
from apps.customer_service.services.retrieval_tuning import (base_embedder_path, embedders_dir,
                                                             retrieval_tuning_run, retrieval_tuning_start)
from apps.customer_service.tasks import retrieval_tunings_reconcile
from tests.celery_workers import purge_queue, start_worker, stop_worker
from tests.model_service_process import start_model_service
from tests.users import user_fixture

pytestmark = pytest.mark.slow
BASE = "/api/customer-service/v1"
SHOP = [("Where is my order?", ["where is my parcel", "has my package shipped yet", "track my delivery",
                                "when will my order arrive"]),
        ("How do I return an item?", ["send something back", "what is your return policy",
                                      "I want a refund for a product", "how to exchange an item"]),
        ("Which payment methods do you accept?", ["can I pay by card", "do you take paypal", "pay with bank transfer",
                                                  "accepted ways to pay"]),
        ("How do I reset my password?", ["forgot my password", "can't log in", "change my login password",
                                         "locked out of my account"]),
        ("Do you ship abroad?", ["international shipping", "deliver to another country",
                                 "shipping outside the country", "overseas delivery"]),
        ("How do I contact support?", ["talk to a human", "customer service phone number", "email support",
                                       "speak to an agent"])]
# What customers wrote about damaged deliveries, each corrected by an agent to the returns entry; the
# 2nd and 4th are held out for the gate (services.retrieval_tuning._feedback_split).
CORRECTIONS = ["the blender arrived broken", "the kettle arrived broken", "my new lamp came smashed",
               "the vase came cracked"]
MISSED_BY_BASE = "the kettle arrived broken"
TUNING = {"epochs": 10, "learning_rate": 1e-4}  # a six-entry knowledge base makes one step per epoch
STALE_S = 3  # the killed worker's tuning counts as lost this long after its last heartbeat

agent = user_fixture("agent", Role.SUPPORT_AGENT)
admin = user_fixture("root", Role.ADMIN)


@pytest.fixture(scope="module")
def suite_data(tmp_path_factory):
    return tmp_path_factory.mktemp("tuning") / "data"


@pytest.fixture(scope="module")
def embedding_server(tiny_checkpoint, server_logs, suite_data):
    """model_service serving tuned embedders from where tuning jobs write them."""
    server = start_model_service(tiny_checkpoint, backend="transformers", log_dir=server_logs,
                                 embedders_dir=suite_data / "embedders")
    yield server
    server.stop()


@pytest.fixture
def served(settings, embedding_server, suite_data):
    settings.SUITE_DATA_DIR = suite_data
    settings.MODEL_SERVICE_URL = embedding_server.url
    settings.CUSTOMER_SERVICE_TUNING = TUNING
    return embedding_server


def shop_kb(name: str) -> KnowledgeBase:
    knowledge_base = knowledge_base_create(name=name)
    for question, phrasings in SHOP:
        entry_create(knowledge_base=knowledge_base, question=question, answer=f"Our answer: {question}",
                     phrasings=phrasings)
    return knowledge_base


def wait_for(condition, worker, what: str, timeout: float = 600):
    """Poll `condition` until true; `worker` (None: none is running) must stay alive meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert worker is None or worker.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(1)


def top_entry(client, knowledge_base, question) -> int:
    return client.get(f"{BASE}/search", {"kb": knowledge_base.id, "q": question, "k": 1}).json()["results"][0]["entry_id"]


@pytest.fixture
def workers(transactional_db, served, suite_data):
    """Start workers with `workers.start()`; all are stopped after the test."""
    purge_queue()
    started = []

    class Workers:
        @staticmethod
        def start():
            started.append(start_worker("tuning-test", TEST_MODEL_SERVICE_URL=served.url,
                                        SUITE_DATA_DIR=str(suite_data), CUSTOMER_SERVICE_TUNING=json.dumps(TUNING)))
            return started[-1]

    yield Workers
    for process in started:
        stop_worker(process)


def test_corrections_reach_a_tuning_that_survives_its_worker_and_finds_what_the_base_missed(
        workers, served, settings, client, agent, admin):
    worker = workers.start()
    knowledge_base = shop_kb("Tuned shop")
    wait_for(lambda: KnowledgeBase.objects.get(id=knowledge_base.id).index_status == "ready", worker, "indexing")
    returns = knowledge_base.entries.get(question="How do I return an item?")
    client.force_login(agent)
    assert top_entry(client, knowledge_base, MISSED_BY_BASE) != returns.id  # the base model gets it wrong
    conversation = Conversation.objects.create(knowledge_base=knowledge_base, assignee=agent)
    for text in CORRECTIONS:
        wrong = knowledge_base.entries.exclude(id=returns.id).first()
        suggestion = Message.objects.create(conversation=conversation, role=Message.Role.ASSISTANT,
                                            text=wrong.answer, standalone_question=text,
                                            citations=[{"entry_id": wrong.id, "question": wrong.question,
                                                        "score": 0.4}])
        response = client.post(f"{BASE}/messages/{suggestion.id}/feedback",
                               json.dumps({"action": "rejected", "entry": returns.id}),
                               content_type="application/json")
        assert response.status_code == 200
    client.force_login(admin)

    queued = client.post(f"{BASE}/knowledge-bases/{knowledge_base.id}/tunings").json()
    wait_for(lambda: RetrievalTuning.objects.get(id=queued["id"]).progress.get("phase") == "training", worker,
             "the training")
    stop_worker(worker, signal.SIGKILL)  # the worker dies mid-tuning, the task unacknowledged
    settings.ADAPTER_JOB_STALE_S = STALE_S
    wait_for(lambda: retrieval_tunings_reconcile() == [queued["id"]], None, "the reconcile finding it lost")
    worker = workers.start()
    wait_for(lambda: RetrievalTuning.objects.get(id=queued["id"]).status in ("succeeded", "failed"), worker,
             "the tuning")
    tuning = RetrievalTuning.objects.get(id=queued["id"])
    assert (tuning.status, tuning.error, tuning.attempts) == ("succeeded", "", 2)
    wait_for(lambda: index_model_read(index_directory(knowledge_base.id)) == tuning.model_name, worker,
             "the reindex with the tuned model")
    knowledge_base.refresh_from_db()

    assert tuning.switched
    gate = tuning.metrics["gate"]
    assert gate["current"]["model"] == "base" and gate["new"]["model"] == tuning.model_name
    assert gate["new"]["top1"] > gate["current"]["top1"]
    assert (tuning.metrics["feedback_pairs"], tuning.metrics["held_out_feedback_pairs"]) == (4, 2)
    assert tuning.metrics["training"]["steps"] == TUNING["epochs"]
    assert tuning.progress == {"phase": "done"}
    assert knowledge_base.embedding_model == tuning.model_name
    assert 0.0 < knowledge_base.calibration["threshold"] < 1.0  # fitted for this knowledge base
    assert (embedders_dir() / tuning.model_name / "modules.json").exists()
    assert top_entry(client, knowledge_base, MISSED_BY_BASE) == returns.id
    health = httpx.get(served.url + "/health").json()
    assert tuning.model_name in health["embeddings"]["tuned_loaded"]
    detail = client.get(f"{BASE}/knowledge-bases/{knowledge_base.id}").json()
    assert detail["embedding_model"] == tuning.model_name
    assert [path.name for path in embedders_dir().iterdir()] == [tuning.model_name]  # no partial left


def scrambled_fine_tune(*, output_dir, **_):
    """Stands in for training: the base model with its weights scrambled, saved where training saves."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(base_embedder_path()), device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * parameter.std().nan_to_num(0.02))
    model.save(str(output_dir))
    return {"steps": 0, "loss_curve": [], "seconds": 0.0, "stopped": False}


def test_the_gate_keeps_the_model_in_use_when_the_new_one_is_worse(db, served, monkeypatch):
    """A 'tuned' model with its weights scrambled loses to the base model on the held-out phrasings."""
    from apps.customer_service import tuning as recipe

    monkeypatch.setattr(recipe, "fine_tune", scrambled_fine_tune)
    knowledge_base = shop_kb("Gated shop")
    knowledge_base_reindex(knowledge_base_id=knowledge_base.id)
    tuning = retrieval_tuning_start(knowledge_base=knowledge_base)

    result = retrieval_tuning_run(tuning_id=tuning.id)

    tuning.refresh_from_db()
    knowledge_base.refresh_from_db()
    assert result["switched"] is False and tuning.status == "succeeded" and not tuning.switched
    assert tuning.metrics["gate"]["new"]["top1"] <= tuning.metrics["gate"]["current"]["top1"]
    assert tuning.metrics["reason"].startswith("kept the model in use")
    assert knowledge_base.embedding_model == ""
    assert not (embedders_dir() / tuning.model_name).exists()
    assert not list(embedders_dir().glob(".*partial"))
    assert np.isfinite(knowledge_base.calibration["bias"])  # the model in use was recalibrated
    assert retrieval_tuning_run(tuning_id=tuning.id) == {"status": "succeeded"}  # a duplicate delivery: nothing


def test_a_calibration_that_cannot_be_fitted_keeps_the_one_in_use(db, served, monkeypatch):
    from apps.customer_service import tuning as recipe

    def unfittable(*_, **__):
        raise ValueError("calibration needs both answered-right in-scope pairs and out-of-scope texts")

    monkeypatch.setattr(recipe, "fine_tune", scrambled_fine_tune)
    monkeypatch.setattr(recipe, "fit_calibration", unfittable)
    knowledge_base = shop_kb("Uncalibrated shop")
    knowledge_base.calibration = {"weights": [1.0, 1.0, 1.0], "bias": -1.0, "threshold": 0.5}
    knowledge_base.save()
    tuning = retrieval_tuning_start(knowledge_base=knowledge_base)

    retrieval_tuning_run(tuning_id=tuning.id)

    tuning.refresh_from_db()
    knowledge_base.refresh_from_db()
    assert (tuning.status, tuning.switched) == ("succeeded", False)
    assert tuning.metrics["calibration_error"].startswith("calibration needs both")
    assert tuning.metrics["tradeoff"] == []
    assert knowledge_base.calibration == {"weights": [1.0, 1.0, 1.0], "bias": -1.0, "threshold": 0.5}
