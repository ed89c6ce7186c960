import json
from io import BytesIO
import logging

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.adapters.datasets import parse_jsonl
from apps.adapters.models import Adapter, AdapterDataset, AdapterJob
from apps.adapters.services import (GateRefused, adapter_job_run, adapter_promote, adapter_retire, adapters_sync,
                                    dataset_upload, job_start)
from apps.core.errors import ApplicationError
from apps.core.model_client import adapter_or_base, get_client
from tests.users import user_fixture
from training.adapter_config import AdapterConfig

TINY = AdapterConfig(lr=1e-2, epochs=1, batch_sequences=8, micro_batch=8, max_length=64)


def jsonl(examples) -> bytes:
    return "\n".join(json.dumps(e) for e in examples).encode()


@pytest.fixture(autouse=True)
def adapter_settings(settings, tmp_path, tiny_checkpoint):
    settings.SUITE_DATA_DIR = tmp_path / "data"
    settings.ADAPTER_BASE_CHECKPOINT = str(tiny_checkpoint)


admin = user_fixture("admin", Role.ADMIN)


def chat(question: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def test_each_bad_line_is_reported_and_left_out():
    data = jsonl([chat("Where is my order?", "In Account > Orders."), {"prompt": "2+2=", "completion": "4"},
                  {"text": "plain text"}]) + b"\n{broken\n" + jsonl([
                      {"messages": [{"role": "user", "content": "hi"}]}, {"prompt": "x", "completion": ""}, {"y": 1}])

    parsed = parse_jsonl(data)

    assert parsed.report["accepted"] == 3
    assert [(r["line"], r["reason"].split(":")[0]) for r in parsed.rejected] == [
        (4, "not JSON"), (5, "messages must be a list of at least two turns"),
        (6, "prompt and completion must both be non-empty text"),
        (7, "needs `messages`, `prompt` and `completion`, or `text`")]


def test_a_file_without_any_usable_line_is_refused():
    with pytest.raises(ApplicationError, match="no usable training example"):
        parse_jsonl(b'{"y": 1}\n')


def test_a_knowledge_base_dataset_asks_in_the_prompt_the_app_sends(admin):
    from apps.adapters.services import dataset_from_knowledge_base
    from apps.customer_service.dialogue import wording_messages
    from apps.customer_service.services import entry_create, knowledge_base_create

    knowledge_base = knowledge_base_create(name="Shop")
    entry = entry_create(knowledge_base=knowledge_base, question="Do you ship to the UK?", answer="Yes, in 3 days.",
                         phrasings=["Can I order from Britain?", "UK delivery?"])
    entry_create(knowledge_base=knowledge_base, question="Hidden?", answer="No.", enabled=False)

    dataset = dataset_from_knowledge_base(knowledge_base=knowledge_base, user=admin)

    expected = [{"messages": [*wording_messages(question, [entry]), {"role": "assistant", "content": entry.answer}]}
                for question in [entry.question, *entry.phrasings]]
    examples = dataset.train_examples + dataset.validation_examples
    assert sorted(map(json.dumps, examples)) == sorted(map(json.dumps, expected))
    assert dataset.domain == "customer_service"


@pytest.mark.slow
def test_a_job_trains_evaluates_and_registers_an_adapter(admin, client):
    examples = [chat(f"Where is order {i}?", "It ships within 2 working days.") for i in range(40)]
    dataset = dataset_upload(name="shipping", domain="customer_service", filename="s.jsonl",
                             file=BytesIO(jsonl(examples)), user=admin)
    job = job_start(dataset=dataset, adapter_name="customer_service", config=TINY, user=admin)

    result = adapter_job_run(job_id=job.id)

    job.refresh_from_db()
    adapter = Adapter.objects.get()
    assert (result["status"], job.status, job.adapter_id) == ("succeeded", "succeeded", adapter.id)
    assert job.progress["step"] == job.progress["total"]
    assert (adapter.name, adapter.version, adapter.status) == ("customer_service", 1, "trained")
    assert {"base", "new", "gate", "training"} <= set(adapter.metrics)
    assert adapter.metrics["gate"]["compared_with"] == "the base model"
    assert "gate:" in job.log
    client.force_login(admin)
    curve = client.get(f"/api/adapters/v1/jobs/{job.id}/loss").json()  # what the console's chart draws
    assert [point["step"] for point in curve["points"]] == list(range(1, job.progress["total"] + 1))
    assert curve["points"][-1]["loss"] == job.progress["loss"]
    assert curve["gate"] == {"metric": "answer F1", "passed": adapter.metrics["gate"]["passed"], "sides": {
        side: {"validation_loss": adapter.metrics[side]["validation_loss"], "metric": adapter.metrics[side]["answer_f1"]}
        for side in ("base", "new")}}
    assert client.get("/api/adapters/v1/jobs/999999/loss").status_code == 404


def test_one_job_per_adapter_at_a_time(admin):
    dataset = dataset_upload(name="d", domain="other", filename="d.jsonl", file=BytesIO(jsonl([{"text": "a b c"}])),
                             user=admin)
    job_start(dataset=dataset, adapter_name="shop", config=TINY, user=admin)

    with pytest.raises(ValueError, match="already queued"):
        job_start(dataset=dataset, adapter_name="shop", config=TINY, user=admin)


def test_a_cancelled_queued_job_never_trains(admin):
    from apps.adapters.services import job_cancel

    dataset = dataset_upload(name="d", domain="other", filename="d.jsonl", file=BytesIO(jsonl([{"text": "a b c"}])),
                             user=admin)
    job = job_cancel(job=job_start(dataset=dataset, adapter_name="shop", config=TINY, user=admin))

    assert adapter_job_run(job_id=job.id) == {"status": "cancelled"}
    assert not Adapter.objects.exists()


@pytest.mark.slow
def test_promotion_follows_the_gate_and_syncs_model_service(admin, settings, transformers_server, tmp_path,
                                                            tiny_checkpoint, caplog):
    from training.adapters import train_adapter

    settings.MODEL_SERVICE_URL = transformers_server.url
    path = tmp_path / "adapter"
    train_adapter(tiny_checkpoint, [{"text": "hello there"}] * 8, path, TINY)
    failing = Adapter.objects.create(name="customer_service", domain="customer_service", version=1, path=str(path),
                                     metrics={"gate": {"passed": False, "reason": "worse than the base model: x"}})

    with pytest.raises(GateRefused, match="worse than the base model"):
        adapter_promote(adapter=failing, user=admin)
    with caplog.at_level(logging.WARNING):
        adapter_promote(adapter=failing, user=admin, override=True)

    client = get_client()
    assert "customer_service" in client.models()
    assert adapter_or_base(client, "customer_service") == "customer_service"
    assert Adapter.objects.get(id=failing.id).metrics["override"]["by"] == "admin"
    assert "despite the gate" in caplog.text

    client.unload_adapter(name="customer_service")  # as after a model_service restart
    assert adapters_sync() == ["customer_service"]
    assert "customer_service" in client.models()

    adapter_retire(adapter=Adapter.objects.get(id=failing.id))
    with caplog.at_level(logging.WARNING):
        assert adapter_or_base(client, "customer_service") is None  # apps fall back to the base model
    assert "not loaded in model_service" in caplog.text


def test_the_adapters_api_is_for_admins_only(client, admin):
    for role in (Role.SUPPORT_AGENT, Role.DEVELOPER, Role.CLINICIAN):
        client.force_login(user_create(username=f"u-{role}", password="pw-roles-1234", role=role))
        assert client.get("/api/adapters/v1/jobs").status_code == 403
    client.force_login(admin)
    upload = client.post("/api/adapters/v1/datasets", {"name": "d", "domain": "customer_service",
                                                       "file": SimpleUploadedFile("d.jsonl", b'{"text": "hi"}\nnope\n')})
    assert upload.status_code == 201
    assert upload.json()["report"]["rejected"][0]["line"] == 2
    bad_config = client.post("/api/adapters/v1/jobs", {"dataset": upload.json()["id"], "adapter_name": "x1",
                                                       "config": {"learning_rate": 1}}, content_type="application/json")
    assert bad_config.status_code == 400 and "unknown settings" in bad_config.json()["config"][0]
    assert AdapterJob.objects.count() == 0


def test_code_datasets_mask_one_line_of_each_chunk_between_prefix_and_suffix():
    from apps.codegen.selectors import repository_examples

    chunk = "def area(width, height):\n    product = width * height\n    return product\n"

    (example,) = repository_examples([chunk, "x = 1\n"])  # a one-line chunk has nothing around its line

    prefix, rest = example["prompt"].removeprefix("<|fim_prefix|>").split("<|fim_suffix|>")
    suffix = rest.removesuffix("<|fim_middle|>")
    assert prefix + example["completion"] + "\n" + suffix == chunk
    assert repository_examples([chunk]) == [example]  # the masked line depends on the chunk alone


def test_the_gate_scores_each_domain_with_its_own_metric():
    from apps.adapters.evaluation import differential_agreement, domain_metric, line_exact_match, token_f1

    summary = ("Computed differential: Pneumonia (61%), Acute bronchitis (20%), Influenza (9%). Urgency: "
               "see a doctor today. This summary restates the model's computed result; it is not a diagnosis.")

    assert differential_agreement("Likely pneumonia, maybe influenza.", summary) == pytest.approx(2 / 3)
    assert line_exact_match("  return product  \nextra", "return product") == 1.0
    assert line_exact_match("return width", "return product") == 0.0
    assert [domain_metric(d)[0] for d in ("customer_service", "codegen", "medical", "other")] == [
        "answer_f1", "line_exact_match", "differential_agreement", "answer_f1"]
    assert domain_metric("other")[2] is token_f1


def test_datasets_from_suggestions_and_medical_cases(admin):
    from apps.adapters.services import dataset_from_medical_cases, dataset_from_suggestions
    from apps.customer_service.dialogue import wording_messages
    from apps.customer_service.models import Conversation, Message
    from apps.customer_service.services import entry_create, knowledge_base_create
    from apps.medical.models import Case, CaseResult, DiagnosisModel
    from apps.medical.narrative import narrative, narrative_messages

    knowledge_base = knowledge_base_create(name="Shop")
    entry = entry_create(knowledge_base=knowledge_base, question="Do you ship to the UK?", answer="Yes, in 3 days.")
    conversation = Conversation.objects.create(knowledge_base=knowledge_base)
    for feedback, final_text in (("accepted", "Yes, in 3 days."), ("edited", "Yes! UK orders take 3 days."),
                                 ("rejected", "")):
        Message.objects.create(conversation=conversation, role="assistant", text="Yes, in 3 days.",
                               standalone_question="UK shipping?", feedback=feedback, final_text=final_text,
                               citations=[{"entry_id": entry.id, "question": entry.question, "score": 0.9}])
    model = DiagnosisModel.objects.create(version=1, source="demo", artefact="unused", data_hash="x", patients=1)
    case = Case.objects.create(clinician=admin, age=40, sex="F", evidence=["E_91"])
    result = {"conditions": [{"name": "Pneumonia", "probability": 0.6}], "urgency": {"level": "routine",
                                                                                      "reasons": []},
              "next_questions": [], "labels": {}}
    CaseResult.objects.create(case=case, model=model, evidence=case.evidence, result={**result, "conditions": []})
    CaseResult.objects.create(case=case, model=model, evidence=case.evidence, result=result)  # the latest

    suggestions = dataset_from_suggestions(user=admin)
    cases = dataset_from_medical_cases(user=admin)

    sent = sorted(e["messages"][-1]["content"] for e in suggestions.train_examples + suggestions.validation_examples)
    assert sent == ["Yes! UK orders take 3 days.", "Yes, in 3 days."]
    assert all(e["messages"][:-1] == wording_messages("UK shipping?", [entry])
               for e in suggestions.train_examples + suggestions.validation_examples)
    (case_example,) = cases.train_examples + cases.validation_examples
    assert case_example["messages"] == [*narrative_messages(narrative(result)),
                                        {"role": "assistant", "content": narrative(result)}]
    assert (suggestions.domain, cases.domain) == ("customer_service", "medical")


def test_building_a_dataset_from_the_suites_data_through_the_api(client, admin):
    from apps.codegen.models import Chunk, Repository, SourceFile

    repository = Repository.objects.create(name="shop", path="/nowhere")
    source = SourceFile.objects.create(repository=repository, path="a.py", language="python", content_hash="h")
    Chunk.objects.create(file=source, start_line=1, end_line=3, text="def f(x):\n    y = x * 2\n    return y\n")
    client.force_login(admin)

    code = client.post("/api/adapters/v1/datasets", {"repository": repository.id}, content_type="application/json")

    nothing = client.post("/api/adapters/v1/datasets", {"source": "medical_cases"}, content_type="application/json")
    unknown = client.post("/api/adapters/v1/datasets", {"source": "emails"}, content_type="application/json")
    missing = client.post("/api/adapters/v1/datasets", {"repository": 999}, content_type="application/json")
    empty = client.post("/api/adapters/v1/datasets", {}, content_type="application/json")

    assert (code.status_code, code.json()["domain"], code.json()["report"]["accepted"]) == (201, "codegen", 1)
    assert (nothing.status_code, unknown.status_code, missing.status_code, empty.status_code) == (400, 400, 404, 400)
    assert "no usable training example" in nothing.json()["detail"]
    assert "source" in unknown.json()
    assert "`repository`" in empty.json()["detail"]


def test_the_console_builds_a_dataset_from_a_knowledge_base(client, admin):
    from apps.adapters.models import AdapterDataset
    from apps.customer_service.services import entry_create, knowledge_base_create

    knowledge_base = knowledge_base_create(name="Shop")
    entry_create(knowledge_base=knowledge_base, question="Do you ship to the UK?", answer="Yes, in 3 days.",
                 phrasings=["UK delivery?"])
    client.force_login(admin)

    page = client.get("/console/adapters/")
    built = client.post("/console/adapters/datasets/build/", {"source": f"knowledge_base:{knowledge_base.id}"},
                        follow=True)
    refused = client.post("/console/adapters/datasets/build/", {"source": "suggestions"}, follow=True)

    assert f'<option value="knowledge_base:{knowledge_base.id}">Knowledge base: Shop</option>' in page.content.decode()
    assert AdapterDataset.objects.get().origin == f"knowledge-base:{knowledge_base.id}"
    assert "Dataset Shop (Q&amp;A):" in built.content.decode()
    assert "Dataset not built: There is no usable training example in the file." in refused.content.decode()


def test_deeply_nested_and_overlong_lines_are_reported_without_being_parsed(settings):
    settings.ADAPTER_DATASET_MAX_LINE_CHARS = 200
    data = jsonl([{"text": "fine"}]) + b"\n" + b"[" * 100_000 + b"]" * 100_000 + b"\n" + jsonl(
        [{"text": "x" * 300}])

    parsed = parse_jsonl(data)

    assert parsed.report["accepted"] == 1
    assert parsed.rejected == [{"line": 2, "reason": "longer than 200 characters"},
                               {"line": 3, "reason": "longer than 200 characters"}]
    settings.ADAPTER_DATASET_MAX_LINE_CHARS = 1_000_000
    assert parse_jsonl(data).rejected[0] == {"line": 2, "reason": "nested deeper than 16 levels"}


def test_a_file_with_too_many_lines_is_refused(settings):
    settings.ADAPTER_DATASET_MAX_LINES = 3

    with pytest.raises(ApplicationError, match="more than 3 lines"):
        parse_jsonl(jsonl([{"text": f"line {i}"} for i in range(4)]))


def test_an_upload_larger_than_the_limit_is_refused_while_read(client, admin, settings):
    settings.ADAPTER_DATASET_MAX_BYTES = 12_000
    client.force_login(admin)

    upload = client.post("/api/adapters/v1/datasets", {"name": "d", "file": SimpleUploadedFile(
        "d.jsonl", jsonl([{"text": "a" * 100}] * 200))})
    deep = client.post("/api/adapters/v1/datasets", {"name": "d", "file": SimpleUploadedFile(
        "d.jsonl", b"[" * 5000 + b"]" * 5000 + b"\n" + jsonl([{"text": "hi"}]))})

    assert (upload.status_code, upload.json()) == (413, {
        "detail": "The file is larger than the limit of 12,000 bytes (ADAPTER_DATASET_MAX_BYTES).", "code": "too_large",
        "field": "file"})
    assert deep.status_code == 201
    assert deep.json()["report"]["rejected"] == [{"line": 1, "reason": "nested deeper than 16 levels"}]
    assert AdapterDataset.objects.count() == 1  # the refused upload left nothing


def test_console_posts_with_ids_that_are_not_numbers_are_not_found(client, admin):
    client.force_login(admin)

    job = client.post("/console/adapters/jobs/start/", {"dataset": "abc", "adapter_name": "shop"})
    build = client.post("/console/adapters/datasets/build/", {"source": "repository:1 OR 1=1"})
    huge = client.post("/console/adapters/jobs/start/", {"dataset": "9" * 40, "adapter_name": "shop"})

    assert (job.status_code, build.status_code, huge.status_code) == (404, 404, 404)


def test_an_adapter_name_that_is_not_a_plain_name_is_refused_in_the_console(client, admin):
    dataset = dataset_upload(name="d", domain="other", filename="d.jsonl", file=BytesIO(jsonl([{"text": "a b c"}])),
                             user=admin)
    client.force_login(admin)

    page = client.post("/console/adapters/jobs/start/", {
        "dataset": dataset.id, "adapter_name": "../../etc", "lr": "0.01", "epochs": "1", "batch_sequences": "8",
        "rank": "8"}, follow=True)

    assert "Job not started: An adapter name is 2 to 64 lower-case letters" in page.content.decode()
    assert not AdapterJob.objects.exists()


def test_the_reconcile_queues_again_only_the_jobs_no_worker_holds(admin, settings):
    from datetime import timedelta

    from django.utils import timezone

    from apps.adapters.tasks import adapter_jobs_reconcile

    settings.JOBS_REQUEUE_AFTER_S = settings.ADAPTER_JOB_STALE_S = 60
    dataset = dataset_upload(name="d", domain="other", filename="d.jsonl", file=BytesIO(jsonl([{"text": "a b c"}])),
                             user=admin)
    jobs = {name: job_start(dataset=dataset, adapter_name=name, config=TINY, user=admin)
            for name in ("just-queued", "lost-enqueue", "alive", "dead")}
    long_ago = timezone.now() - timedelta(minutes=2)
    AdapterJob.objects.filter(id=jobs["lost-enqueue"].id).update(created_at=long_ago)
    AdapterJob.objects.filter(id=jobs["alive"].id).update(status="running", attempts=1, heartbeat_at=timezone.now())
    AdapterJob.objects.filter(id=jobs["dead"].id).update(status="running", attempts=1, heartbeat_at=long_ago)

    requeued = adapter_jobs_reconcile()

    assert sorted(requeued) == sorted([jobs["lost-enqueue"].id, jobs["dead"].id])
    assert AdapterJob.objects.get(id=jobs["dead"].id).status == "queued"
    assert adapter_jobs_reconcile() == []  # queued again once per JOBS_REQUEUE_AFTER_S at most
    assert adapter_job_run(job_id=jobs["alive"].id) == {"status": "running"}  # a duplicate delivery does nothing
    assert AdapterJob.objects.get(id=jobs["alive"].id).attempts == 1


def test_the_console_refuses_an_upload_past_the_limit_and_keeps_one_within_it(client, admin, settings):
    settings.ADAPTER_DATASET_MAX_BYTES = 100
    client.force_login(admin)

    refused = client.post("/console/adapters/datasets/upload/", {"name": "big", "file": SimpleUploadedFile(
        "big.jsonl", jsonl([{"text": "a" * 50}] * 3))}, follow=True)
    kept = client.post("/console/adapters/datasets/upload/", {"name": "small", "file": SimpleUploadedFile(
        "small.jsonl", jsonl([{"text": "a b c"}, {"text": "d e f"}]))}, follow=True)

    assert "The file is larger than the limit of 100 bytes (ADAPTER_DATASET_MAX_BYTES)." in refused.content.decode()
    assert "Dataset small: 2 training and 0 validation examples, 0 lines rejected." in kept.content.decode()
    assert list(AdapterDataset.objects.values_list("name", flat=True)) == ["small"]
