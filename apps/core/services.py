from django.db import transaction
from django.utils import timezone

from apps.core.models import WorkerHeartbeat


@transaction.atomic
def worker_heartbeat_record(*, hostname: str, started_at=None) -> WorkerHeartbeat:
    now = timezone.now()
    defaults = {"last_seen_at": now}
    if started_at is not None:
        defaults["started_at"] = started_at
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults=defaults, create_defaults={**defaults, "started_at": started_at or now}
    )
    return heartbeat
