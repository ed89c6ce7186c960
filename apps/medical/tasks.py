import logging

from celery import shared_task
from django.conf import settings

from apps.core.jobs import lost_jobs_requeue
from apps.medical.models import FederatedJob
from apps.medical.services.federated import federated_job_run

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, queue="celery")
def federated_job_task(job_id: int) -> dict:
    """Run one federated training job. A job already finished, or alive on another worker, is left
    alone: a duplicate delivery is harmless, and `federated_jobs_reconcile` queues a lost job again."""
    result = federated_job_run(job_id=job_id)
    logger.info("federated job %s: %s", job_id, result)
    return result


def federated_jobs_reconcile() -> list[int]:
    """Queue again the federated jobs no worker is known to hold (apps.core.jobs.lost_jobs_requeue): queued
    ones not taken within JOBS_REQUEUE_AFTER_S, running ones whose heartbeat is older than
    MEDICAL_FEDERATED_JOB_STALE_S."""
    return lost_jobs_requeue(model=FederatedJob, queued=FederatedJob.Status.QUEUED,
                             running=FederatedJob.Status.RUNNING, wait_s=settings.JOBS_REQUEUE_AFTER_S,
                             stale_after_s=settings.MEDICAL_FEDERATED_JOB_STALE_S, enqueue=federated_job_task.delay,
                             noun="federated job")
