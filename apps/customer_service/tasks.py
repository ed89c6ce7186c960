import logging

from celery import shared_task

from apps.customer_service.services import knowledge_base_reindex

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, queue="celery", max_retries=10)
def knowledge_base_reindex_task(self, knowledge_base_id: int) -> dict:
    """Rebuild one knowledge base's retrieval index (idempotent; safe to run twice)."""
    result = knowledge_base_reindex(knowledge_base_id=knowledge_base_id)
    logger.info("reindexed knowledge base %s: %s", knowledge_base_id, result)
    if result["status"] == "busy":  # another job is indexing: look again when it is done
        raise self.retry(countdown=5)
    if result["status"] == "ready" and not result["dense"]:  # model_service was down: add embeddings later
        raise self.retry(countdown=60)
    return result
