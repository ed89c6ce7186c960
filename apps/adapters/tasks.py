import logging

from celery import shared_task

from apps.adapters.services import adapter_job_run

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, queue="celery")
def adapter_job_task(job_id: int) -> dict:
    """Train one adapter job; a job that already finished is not run again."""
    result = adapter_job_run(job_id=job_id)
    logger.info("adapter job %s: %s", job_id, result)
    return result
