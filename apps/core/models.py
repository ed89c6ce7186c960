from django.db import models


class WorkerHeartbeat(models.Model):
    """The last time each Celery worker said it was alive (written by apps.core.heartbeat)."""

    hostname = models.CharField(max_length=255, unique=True)
    last_seen_at = models.DateTimeField()
    started_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.hostname
