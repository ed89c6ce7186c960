"""Training jobs: queue, cancel, and run one (train, evaluate, register) in a worker.

torch and peft are imported inside the run alone: a web process queues jobs without loading them."""
from __future__ import annotations

import dataclasses
import logging
import re
import time
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.adapters import selectors
from apps.adapters.models import Adapter, AdapterDataset, AdapterJob
from apps.core.errors import ApplicationError
from apps.core.jobs import job_claim, job_heartbeat
from training.adapter_config import AdapterConfig, adapter_config_fields

logger = logging.getLogger(__name__)
PROGRESS_EVERY_S = 1.0
LOSS_CURVE_POINTS = 500  # a job's loss curve keeps at most this many (evenly spaced) steps
ADAPTER_NAME_PATTERN = r"[a-z][a-z0-9_-]{1,63}"


class JobBusy(ApplicationError, ValueError):
    """The adapter has a queued or running job already (a ValueError too, as it was before)."""


def job_config(*, values: dict) -> AdapterConfig:
    """The training settings a job names (any left out keep their defaults); a name that is no
    setting is refused, the names listed under `config` as the API has always answered."""
    unknown = set(values) - adapter_config_fields()
    if unknown:
        message = f"unknown settings: {', '.join(sorted(unknown))}"
        raise ApplicationError(message, field="config", extra={"config": [message]})
    try:
        return AdapterConfig(**values)
    except (TypeError, ValueError) as error:  # a value of the wrong kind, a schedule that does not exist
        raise ApplicationError(f"invalid settings: {error}", field="config", extra={"config": [str(error)]}) from None


@transaction.atomic
def job_start(*, dataset: AdapterDataset, adapter_name: str, config: AdapterConfig, user=None) -> AdapterJob:
    """Queue a training job; one job per adapter at a time. The name becomes a folder: it is checked here.
    A micro-batch never holds more than the sequences of one optimizer step."""
    if not re.fullmatch(ADAPTER_NAME_PATTERN, adapter_name):
        raise ApplicationError("An adapter name is 2 to 64 lower-case letters, digits, _ or -, starting with a letter.",
                               field="adapter_name")
    busy = selectors.job_busy(adapter_name=adapter_name)
    if busy is not None:
        raise JobBusy(f"a job for {adapter_name!r} is already {busy.status}", code="busy",
                      field="adapter_name")
    config = dataclasses.replace(config, micro_batch=min(config.micro_batch, config.batch_sequences))
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
    claim = job_claim(model=AdapterJob, pk=job.id, status_field="status", running=AdapterJob.Status.RUNNING,
                      heartbeat_field="heartbeat_at", stale_after_s=settings.ADAPTER_JOB_STALE_S,
                      startable=[AdapterJob.Status.QUEUED], conditions={"cancel_requested": False},
                      updates={"attempts": F("attempts") + 1, "started_at": Coalesce("started_at", Value(now))})
    if not claim.claimed:
        return None
    job = AdapterJob.objects.select_related("dataset").get(id=job_id)
    if not job.output_dir:
        version = selectors.adapter_next_version(name=job.adapter_name)
        job.output_dir = str(settings.SUITE_DATA_DIR / "adapters" / job.adapter_name / f"v{version}")
        job.save(update_fields=["output_dir"])
    return job


def adapter_job_run(*, job_id: int) -> dict:
    """Train, evaluate and register the adapter of one job; a job already finished is left alone.

    A job whose worker was lost (its heartbeat went stale) is taken over by the next delivery (the
    reconcile queues it again) and resumes from its last training checkpoint; a fresh job starts
    from scratch."""
    from training.adapters import clear_resume_state  # torch: only a worker gets here

    job = _job_claim(job_id)
    if job is None:
        return {"status": AdapterJob.objects.get(id=job_id).status}
    out = Path(job.output_dir)
    if job.attempts == 1:
        clear_resume_state(out)  # left by an older job of the same name that did not finish
    with job_heartbeat(AdapterJob.objects.filter(id=job.id, status=AdapterJob.Status.RUNNING),
                       field="heartbeat_at", stale_after_s=settings.ADAPTER_JOB_STALE_S):
        return _job_train(job, out, version=int(out.name.removeprefix("v")))


def _job_train(job: AdapterJob, out: Path, *, version: int) -> dict:
    last_saved = [0.0]
    first_step = []  # of this attempt: a resumed job starts past 1
    curve: list[list] = []  # [step, loss]; a resumed attempt keeps the points before where it resumed

    def progress(step, total, loss, tokens_per_s):
        now = time.monotonic()
        if not first_step:
            first_step.append(step)
            curve.extend(point for point in job.loss_curve if point[0] < step)
        stride = -(-total // LOSS_CURVE_POINTS)
        if step % stride == 0 or step == total:
            curve.append([step, round(loss, 4)])
        if now - last_saved[0] >= PROGRESS_EVERY_S or step == total:
            last_saved[0] = now
            eta = (total - step) * (now - started) / (step - first_step[0] + 1)
            AdapterJob.objects.filter(id=job.id).update(progress={
                "step": step, "total": total, "loss": round(loss, 4), "tokens_per_s": round(tokens_per_s, 1),
                "eta_s": round(eta, 1)}, loss_curve=curve)

    def cancelled() -> bool:
        return AdapterJob.objects.filter(id=job.id, cancel_requested=True).exists()

    started = time.monotonic()
    if job.attempts > 1:
        _log(job.id, f"attempt {job.attempts}: its worker was lost; resuming from the last training checkpoint")
    else:
        _log(job.id, f"training {job.adapter_name} v{version} on {len(job.dataset.train_examples)} examples")
    try:
        from apps.adapters.evaluation import evaluation_gate  # torch and peft: only a worker gets here
        from training.adapters import train_adapter

        summary = train_adapter(base_checkpoint(), job.dataset.train_examples, out, AdapterConfig(**job.config),
                                progress=progress, should_stop=cancelled)
        if summary["status"] == "cancelled":
            _log(job.id, f"cancelled at step {summary['steps']}")
            AdapterJob.objects.filter(id=job.id).update(status=AdapterJob.Status.CANCELLED, finished_at=timezone.now())
            return summary
        resumed = f" (resumed from step {summary['resumed_from_step']})" if summary["resumed_from_step"] else ""
        _log(job.id, f"trained: {summary['steps']} steps{resumed}, loss {summary['final_loss']:.4f}; evaluating")
        current = selectors.adapter_promoted(name=job.adapter_name)
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
