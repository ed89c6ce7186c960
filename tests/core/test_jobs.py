"""The claimed-job helper on real PostgreSQL rows: claim, busy while a live claim holds, taken over
once stale, finished jobs left alone; and the heartbeat that keeps a claim live."""
import time
from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from apps.adapters.models import AdapterDataset, AdapterJob
from apps.core.jobs import ClaimOutcome, job_claim, job_heartbeat

STALE_S = 60


@pytest.fixture
def job(db):
    dataset = AdapterDataset.objects.create(name="faq", domain="customer_service", origin="upload:faq.jsonl",
                                            content_hash="0" * 64)
    return AdapterJob.objects.create(dataset=dataset, adapter_name="shop")


def claim(job, **extra):
    return job_claim(model=AdapterJob, pk=job.id, status_field="status", running=AdapterJob.Status.RUNNING,
                     heartbeat_field="heartbeat_at", stale_after_s=STALE_S, startable=[AdapterJob.Status.QUEUED],
                     **extra)


def test_a_queued_job_is_claimed_with_a_fresh_heartbeat_and_the_updates(job):
    before = timezone.now()

    result = claim(job, updates={"attempts": F("attempts") + 1})

    assert result.outcome is ClaimOutcome.CLAIMED and result.claimed
    assert (result.row.id, result.row.status, result.row.attempts) == (job.id, "running", 1)
    assert result.row.heartbeat_at >= before
    assert AdapterJob.objects.get(id=job.id).status == "running"


def test_a_second_claim_is_busy_while_the_first_is_live(job):
    claim(job, updates={"attempts": F("attempts") + 1})

    result = claim(job, updates={"attempts": F("attempts") + 1})

    assert (result.outcome, result.row) == (ClaimOutcome.BUSY, None)
    assert AdapterJob.objects.get(id=job.id).attempts == 1


def test_a_running_job_whose_heartbeat_is_stale_is_taken_over(job):
    AdapterJob.objects.filter(id=job.id).update(status="running", attempts=1,
                                                heartbeat_at=timezone.now() - timedelta(seconds=STALE_S + 5))

    result = claim(job, updates={"attempts": F("attempts") + 1})

    assert result.outcome is ClaimOutcome.CLAIMED
    assert result.row.attempts == 2
    assert result.row.heartbeat_at > timezone.now() - timedelta(seconds=5)


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_a_finished_job_is_not_claimed(job, status):
    AdapterJob.objects.filter(id=job.id).update(status=status)

    result = claim(job)

    assert (result.outcome, result.row) == (ClaimOutcome.FINISHED, None)
    assert AdapterJob.objects.get(id=job.id).status == status


def test_a_job_failing_a_condition_is_not_claimed(job):
    AdapterJob.objects.filter(id=job.id).update(cancel_requested=True)

    result = claim(job, conditions={"cancel_requested": False})

    assert result.outcome is ClaimOutcome.FINISHED
    assert AdapterJob.objects.get(id=job.id).status == "queued"


def test_without_startable_statuses_any_status_but_a_live_run_is_claimed(job):
    AdapterJob.objects.filter(id=job.id).update(status="succeeded")

    result = job_claim(model=AdapterJob, pk=job.id, status_field="status", running=AdapterJob.Status.RUNNING,
                       heartbeat_field="heartbeat_at", stale_after_s=STALE_S)

    assert result.outcome is ClaimOutcome.CLAIMED


def test_a_missing_row_is_gone(db):
    result = job_claim(model=AdapterJob, pk=123456, status_field="status", running=AdapterJob.Status.RUNNING,
                       heartbeat_field="heartbeat_at", stale_after_s=STALE_S)

    assert (result.outcome, result.row) == (ClaimOutcome.GONE, None)


def test_the_heartbeat_keeps_a_claim_live_past_its_stale_limit(transactional_db):
    dataset = AdapterDataset.objects.create(name="faq", domain="customer_service", origin="upload:faq.jsonl",
                                            content_hash="0" * 64)
    job = AdapterJob.objects.create(dataset=dataset, adapter_name="shop")
    stale_s = 0.4
    first = job_claim(model=AdapterJob, pk=job.id, status_field="status", running=AdapterJob.Status.RUNNING,
                      heartbeat_field="heartbeat_at", stale_after_s=stale_s)

    with job_heartbeat(AdapterJob.objects.filter(id=job.id), field="heartbeat_at", stale_after_s=stale_s):
        time.sleep(stale_s * 2.5)
        during = job_claim(model=AdapterJob, pk=job.id, status_field="status", running=AdapterJob.Status.RUNNING,
                           heartbeat_field="heartbeat_at", stale_after_s=stale_s)
    time.sleep(stale_s * 1.5)
    after = job_claim(model=AdapterJob, pk=job.id, status_field="status", running=AdapterJob.Status.RUNNING,
                      heartbeat_field="heartbeat_at", stale_after_s=stale_s)

    assert [first.outcome, during.outcome, after.outcome] == [ClaimOutcome.CLAIMED, ClaimOutcome.BUSY,
                                                              ClaimOutcome.CLAIMED]
