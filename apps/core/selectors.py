from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.core.model_client import ModelServiceError, get_client
from apps.core.models import WorkerHeartbeat


@dataclass(frozen=True)
class WorkerStatus:
    hostname: str
    last_seen_at: datetime
    alive: bool


@dataclass(frozen=True)
class ModelServiceStatus:
    reachable: bool
    healthy: bool
    detail: dict[str, Any]
    error: str = ""


def worker_status_list() -> list[WorkerStatus]:
    cutoff = timezone.now() - timedelta(seconds=settings.WORKER_HEARTBEAT_TIMEOUT)
    return [
        WorkerStatus(beat.hostname, beat.last_seen_at, beat.last_seen_at >= cutoff)
        for beat in WorkerHeartbeat.objects.order_by("-last_seen_at")
    ]


def model_service_status() -> ModelServiceStatus:
    try:
        health = get_client(connect_retries=0).health()
    except ModelServiceError as error:
        return ModelServiceStatus(reachable=False, healthy=False, detail={}, error=str(error))
    return ModelServiceStatus(reachable=True, healthy=health.get("status") == "ok", detail=health)
