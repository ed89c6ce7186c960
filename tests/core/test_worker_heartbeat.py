"""A real Celery worker (Redis broker, PostgreSQL) records its heartbeat for the status page."""
import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connection

from apps.core.models import WorkerHeartbeat
from apps.core.selectors import worker_status_list
from apps.core.services import worker_heartbeat_record
from model_service.process import REPO

pytestmark = pytest.mark.slow


def database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(transactional_db):
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.test", DATABASE_URL=database_url(),
               CELERY_BROKER_URL=settings.CELERY_BROKER_URL)
    process = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency", "1",
                                "--hostname", "heartbeat-test@%h", "--loglevel", "warning"],
                               cwd=REPO, env=env, start_new_session=True)
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


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
