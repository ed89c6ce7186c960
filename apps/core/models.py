from django.conf import settings
from django.db import models


class BackgroundJob(models.Model):
    """The fields every job row a Celery worker runs shares (adapter training, retrieval tuning, federated
    training); apps.core.jobs claims a queued one, keeps its heartbeat fresh and requeues it when its worker
    is lost. Each kind adds its own status choices, inputs and results."""

    progress = models.JSONField(default=dict, blank=True)  # what the worker reports as it goes
    attempts = models.PositiveIntegerField(default=0)  # more than 1: started again after its worker was lost
    # refreshed while a worker runs it; for a queued job, when the reconcile last queued it again
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class WorkerHeartbeat(models.Model):
    """The last time each Celery worker said it was alive (written by apps.core.heartbeat)."""

    hostname = models.CharField(max_length=255, unique=True)
    last_seen_at = models.DateTimeField()
    started_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.hostname
