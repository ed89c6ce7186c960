"""Heartbeats in the database: a worker bootstep that records the worker's own every few seconds,
and a thread that keeps a job's row fresh while the job runs (jobs use it through apps.core.jobs).

The status page reads the first; it works with every broker, including the server-less filesystem
transport that cannot answer Celery's broadcast `ping`. The reconcile reads the second.
"""
import logging
import threading
from contextlib import contextmanager

from celery import bootsteps
from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import QuerySet
from django.utils import timezone

logger = logging.getLogger(__name__)


class HeartbeatStep(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None
        self.started_at = timezone.now()

    def start(self, worker):
        self.beat(worker)
        self.tref = worker.timer.call_repeatedly(settings.WORKER_HEARTBEAT_INTERVAL, self.beat, (worker,))

    def stop(self, worker):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def beat(self, worker):
        from apps.core.services import worker_heartbeat_record

        close_old_connections()
        try:
            worker_heartbeat_record(hostname=worker.hostname, started_at=self.started_at)
        except Exception:  # the database being away must not kill the worker
            logger.exception("could not record the heartbeat of %s", worker.hostname)


@contextmanager
def row_heartbeat(rows: QuerySet, *, every_s: float, field: str):
    """Set `field` of `rows` to now every `every_s` seconds from a thread while the block runs, so
    the reconcile tells a job that is alive (a fresh timestamp) from one whose worker died.

    The thread outlives database errors (a restarted server, a dropped connection): it logs the
    error, drops its connection and tries again at the next beat."""
    stop = threading.Event()

    def beat():
        try:
            while not stop.wait(every_s):
                try:
                    close_old_connections()  # a connection broken by the last error is replaced
                    rows.update(**{field: timezone.now()})
                except Exception:
                    logger.exception("could not refresh the heartbeat of %s", rows.model.__name__)
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"{rows.model.__name__.lower()}-heartbeat", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join()
