"""Real Celery workers for tests: a subprocess on the test database and broker, in its own process group."""
import os
import signal
import subprocess
import sys

from django.conf import settings
from django.db import connection

from tests.model_service_process import REPO


def database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(name: str, **env: str) -> subprocess.Popen:
    """One worker process (concurrency 1) named `name@host`; `env` adds settings read from the environment."""
    environment = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.test", DATABASE_URL=database_url(),
                       CELERY_BROKER_URL=settings.CELERY_BROKER_URL, **env)
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency", "1",
                             "--hostname", f"{name}@%h", "--loglevel", "warning"],
                            cwd=REPO, env=environment, start_new_session=True)


def stop_worker(process: subprocess.Popen, sig: signal.Signals = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
    process.wait(timeout=30)


def purge_queue() -> None:
    """Jobs queued by earlier tests name database rows that no longer exist (or, ids being reused, rows
    of this test). Besides the queue, the tasks an earlier test's killed worker held unacknowledged go too:
    Redis would hand them to this test's worker once their visibility timeout has passed."""
    from config.celery import app

    app.control.purge()
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        channel.client.delete(channel.unacked_key, channel.unacked_index_key, channel.unacked_mutex_key)
