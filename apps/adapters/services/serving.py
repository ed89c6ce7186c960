"""Serving: promotion through the evaluation gate, retirement, and loading the promoted adapters
into model_service."""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from apps.adapters.models import Adapter
from apps.core.errors import ApplicationError
from apps.core.model_client import ModelServiceError, get_client

logger = logging.getLogger(__name__)


class GateRefused(ApplicationError):
    """Promotion refused: the new adapter is worse than the one it would replace (a 409)."""


def adapter_promote(*, adapter: Adapter, user=None, override: bool = False) -> Adapter:
    """Load the adapter into model_service under its name, replacing the promoted one.

    Refused when the evaluation gate failed, unless overridden (which is recorded and logged); a 503
    when model_service cannot load it."""
    gate = adapter.metrics.get("gate", {})
    if not gate.get("passed", False):
        if not override:
            raise GateRefused(f"Promotion refused: {gate.get('reason') or 'the adapter was not evaluated'}. "
                              "Promote with the override to do it anyway (it is logged).", status=409,
                              code="gate_refused", field="override")
        logger.warning("adapter %s v%s promoted by %s despite the gate: %s", adapter.name, adapter.version,
                       getattr(user, "username", None), gate.get("reason"))
        adapter.metrics["override"] = {"by": getattr(user, "username", None), "at": timezone.now().isoformat(),
                                       "gate_reason": gate.get("reason")}
    try:
        get_client().load_adapter(name=adapter.name, path=adapter.path)
    except ModelServiceError as error:
        raise ApplicationError(f"model_service could not load the adapter: {error}", status=503,
                               code="model_service") from error
    with transaction.atomic():
        Adapter.objects.filter(name=adapter.name, status=Adapter.Status.PROMOTED).exclude(id=adapter.id).update(
            status=Adapter.Status.RETIRED)
        adapter.status = Adapter.Status.PROMOTED
        adapter.promoted_at = timezone.now()
        adapter.save(update_fields=["status", "promoted_at", "metrics"])
    return adapter


def adapter_retire(*, adapter: Adapter) -> Adapter:
    if adapter.status == Adapter.Status.PROMOTED:
        try:
            get_client().unload_adapter(name=adapter.name)
        except ModelServiceError as error:
            logger.warning("could not unload %s from model_service: %s", adapter.name, error)
    adapter.status = Adapter.Status.RETIRED
    adapter.save(update_fields=["status"])
    return adapter


def adapters_sync() -> list[str]:
    """Load every promoted adapter into model_service (after it restarts); returns the names loaded."""
    loaded = []
    for adapter in Adapter.objects.filter(status=Adapter.Status.PROMOTED):
        get_client().load_adapter(name=adapter.name, path=adapter.path)
        loaded.append(adapter.name)
    return loaded
