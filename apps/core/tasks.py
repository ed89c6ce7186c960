"""The periodic reconcile (Celery beat, every JOBS_RECONCILE_EVERY_S): work whose enqueue failed
or whose worker died is queued again, so no job, index or reindex stays queued or pending forever.
Each app decides what of its own is lost; every task is idempotent, so a duplicate does no harm."""
import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(queue="celery", ignore_result=True)
def jobs_reconcile_task() -> dict[str, list[int]]:
    """Queue again the lost work of every app; returns the ids queued again per kind."""
    from apps.adapters.tasks import adapter_jobs_reconcile
    from apps.codegen.tasks import repositories_reconcile
    from apps.customer_service.tasks import knowledge_bases_reconcile, retrieval_tunings_reconcile
    from apps.medical.tasks import federated_jobs_reconcile

    requeued = {"adapter_jobs": adapter_jobs_reconcile(), "repositories": repositories_reconcile(),
                "knowledge_bases": knowledge_bases_reconcile(), "retrieval_tunings": retrieval_tunings_reconcile(),
                "federated_jobs": federated_jobs_reconcile()}
    if any(requeued.values()):
        logger.warning("reconcile queued again: %s", requeued)
    return requeued
