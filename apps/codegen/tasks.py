import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.codegen.services import repository_index
from apps.codegen.models import Repository
from apps.core.jobs import job_heartbeat

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, queue="celery")
def repository_index_task(repository_id: int) -> dict:
    """Index (or reindex the changed files of) one repository; idempotent. While it indexes, the
    repository's `updated_at` is kept fresh, so the reconcile leaves a live job alone."""
    indexing = Repository.objects.filter(id=repository_id, status=Repository.Status.INDEXING)
    with job_heartbeat(indexing, field="updated_at", stale_after_s=settings.JOBS_REQUEUE_AFTER_S):
        result = repository_index(repository_id=repository_id)
    logger.info("indexed repository %s: %s", repository_id, result)
    return result


def repositories_reconcile() -> list[int]:
    """Queue again the repositories left pending or indexing, untouched for JOBS_REQUEUE_AFTER_S:
    their enqueue failed or their worker died. Each is set back to pending (so the index claims it
    at once) with a fresh `updated_at` (so it is queued again once per period at most)."""
    now = timezone.now()
    lost = {"status__in": [Repository.Status.PENDING, Repository.Status.INDEXING],
            "updated_at__lt": now - timedelta(seconds=settings.JOBS_REQUEUE_AFTER_S)}
    requeued = []
    for repository_id in Repository.objects.filter(**lost).values_list("id", flat=True):
        if Repository.objects.filter(id=repository_id, **lost).update(status=Repository.Status.PENDING,
                                                                      updated_at=now):
            logger.warning("repository %s was left unindexed; queued again", repository_id)
            repository_index_task.delay(repository_id)
            requeued.append(repository_id)
    return requeued
