import logging

from celery import shared_task

from apps.codegen.indexing import repository_index

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, queue="celery")
def repository_index_task(repository_id: int) -> dict:
    """Index (or reindex the changed files of) one repository; idempotent."""
    result = repository_index(repository_id=repository_id)
    logger.info("indexed repository %s: %s", repository_id, result)
    return result
