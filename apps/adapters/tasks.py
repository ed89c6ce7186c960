import logging

from celery import shared_task
from django.conf import settings

from apps.adapters.models import AdapterJob
from apps.adapters.services import adapter_job_run, adapter_merge
from apps.core.jobs import lost_jobs_requeue

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, queue="celery")
def adapter_job_task(job_id: int) -> dict:
    """Train one adapter job. A job already finished, or alive on another worker, is left alone:
    a duplicate delivery is harmless, and `adapter_jobs_reconcile` queues a lost job again."""
    result = adapter_job_run(job_id=job_id)
    logger.info("adapter job %s: %s", job_id, result)
    return result


@shared_task(acks_late=True, queue="celery")
def adapter_merge_task(adapter_id: int) -> dict:
    """Merge a promoted adapter into the base weights and load it again (served merged from then on).
    Idempotent: an adapter retired meanwhile is left alone, a merge already written is reused."""
    result = adapter_merge(adapter_id=adapter_id)
    logger.info("adapter %s merge: %s", adapter_id, result)
    return result


def adapter_jobs_reconcile() -> list[int]:
    """Queue again the adapter jobs no worker is known to hold (apps.core.jobs.lost_jobs_requeue): queued
    ones not taken within JOBS_REQUEUE_AFTER_S, running ones whose heartbeat is older than ADAPTER_JOB_STALE_S."""
    return lost_jobs_requeue(model=AdapterJob, queued=AdapterJob.Status.QUEUED, running=AdapterJob.Status.RUNNING,
                             wait_s=settings.JOBS_REQUEUE_AFTER_S, stale_after_s=settings.ADAPTER_JOB_STALE_S,
                             enqueue=adapter_job_task.delay, noun="adapter job")
