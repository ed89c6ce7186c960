"""The Celery application: `celery -A config worker` starts a worker, `celery -A config beat` the
scheduler of periodic tasks (CELERY_BEAT_SCHEDULE: the jobs reconcile)."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _add_heartbeat_step() -> None:
    from apps.core.heartbeat import HeartbeatStep

    app.steps["worker"].add(HeartbeatStep)


_add_heartbeat_step()
