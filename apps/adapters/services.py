"""Writes of the adapters app: datasets, training jobs, the evaluation gate, promotion to serving."""
from __future__ import annotations

import dataclasses
import logging
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.adapters.datasets import (ParsedDataset, case_examples, knowledge_base_examples, parse_examples, parse_jsonl,
                                    repository_examples, wording_examples)
from apps.adapters.models import Adapter, AdapterDataset, AdapterJob
from apps.core.errors import ApplicationError
from apps.core.heartbeat import row_heartbeat
from apps.core.limits import read_bounded
from apps.core.model_client import ModelServiceError, get_client
from training.adapters import AdapterConfig, clear_resume_state, train_adapter

logger = logging.getLogger(__name__)
PROGRESS_EVERY_S = 1.0
ADAPTER_NAME_PATTERN = r"[a-z][a-z0-9_-]{1,63}"


class GateRefused(Exception):
    """Promotion refused: the new adapter is worse than the one it would replace."""


# --- datasets ----------------------------------------------------------------------------------

def _dataset_save(*, name: str, domain: str, origin: str, parsed: ParsedDataset, user) -> AdapterDataset:
    return AdapterDataset.objects.create(name=name, domain=domain, origin=origin, content_hash=parsed.content_hash,
                                         train_examples=parsed.train, validation_examples=parsed.validation,
                                         report=parsed.report, created_by=user)


@transaction.atomic
def dataset_upload(*, name: str, domain: str, filename: str, file: BinaryIO, user=None) -> AdapterDataset:
    """Read the JSONL `file` (stopping past ADAPTER_DATASET_MAX_BYTES: a 413) and keep its usable lines.
    Raises ApplicationError when the file as a whole is unusable; bad lines are only reported."""
    data = read_bounded(file, max_bytes=settings.ADAPTER_DATASET_MAX_BYTES)
    return _dataset_save(name=name, domain=domain, origin=f"upload:{filename}", parsed=parse_jsonl(data), user=user)


@transaction.atomic
def dataset_from_knowledge_base(*, knowledge_base, user=None) -> AdapterDataset:
    examples = knowledge_base_examples(knowledge_base.entries.filter(enabled=True))
    return _dataset_save(name=f"{knowledge_base.name} (Q&A)", domain="customer_service",
                         origin=f"knowledge-base:{knowledge_base.id}", parsed=parse_examples(examples), user=user)


@transaction.atomic
def dataset_from_suggestions(*, user=None) -> AdapterDataset:
    """What agents sent after accepting or editing a suggestion, asked as the app asks the model."""
    from apps.customer_service.models import Entry, Message

    kept = [Message.Feedback.ACCEPTED, Message.Feedback.EDITED]
    sent = Message.objects.filter(role=Message.Role.ASSISTANT, feedback__in=kept).exclude(citations=[])
    entries = Entry.objects.in_bulk([message.citations[0]["entry_id"] for message in sent])
    rows = [(message.standalone_question, entries[message.citations[0]["entry_id"]], message.final_text)
            for message in sent if message.citations[0]["entry_id"] in entries]
    return _dataset_save(name="Accepted suggestions", domain="customer_service", origin="suggestions",
                         parsed=parse_examples(wording_examples(rows)), user=user)


@transaction.atomic
def dataset_from_repository(*, repository, user=None) -> AdapterDataset:
    from apps.codegen.models import Chunk

    chunks = list(Chunk.objects.filter(file__repository=repository).values_list("text", flat=True))
    return _dataset_save(name=f"{repository.name} (code)", domain="codegen", origin=f"repository:{repository.id}",
                         parsed=parse_examples(repository_examples(chunks)), user=user)


@transaction.atomic
def dataset_from_medical_cases(*, user=None) -> AdapterDataset:
    """The latest computed summary of every case (never its free-text note); reading them is
    audited in the medical audit log, one event per case naming `user`."""
    from apps.medical.services import case_summaries_export

    summaries = case_summaries_export(user=user, purpose="adapter dataset")
    return _dataset_save(name="Medical cases (summaries)", domain="medical", origin="medical-cases",
                         parsed=parse_examples(case_examples(summaries)), user=user)


DATASET_SOURCES = ("knowledge_base", "suggestions", "repository", "medical_cases")


def dataset_build(*, source: str, object_id: int | None = None, user=None) -> AdapterDataset:
    """A dataset from the suite's own data; `object_id` names the knowledge base or repository.
    Raises ValueError for an unknown source, ApplicationError for no usable example,
    ObjectDoesNotExist for a bad id."""
    from apps.codegen.models import Repository
    from apps.customer_service.models import KnowledgeBase

    if source == "knowledge_base":
        return dataset_from_knowledge_base(knowledge_base=KnowledgeBase.objects.get(id=object_id), user=user)
    if source == "repository":
        return dataset_from_repository(repository=Repository.objects.get(id=object_id), user=user)
    if source == "suggestions":
        return dataset_from_suggestions(user=user)
    if source == "medical_cases":
        return dataset_from_medical_cases(user=user)
    raise ValueError(f"unknown source {source!r}: one of {', '.join(DATASET_SOURCES)}")


# --- jobs --------------------------------------------------------------------------------------

@transaction.atomic
def job_start(*, dataset: AdapterDataset, adapter_name: str, config: AdapterConfig, user=None) -> AdapterJob:
    """Queue a training job; one job per adapter at a time. The name becomes a folder: it is checked here."""
    if not re.fullmatch(ADAPTER_NAME_PATTERN, adapter_name):
        raise ApplicationError("An adapter name is 2 to 64 lower-case letters, digits, _ or -, starting with a letter.",
                               field="adapter_name")
    busy = AdapterJob.objects.filter(adapter_name=adapter_name,
                                     status__in=[AdapterJob.Status.QUEUED, AdapterJob.Status.RUNNING])
    if busy.exists():
        raise ValueError(f"a job for {adapter_name!r} is already {busy.first().status}")
    job = AdapterJob.objects.create(dataset=dataset, adapter_name=adapter_name, config=dataclasses.asdict(config),
                                    created_by=user)
    from apps.adapters.tasks import adapter_job_task

    transaction.on_commit(lambda: adapter_job_task.delay(job.id), robust=True)
    return job


def job_cancel(*, job: AdapterJob) -> AdapterJob:
    AdapterJob.objects.filter(id=job.id).update(cancel_requested=True)
    if job.status == AdapterJob.Status.QUEUED:
        AdapterJob.objects.filter(id=job.id).update(status=AdapterJob.Status.CANCELLED, finished_at=timezone.now())
    job.refresh_from_db()
    return job


def _log(job_id: int, line: str) -> None:
    job = AdapterJob.objects.get(id=job_id)
    job.log += f"{timezone.now():%H:%M:%S} {line}\n"
    job.save(update_fields=["log"])


def base_checkpoint() -> Path:
    return Path(settings.ADAPTER_BASE_CHECKPOINT)


def _job_claim(job_id: int) -> AdapterJob | None:
    """Mark the job as running under a new attempt. None when there is nothing to run here: the job
    is finished, cancelled, or running on a live worker (fresh heartbeat). So a duplicate delivery
    (a broker redelivering, the reconcile) does no harm; a lost job is queued again by the
    reconcile once its heartbeat is stale."""
    now = timezone.now()
    job = AdapterJob.objects.get(id=job_id)
    if job.cancel_requested and job.status in (AdapterJob.Status.QUEUED, AdapterJob.Status.RUNNING):
        AdapterJob.objects.filter(id=job.id).update(status=AdapterJob.Status.CANCELLED, finished_at=now)
        return None
    stale = now - timedelta(seconds=settings.ADAPTER_JOB_STALE_S)
    claimable = Q(status=AdapterJob.Status.QUEUED) | Q(status=AdapterJob.Status.RUNNING, heartbeat_at__lt=stale)
    claimed = AdapterJob.objects.filter(claimable, id=job.id, cancel_requested=False).update(
        status=AdapterJob.Status.RUNNING, attempts=F("attempts") + 1, heartbeat_at=now,
        started_at=Coalesce("started_at", Value(now)))
    if not claimed:
        return None
    job = AdapterJob.objects.select_related("dataset").get(id=job_id)
    if not job.output_dir:
        version = (Adapter.objects.filter(name=job.adapter_name).aggregate(Max("version"))["version__max"] or 0) + 1
        job.output_dir = str(settings.SUITE_DATA_DIR / "adapters" / job.adapter_name / f"v{version}")
        job.save(update_fields=["output_dir"])
    return job


def adapter_job_run(*, job_id: int) -> dict:
    """Train, evaluate and register the adapter of one job; a job already finished is left alone.

    A job whose worker was lost (its heartbeat went stale) is taken over by the next delivery (the
    reconcile queues it again) and resumes from its last training checkpoint; a fresh job starts
    from scratch."""
    job = _job_claim(job_id)
    if job is None:
        return {"status": AdapterJob.objects.get(id=job_id).status}
    out = Path(job.output_dir)
    if job.attempts == 1:
        clear_resume_state(out)  # left by an older job of the same name that did not finish
    with row_heartbeat(AdapterJob.objects.filter(id=job.id, status=AdapterJob.Status.RUNNING),
                       every_s=settings.ADAPTER_JOB_STALE_S / 4, field="heartbeat_at"):
        return _job_train(job, out, version=int(out.name.removeprefix("v")))


def _job_train(job: AdapterJob, out: Path, *, version: int) -> dict:
    last_saved = [0.0]
    first_step = []  # of this attempt: a resumed job starts past 1

    def progress(step, total, loss, tokens_per_s):
        now = time.monotonic()
        if not first_step:
            first_step.append(step)
        if now - last_saved[0] >= PROGRESS_EVERY_S or step == total:
            last_saved[0] = now
            eta = (total - step) * (now - started) / (step - first_step[0] + 1)
            AdapterJob.objects.filter(id=job.id).update(progress={
                "step": step, "total": total, "loss": round(loss, 4), "tokens_per_s": round(tokens_per_s, 1),
                "eta_s": round(eta, 1)})

    def cancelled() -> bool:
        return AdapterJob.objects.filter(id=job.id, cancel_requested=True).exists()

    started = time.monotonic()
    if job.attempts > 1:
        _log(job.id, f"attempt {job.attempts}: its worker was lost; resuming from the last training checkpoint")
    else:
        _log(job.id, f"training {job.adapter_name} v{version} on {len(job.dataset.train_examples)} examples")
    try:
        summary = train_adapter(base_checkpoint(), job.dataset.train_examples, out, AdapterConfig(**job.config),
                                progress=progress, should_stop=cancelled)
        if summary["status"] == "cancelled":
            _log(job.id, f"cancelled at step {summary['steps']}")
            AdapterJob.objects.filter(id=job.id).update(status=AdapterJob.Status.CANCELLED, finished_at=timezone.now())
            return summary
        resumed = f" (resumed from step {summary['resumed_from_step']})" if summary["resumed_from_step"] else ""
        _log(job.id, f"trained: {summary['steps']} steps{resumed}, loss {summary['final_loss']:.4f}; evaluating")
        from apps.adapters.evaluation import evaluation_gate

        current = Adapter.objects.filter(name=job.adapter_name, status=Adapter.Status.PROMOTED).first()
        metrics = evaluation_gate(checkpoint=base_checkpoint(), examples=job.dataset.validation_examples or
                                  job.dataset.train_examples[:16], new_adapter=out,
                                  current_adapter=Path(current.path) if current else None,
                                  domain=job.dataset.domain)
        metrics["training"] = {k: summary[k] for k in ("steps", "resumed_from_step", "final_loss", "tokens", "seconds")}
        adapter = Adapter.objects.create(name=job.adapter_name, domain=job.dataset.domain, version=version,
                                         path=str(out), metrics=metrics)
        AdapterJob.objects.filter(id=job.id).update(status=AdapterJob.Status.SUCCEEDED, adapter=adapter,
                                                    finished_at=timezone.now())
        _log(job.id, f"gate: {'passed' if metrics['gate']['passed'] else metrics['gate']['reason']}")
        return {"status": "succeeded", "adapter": adapter.id}
    except Exception as error:
        logger.exception("adapter job %s failed", job.id)
        _log(job.id, f"failed: {error}")
        AdapterJob.objects.filter(id=job.id).update(status=AdapterJob.Status.FAILED, finished_at=timezone.now())
        return {"status": "failed", "error": str(error)}


# --- serving -----------------------------------------------------------------------------------

def adapter_promote(*, adapter: Adapter, user=None, override: bool = False) -> Adapter:
    """Load the adapter into model_service under its name, replacing the promoted one.

    Refused when the evaluation gate failed, unless overridden (which is recorded and logged)."""
    gate = adapter.metrics.get("gate", {})
    if not gate.get("passed", False):
        if not override:
            raise GateRefused(gate.get("reason") or "the adapter was not evaluated")
        logger.warning("adapter %s v%s promoted by %s despite the gate: %s", adapter.name, adapter.version,
                       getattr(user, "username", None), gate.get("reason"))
        adapter.metrics["override"] = {"by": getattr(user, "username", None), "at": timezone.now().isoformat(),
                                       "gate_reason": gate.get("reason")}
    get_client().load_adapter(name=adapter.name, path=adapter.path)
    with transaction.atomic():
        Adapter.objects.filter(name=adapter.name, status=Adapter.Status.PROMOTED).exclude(id=adapter.id).update(
            status=Adapter.Status.RETIRED)
        adapter.status = Adapter.Status.PROMOTED
        adapter.promoted_at = timezone.now()
        adapter.save(update_fields=["status", "promoted_at", "metrics"])
    return adapter


def adapter_retire(*, adapter: Adapter) -> Adapter:
    if adapter.status == Adapter.Status.PROMOTED:
        try:
            get_client().unload_adapter(name=adapter.name)
        except ModelServiceError as error:
            logger.warning("could not unload %s from model_service: %s", adapter.name, error)
    adapter.status = Adapter.Status.RETIRED
    adapter.save(update_fields=["status"])
    return adapter


def adapters_sync() -> list[str]:
    """Load every promoted adapter into model_service (after it restarts); returns the names loaded."""
    loaded = []
    for adapter in Adapter.objects.filter(status=Adapter.Status.PROMOTED):
        get_client().load_adapter(name=adapter.name, path=adapter.path)
        loaded.append(adapter.name)
    return loaded
