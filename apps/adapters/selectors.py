"""Reads of the adapters app. The adapters area is for admins (its API and console pages say so);
they see every dataset, job and adapter. An unknown id, or one that is no number, is not found (404).

The suite's data an adapter learns from is read through the owning app's selectors (its training
rows); this app never reads another app's models."""
from __future__ import annotations

from django.db.models import Max, QuerySet

from apps.adapters.models import Adapter, AdapterDataset, AdapterJob
from apps.core.errors import NotFoundError

MAX_ID = 2**63 - 1  # the largest BigAutoField value; a larger id would be a database error, not a 404
JOBS_SHOWN = 100


def _get(objects: QuerySet, object_id, noun: str):
    """The object with this id, or NotFoundError naming `noun` (also for an id that is no number)."""
    text = str(object_id).strip()
    found = objects.filter(id=int(text)).first() if text.isascii() and text.isdigit() and int(text) <= MAX_ID else None
    if found is None:
        raise NotFoundError(f"No {noun} {text[:40]!r}.", field=noun)
    return found


def dataset_list() -> QuerySet[AdapterDataset]:
    return AdapterDataset.objects.all()


def dataset_get(*, dataset_id) -> AdapterDataset:
    return _get(AdapterDataset.objects.all(), dataset_id, "dataset")


def job_list() -> QuerySet[AdapterJob]:
    """The latest jobs, newest first."""
    return AdapterJob.objects.all()[:JOBS_SHOWN]


def job_get(*, job_id) -> AdapterJob:
    return _get(AdapterJob.objects.all(), job_id, "job")


def job_loss_curve(*, job: AdapterJob) -> dict:
    """The job's training loss per step ([{"step", "loss"}], evenly thinned to at most
    services.LOSS_CURVE_POINTS) and, once its adapter is registered, the gate's comparison: per side
    (base, current, new) the validation loss and the domain metric on the held-out examples."""
    gate = None
    if job.adapter is not None:
        metrics = job.adapter.metrics
        metric = metrics.get("domain_metric", {"key": "answer_f1", "label": "answer F1"})
        gate = {"metric": metric["label"], "passed": metrics.get("gate", {}).get("passed"),
                "sides": {side: {"validation_loss": metrics[side].get("validation_loss"),
                                 "metric": metrics[side].get(metric["key"])}
                          for side in ("base", "current", "new") if side in metrics}}
    return {"job": job.id, "status": job.status, "total_steps": job.progress.get("total"),
            "points": [{"step": step, "loss": loss} for step, loss in job.loss_curve], "gate": gate}


def job_busy(*, adapter_name: str) -> AdapterJob | None:
    """The queued or running job of this adapter, if any (one job per adapter at a time)."""
    return AdapterJob.objects.filter(adapter_name=adapter_name,
                                     status__in=[AdapterJob.Status.QUEUED, AdapterJob.Status.RUNNING]).first()


def adapter_list() -> QuerySet[Adapter]:
    return Adapter.objects.all()


def adapter_get(*, adapter_id) -> Adapter:
    return _get(Adapter.objects.all(), adapter_id, "adapter")


def adapter_promoted(*, name: str) -> Adapter | None:
    """The version of `name` model_service serves, if any."""
    return Adapter.objects.filter(name=name, status=Adapter.Status.PROMOTED).first()


def adapter_next_version(*, name: str) -> int:
    return (Adapter.objects.filter(name=name).aggregate(Max("version"))["version__max"] or 0) + 1


def dataset_source_choices(*, user) -> list[tuple[str, str]]:
    """(value, label) of the suite's data `user` may build a dataset from, as the console offers it."""
    from apps.codegen.selectors import repository_list_for_user
    from apps.customer_service.selectors import knowledge_base_list

    return [*((f"knowledge_base:{kb.id}", f"Knowledge base: {kb.name}") for kb in knowledge_base_list()),
            ("suggestions", "Accepted and edited suggestions"),
            *((f"repository:{repo.id}", f"Repository (code, fill-in-the-middle): {repo.name}")
              for repo in repository_list_for_user(user=user)),
            ("medical_cases", "Medical cases (computed summaries)")]
