"""A real Celery worker (Redis broker, PostgreSQL) records its heartbeat for the status page."""
import time

import pytest
from django.conf import settings

from apps.core.models import WorkerHeartbeat
from apps.core.selectors import worker_status_list
from apps.core.services import worker_heartbeat_record
from tests.celery_workers import start_worker, stop_worker

pytestmark = pytest.mark.slow


@pytest.fixture
def worker(transactional_db):
    process = start_worker("heartbeat-test")
    yield process
    stop_worker(process)


def test_a_running_worker_reports_alive(worker):
    deadline = time.monotonic() + 90
    while not WorkerHeartbeat.objects.filter(hostname__startswith="heartbeat-test@").exists():
        assert worker.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, "no heartbeat within 90 s"
        time.sleep(0.5)

    statuses = [status for status in worker_status_list() if status.hostname.startswith("heartbeat-test@")]
    assert len(statuses) == 1
    assert statuses[0].alive


def test_a_silent_worker_is_shown_as_not_alive(db):
    from datetime import timedelta

    from django.utils import timezone

    beat = worker_heartbeat_record(hostname="old@host")
    WorkerHeartbeat.objects.filter(id=beat.id).update(
        last_seen_at=timezone.now() - timedelta(seconds=settings.WORKER_HEARTBEAT_TIMEOUT + 1))

    assert [(s.hostname, s.alive) for s in worker_status_list()] == [("old@host", False)]


def test_a_job_heartbeat_keeps_beating_after_a_database_error(transactional_db, caplog):
    from django.db import connection

    from apps.core.heartbeat import row_heartbeat

    beat = worker_heartbeat_record(hostname="job@host")
    first_seen = beat.last_seen_at
    with connection.cursor() as cursor:  # the database refuses every heartbeat until the trigger is dropped
        cursor.execute("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ "
                       "LANGUAGE plpgsql; CREATE TRIGGER refuse BEFORE UPDATE ON core_workerheartbeat "
                       "FOR EACH ROW EXECUTE FUNCTION refuse()")
    try:
        with row_heartbeat(WorkerHeartbeat.objects.filter(id=beat.id), every_s=0.05, field="last_seen_at") as thread:
            deadline = time.monotonic() + 60
            while "could not refresh the heartbeat of WorkerHeartbeat" not in caplog.text:
                assert time.monotonic() < deadline, "no heartbeat failed"
                time.sleep(0.05)
            with connection.cursor() as cursor:
                cursor.execute("DROP TRIGGER refuse ON core_workerheartbeat; DROP FUNCTION refuse()")
            while WorkerHeartbeat.objects.get(id=beat.id).last_seen_at == first_seen:
                assert thread.is_alive(), "the heartbeat thread died"
                assert time.monotonic() < deadline, "no heartbeat after the database came back"
                time.sleep(0.05)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS refuse ON core_workerheartbeat; DROP FUNCTION IF EXISTS refuse()")

    assert WorkerHeartbeat.objects.get(id=beat.id).last_seen_at > first_seen
