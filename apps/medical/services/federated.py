"""Federated training jobs: queue one (an admin; one at a time), run it in a worker (sites simulated from a
shared patients file, apps.medical.federated), register its model and put it through the activation gate.

The model goes through the activation gate (`diagnosis_model_gate`, services.training), as a centrally
trained one does.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import traceback

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.core.jobs import job_claim, job_heartbeat
from apps.medical.models import DiagnosisModel, FederatedJob
from apps.medical.selectors import condition_infos, evidence_specs, patients_dir
from apps.medical.services.audit import audit_event_create
from apps.medical.services.training import diagnosis_model_gate, diagnosis_model_register

logger = logging.getLogger(__name__)
PATIENTS_FILE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,150}\.csv"  # a file name, no folder
CONFIG_LIMITS = {"sites": (2, 8), "iterations": (1, 1000), "alpha": (0.01, 100.0),
                 "seed": (0, 2**31 - 1)}  # the settings a job may name, and their bounds


class FederatedJobBusy(ApplicationError):
    """A federated job is queued or running already (a 409)."""


def federated_config(*, values: dict):
    """The FederatedConfig a job names (left-out settings keep their defaults); a name that is no
    setting, or a value out of its bounds, is refused naming it."""
    from apps.medical.federated import FederatedConfig  # Flower: imported by the worker and by whoever starts a job

    for name, value in values.items():
        if name not in CONFIG_LIMITS:
            raise ApplicationError(f"unknown setting {name!r}; the settings are {', '.join(CONFIG_LIMITS)}",
                                   status=422, field=f"config.{name}")
        low, high = CONFIG_LIMITS[name]
        kind = float if isinstance(low, float) else int
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high or (
                kind is int and int(value) != value):
            raise ApplicationError(f"{name} is a number from {low} to {high}", status=422, field=f"config.{name}")
    return FederatedConfig(**{name: (float(v) if isinstance(CONFIG_LIMITS[name][0], float) else int(v))
                              for name, v in values.items()})


@transaction.atomic
def federated_job_start(*, source: str, patients_file: str, config: dict | None = None, user=None) -> FederatedJob:
    """Queue a federated training job over the patients in `patients_file` (under patients_dir()); one
    job at a time: a queued or running one makes this a 409."""
    if not re.fullmatch(PATIENTS_FILE_PATTERN, patients_file):
        raise ApplicationError("patients_file is a .csv file name (letters, digits, _ . -), no folder",
                               status=422, field="patients_file")
    if not (patients_dir() / patients_file).is_file():
        raise ApplicationError(f"there is no patients file {patients_file!r}", status=422, field="patients_file")
    source_max = FederatedJob._meta.get_field("source").max_length
    if len(source) > source_max:  # the console's form has no bound of its own; nor is a name echoed back whole
        raise ApplicationError(f"a knowledge base's name has at most {source_max} characters", status=422,
                               field="source")
    if not evidence_specs(source=source):
        raise ApplicationError(f"there is no knowledge base {source!r}", status=422, field="source")
    chosen = dataclasses.asdict(federated_config(values=config or {}))
    busy = (FederatedJob.objects.select_for_update()
            .filter(status__in=[FederatedJob.Status.QUEUED, FederatedJob.Status.RUNNING]).first())
    if busy is not None:
        raise FederatedJobBusy(f"federated job {busy.id} is already {busy.status}", status=409, code="busy")
    job = FederatedJob.objects.create(source=source, patients_file=patients_file, config=chosen, created_by=user)
    from apps.medical.tasks import federated_job_task

    transaction.on_commit(lambda: federated_job_task.delay(job.id), robust=True)
    return job


def _claim(job_id: int) -> FederatedJob | None:
    """The job, now running under a new attempt; None when it is finished or alive on another worker."""
    now = timezone.now()
    claim = job_claim(model=FederatedJob, pk=job_id, status_field="status", running=FederatedJob.Status.RUNNING,
                      heartbeat_field="heartbeat_at", stale_after_s=settings.MEDICAL_FEDERATED_JOB_STALE_S,
                      startable=[FederatedJob.Status.QUEUED],
                      updates={"attempts": F("attempts") + 1, "started_at": Coalesce("started_at", Value(now))})
    return claim.row if claim.claimed else None


def federated_job_run(*, job_id: int) -> dict:
    """Run one federated job (a job finished, or alive on another worker, is left alone): split the
    patients into the sites, train across them, register the model, gate it. A redelivered job whose
    worker died starts over (a run is minutes; nothing of it was registered)."""
    from apps.medical.diagnosis import read_patients
    from apps.medical.federated import FederatedConfig, federated_train, split_sites

    job = _claim(job_id)
    if job is None:
        return {"status": FederatedJob.objects.get(id=job_id).status}
    rows = FederatedJob.objects.filter(id=job.id, status=FederatedJob.Status.RUNNING)
    config = FederatedConfig(**job.config)

    def progress(iteration: int, iterations: int, loss: float) -> None:  # loss: objective per training patient
        rows.update(progress={"iteration": iteration, "iterations": iterations, "loss": round(loss, 4)})

    work = settings.SUITE_DATA_DIR / "medical" / "federated" / f"job-{job.id}"
    try:
        with job_heartbeat(rows, field="heartbeat_at", stale_after_s=settings.MEDICAL_FEDERATED_JOB_STALE_S):
            patients = read_patients(patients_dir() / job.patients_file)
            sites = split_sites(patients, sites=config.sites, alpha=config.alpha, seed=config.seed)
            try:
                result = federated_train(sites, evidence_specs(source=job.source),
                                         condition_infos(source=job.source), work=work, config=config,
                                         progress=progress)
            finally:  # the simulated sites' copies of the patients go; what they sent is in the metrics
                shutil.rmtree(work, ignore_errors=True)
        model = federated_model_register(engine=result.engine, metrics=result.metrics, source=job.source,
                                         user=job.created_by)
        gate = diagnosis_model_gate(model=model, user=job.created_by)
    except Exception as error:  # the job records why it failed; the worker lives on
        logger.exception("federated job %s failed", job.id)
        rows.update(status=FederatedJob.Status.FAILED, finished_at=timezone.now(),
                    error=f"{error}\n{traceback.format_exc(limit=5)}"[:4000])
        return {"status": FederatedJob.Status.FAILED}
    rows.update(status=FederatedJob.Status.SUCCEEDED, finished_at=timezone.now(), model=model,
                metrics={**result.metrics, "gate": gate})
    logger.info("federated job %s: model v%s, gate %s", job.id, model.version, gate)
    return {"status": FederatedJob.Status.SUCCEEDED, "model_version": model.version, "gate": gate}


def federated_model_register(*, engine, metrics: dict, source: str, user=None) -> DiagnosisModel:
    """Save a federated run's model under the next version (diagnosis_model_register), its data hash that of the
    sites' data hashes, which the sites reported; not active."""
    return diagnosis_model_register(engine=engine, metrics=metrics, data_hash=metrics["data_hash"], source=source,
                                    user=user, audit={"federated": True, "metrics": {
                                        k: v for k, v in metrics.items() if k not in ("federated", "data_hash")}})
