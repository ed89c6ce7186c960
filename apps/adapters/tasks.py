import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.adapters.models import AdapterJob
from apps.adapters.services import adapter_job_run

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, queue="celery")
def adapter_job_task(job_id: int) -> dict:
    """Train one adapter job. A job already finished, or alive on another worker, is left alone:
    a duplicate delivery is harmless, and `adapter_jobs_reconcile` queues a lost job again."""
    result = adapter_job_run(job_id=job_id)
    logger.info("adapter job %s: %s", job_id, result)
    return result


def adapter_jobs_reconcile() -> list[int]:
    """Queue again the jobs no worker is known to hold: queued ones not taken within
    JOBS_REQUEUE_AFTER_S (their enqueue failed, or the broker lost them) and running ones whose
    heartbeat is older than ADAPTER_JOB_STALE_S (their worker died). Each goes back to queued with
    the time it was queued again in `heartbeat_at`, so it is queued again once per period at most."""
    now = timezone.now()
    waited = now - timedelta(seconds=settings.JOBS_REQUEUE_AFTER_S)
    stale = now - timedelta(seconds=settings.ADAPTER_JOB_STALE_S)
    lost = (Q(status=AdapterJob.Status.QUEUED, heartbeat_at__lt=waited)
            | Q(status=AdapterJob.Status.QUEUED, heartbeat_at=None, created_at__lt=waited)
            | Q(status=AdapterJob.Status.RUNNING, heartbeat_at__lt=stale))
    requeued = []
    for job_id in AdapterJob.objects.filter(lost).values_list("id", flat=True):
        if AdapterJob.objects.filter(lost, id=job_id).update(status=AdapterJob.Status.QUEUED, heartbeat_at=now):
            logger.warning("adapter job %s was lost (no worker holds it); queued again", job_id)
            adapter_job_task.delay(job_id)
            requeued.append(job_id)
    return requeued
