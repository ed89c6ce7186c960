"""Claimed jobs: the one way every app takes a job row for a worker, and keeps it while the work runs.

A row is claimed (its status set to `running`, its heartbeat to now) unless a live job holds it: one
whose status is `running` and whose heartbeat is younger than the job's stale limit. A duplicate
delivery of a live job is told it is busy and does nothing; a job whose worker died (its heartbeat
went stale) is taken over. While the work runs, `job_heartbeat` keeps the heartbeat fresh at a
quarter of the same limit, and the reconcile (apps/core/tasks.py) queues again what went stale.

The stale limit of each kind of job is a named setting (config/settings/base.py, the jobs block):
ADAPTER_JOB_STALE_S for adapter training, JOBS_REQUEUE_AFTER_S for repository indexing and
knowledge-base reindexing.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any, Callable, Iterable

from django.db import models, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.core.heartbeat import row_heartbeat

logger = logging.getLogger(__name__)


class ClaimOutcome(str, Enum):
    CLAIMED = "claimed"  # the row is now running under this worker
    BUSY = "busy"  # a live job holds it (running, fresh heartbeat)
    FINISHED = "finished"  # its status is none the job may start from (done, cancelled, ...)
    GONE = "gone"  # there is no such row


@dataclass(frozen=True)
class JobClaim:
    outcome: ClaimOutcome
    row: models.Model | None  # the claimed row as it is now; None unless claimed

    @property
    def claimed(self) -> bool:
        return self.outcome is ClaimOutcome.CLAIMED


def job_claim(*, model: type[models.Model], pk: Any, status_field: str, running: str, heartbeat_field: str,
              stale_after_s: float, startable: Iterable[str] | None = None, conditions: dict | None = None,
              updates: dict | None = None) -> JobClaim:
    """Claim row `pk` of `model` for this worker, under a row lock (`select_for_update`).

    Claimed when the row is not `running` (and, where `startable` names statuses, is in one of them)
    or is running with a heartbeat older than `stale_after_s` seconds; busy while a live claim holds
    it (a running row that never beat counts as live). `conditions` are further field values the row
    must have (else finished); `updates` are further values (expressions too) written with the claim."""
    now = timezone.now()
    with transaction.atomic():
        row = model.objects.select_for_update().filter(pk=pk).first()
        if row is None:
            return JobClaim(ClaimOutcome.GONE, None)
        status, beat = getattr(row, status_field), getattr(row, heartbeat_field)
        if status == running:
            if beat is None or beat >= now - timedelta(seconds=stale_after_s):
                return JobClaim(ClaimOutcome.BUSY, None)
        elif startable is not None and status not in set(startable):
            return JobClaim(ClaimOutcome.FINISHED, None)
        values = {status_field: running, heartbeat_field: now, **(updates or {})}
        if not model.objects.filter(pk=pk, **(conditions or {})).update(**values):
            return JobClaim(ClaimOutcome.FINISHED, None)
        row.refresh_from_db()
        return JobClaim(ClaimOutcome.CLAIMED, row)


@contextmanager
def job_heartbeat(rows: QuerySet, *, field: str, stale_after_s: float):
    """Keep `field` of `rows` (the job's row while it is running) fresh while the block runs, four
    times within the stale limit, so neither a duplicate delivery nor the reconcile takes it over."""
    with row_heartbeat(rows, every_s=stale_after_s / 4, field=field) as thread:
        yield thread


def lost_jobs_requeue(*, model: type[models.Model], queued: str, running: str, wait_s: float, stale_after_s: float,
                      enqueue: Callable[[int], Any], noun: str) -> list[int]:
    """Queue again the rows of `model` (a job with `status`, `heartbeat_at`, `created_at`) no worker is
    known to hold: queued ones not taken within `wait_s` (their enqueue failed, or the broker lost them)
    and running ones whose heartbeat is older than `stale_after_s` (their worker died). Each goes back to
    queued with the time it was queued again in `heartbeat_at`, so it is queued again once per period at
    most; `enqueue(id)` sends its task. Returns the ids queued again."""
    now = timezone.now()
    waited = now - timedelta(seconds=wait_s)
    lost = (Q(status=queued, heartbeat_at__lt=waited) | Q(status=queued, heartbeat_at=None, created_at__lt=waited)
            | Q(status=running, heartbeat_at__lt=now - timedelta(seconds=stale_after_s)))
    requeued = []
    for row_id in model.objects.filter(lost).values_list("id", flat=True):
        if model.objects.filter(lost, id=row_id).update(status=queued, heartbeat_at=now):
            logger.warning("%s %s was lost (no worker holds it); queued again", noun, row_id)
            enqueue(row_id)
            requeued.append(row_id)
    return requeued
