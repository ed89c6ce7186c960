"""A worker bootstep that records the worker's heartbeat in the database every few seconds.

The status page reads it; it works with every broker, including the server-less filesystem
transport that cannot answer Celery's broadcast `ping`.
"""
import logging

from celery import bootsteps
from django.conf import settings
from django.db import close_old_connections
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
