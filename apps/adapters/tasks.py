import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from apps.adapters.services import JobBusyElsewhere, adapter_job_run, jobs_lost

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, queue="celery", max_retries=None)
def adapter_job_task(self, job_id: int) -> dict:
    """Train one adapter job. A job already finished is not run again; a duplicate delivery of a
    job still alive on another worker waits until that worker finishes or is lost."""
    try:
        result = adapter_job_run(job_id=job_id)
    except JobBusyElsewhere as busy:
        raise self.retry(exc=busy, countdown=settings.ADAPTER_JOB_STALE_S) from None
    logger.info("adapter job %s: %s", job_id, result)
    return result


@worker_ready.connect
def resume_lost_adapter_jobs(**_) -> None:
    """A worker that starts queues again the jobs left running: if their worker is gone they resume
    from their last checkpoint once their heartbeat is stale; if it is alive the duplicate waits."""
    try:
        for job_id in jobs_lost():
            logger.warning("adapter job %s was left running; queued again to resume", job_id)
            adapter_job_task.delay(job_id)
    except Exception:  # the database being away must not stop the worker from starting
        logger.exception("could not look for adapter jobs to resume")
