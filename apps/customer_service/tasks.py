import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.core.jobs import job_heartbeat, lost_jobs_requeue
from apps.customer_service.models import KnowledgeBase, RetrievalTuning
from apps.customer_service.services import knowledge_base_reindex
from apps.customer_service.services.retrieval_tuning import retrieval_tuning_run, retrieval_tuning_schedule_if_due

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, queue="celery", max_retries=10)
def knowledge_base_reindex_task(self, knowledge_base_id: int) -> dict:
    """Rebuild one knowledge base's retrieval index (idempotent; safe to run twice). While it
    indexes, the knowledge base's `updated_at` is kept fresh, so the reconcile leaves it alone."""
    indexing = KnowledgeBase.objects.filter(id=knowledge_base_id, index_status=KnowledgeBase.IndexStatus.INDEXING)
    with job_heartbeat(indexing, field="updated_at", stale_after_s=settings.JOBS_REQUEUE_AFTER_S):
        result = knowledge_base_reindex(knowledge_base_id=knowledge_base_id)
    logger.info("reindexed knowledge base %s: %s", knowledge_base_id, result)
    if result["status"] == "busy":  # another job is indexing: look again when it is done
        raise self.retry(countdown=5)
    if result["status"] == "ready" and not result["dense"]:  # model_service was down: add embeddings later
        raise self.retry(countdown=60)
    if result["status"] == "ready":
        retrieval_tuning_schedule_if_due(knowledge_base_id=knowledge_base_id)
    return result


@shared_task(acks_late=True, queue="celery")
def retrieval_tuning_task(tuning_id: int) -> dict:
    """Tune one knowledge base's embedding model; a duplicate delivery of a finished or live tuning is
    harmless, and `retrieval_tunings_reconcile` queues a lost one again."""
    result = retrieval_tuning_run(tuning_id=tuning_id)
    logger.info("retrieval tuning %s: %s", tuning_id, result)
    return result


def knowledge_bases_reconcile() -> list[int]:
    """Queue again the reindexing of knowledge bases left pending or indexing, untouched for
    JOBS_REQUEUE_AFTER_S: their enqueue failed or their worker died. Each is set back to pending
    (so the reindex claims it at once) with a fresh `updated_at` (queued again once per period at most)."""
    now = timezone.now()
    lost = {"index_status__in": [KnowledgeBase.IndexStatus.PENDING, KnowledgeBase.IndexStatus.INDEXING],
            "updated_at__lt": now - timedelta(seconds=settings.JOBS_REQUEUE_AFTER_S)}
    requeued = []
    for knowledge_base_id in KnowledgeBase.objects.filter(**lost).values_list("id", flat=True):
        if KnowledgeBase.objects.filter(id=knowledge_base_id, **lost).update(
                index_status=KnowledgeBase.IndexStatus.PENDING, updated_at=now):
            logger.warning("knowledge base %s was left unindexed; reindexing queued again", knowledge_base_id)
            knowledge_base_reindex_task.delay(knowledge_base_id)
            requeued.append(knowledge_base_id)
    return requeued


def retrieval_tunings_reconcile() -> list[int]:
    """Queue again the tunings no worker is known to hold (apps.core.jobs.lost_jobs_requeue): queued ones
    not taken within JOBS_REQUEUE_AFTER_S past any countdown they were queued with, running ones whose
    heartbeat is older than ADAPTER_JOB_STALE_S."""
    return lost_jobs_requeue(
        model=RetrievalTuning, queued=RetrievalTuning.Status.QUEUED, running=RetrievalTuning.Status.RUNNING,
        wait_s=settings.JOBS_REQUEUE_AFTER_S + (settings.CUSTOMER_SERVICE_AUTO_TUNE_AFTER_S or 0),
        stale_after_s=settings.ADAPTER_JOB_STALE_S, enqueue=retrieval_tuning_task.delay, noun="retrieval tuning")
