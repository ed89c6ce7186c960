"""Writes of the customer-service app: knowledge bases, entries, imports, reindexing, conversations."""
from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass, field

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, ProtectedError
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.core.index_dirs import replace_directory
from apps.core.jobs import job_claim
from apps.core.model_client import ModelServiceError, ModelServiceRejected, get_client
from apps.customer_service.importers import ParsedRow, parse_file
from apps.customer_service.index_model import index_model_write
from apps.customer_service.models import Entry, EntryEmbedding, KnowledgeBase
from apps.customer_service.retrieval import Calibration, IndexData, KnowledgeBaseIndex, index_directory

logger = logging.getLogger(__name__)
EMBED_BATCH = 64


# --- knowledge bases and entries -------------------------------------------------------------

def schedule_reindex(knowledge_base: KnowledgeBase) -> None:
    """Mark the knowledge base pending and queue its reindex once the transaction commits."""
    from apps.customer_service.tasks import knowledge_base_reindex_task

    KnowledgeBase.objects.filter(id=knowledge_base.id).exclude(
        index_status=KnowledgeBase.IndexStatus.INDEXING).update(index_status=KnowledgeBase.IndexStatus.PENDING)
    # robust: a broker that is down must not undo the change; the index catches up on the next edit.
    transaction.on_commit(lambda: knowledge_base_reindex_task.delay(knowledge_base.id), robust=True)


def _duplicate_name(name: str) -> ApplicationError:
    return ApplicationError(f"A knowledge base named '{name}' exists already; choose another name.",
                            code="duplicate", field="name")


def _knowledge_base_save(knowledge_base: KnowledgeBase, *, name: str | None) -> KnowledgeBase:
    """Save, giving it `name` (None: keep it) under the name rule: a name is given, fits, and no other
    knowledge base has it in any letter case."""
    if name is not None:
        name = knowledge_base.name = name.strip()
        max_length = KnowledgeBase._meta.get_field("name").max_length
        if not name or len(name) > max_length:
            raise ApplicationError(f"A knowledge base needs a name of 1 to {max_length} characters.",
                                   code="invalid", field="name")
        if KnowledgeBase.objects.filter(name__iexact=name).exclude(id=knowledge_base.id).exists():
            raise _duplicate_name(name)
    # Only the fields this writes: the reindex job owns index_status, and updated_at is its heartbeat.
    fields = ["name", "description"] if knowledge_base.pk else None
    try:
        with transaction.atomic():  # a savepoint: a concurrent create of the same name loses here
            knowledge_base.save(update_fields=fields)
    except IntegrityError:
        raise _duplicate_name(knowledge_base.name) from None
    return knowledge_base


@transaction.atomic
def knowledge_base_create(*, name: str, description: str = "") -> KnowledgeBase:
    return _knowledge_base_save(KnowledgeBase(description=description), name=name)


@transaction.atomic
def knowledge_base_update(*, knowledge_base: KnowledgeBase, name: str | None = None,
                          description: str | None = None) -> KnowledgeBase:
    if description is not None:
        knowledge_base.description = description
    return _knowledge_base_save(knowledge_base, name=name)


@transaction.atomic
def knowledge_base_delete(*, knowledge_base: KnowledgeBase) -> None:
    """Delete a knowledge base with its entries and index (refused, 409, while conversations use it)."""
    from apps.customer_service.services.retrieval_tuning import embedders_dir

    directories = [index_directory(knowledge_base.id),
                   *(embedders_dir() / name for name in knowledge_base.tunings.values_list("model_name", flat=True))]
    try:
        with transaction.atomic():
            knowledge_base.delete()
    except ProtectedError:
        raise ApplicationError("Conversations use this knowledge base; delete them first.", status=409,
                               code="in_use") from None
    transaction.on_commit(lambda: [shutil.rmtree(directory, ignore_errors=True) for directory in directories])


def _entry_fields(question: str, answer: str, phrasings: list[str], tags: list[str]) -> dict:
    """The stored fields of an entry: texts cut to the limits and stripped, phrasings that repeat the
    question and blank tags left out."""
    question = question[:settings.CUSTOMER_SERVICE_MAX_QUESTION_CHARS]
    answer = answer[:settings.CUSTOMER_SERVICE_MAX_ANSWER_CHARS]
    phrasings = [p.strip() for p in phrasings if p.strip() and p.strip() != question.strip()]
    return {"question": question.strip(), "answer": answer.strip(), "phrasings": phrasings,
            "tags": [t.strip() for t in tags if t.strip()],
            "content_hash": Entry.hash_content(question.strip(), phrasings, answer.strip())}


def _entry_save(entry: Entry) -> Entry:
    """Save under the entry rule: a question and an answer, and no other entry of the knowledge base
    asks the same question."""
    if not entry.question or not entry.answer:
        raise ApplicationError("An entry needs a question and an answer.", code="invalid",
                               field="answer" if entry.question else "question")
    duplicate = ApplicationError("This knowledge base already has an entry with this question.",
                                 code="duplicate", field="question")
    others = Entry.objects.filter(knowledge_base_id=entry.knowledge_base_id, question=entry.question)
    if others.exclude(id=entry.id).exists():
        raise duplicate
    try:
        with transaction.atomic():
            entry.save()
    except IntegrityError:
        raise duplicate from None
    return entry


@transaction.atomic
def entry_create(*, knowledge_base: KnowledgeBase, question: str, answer: str, phrasings: list[str] = (),
                 tags: list[str] = (), source: str = "", enabled: bool = True) -> Entry:
    entry = _entry_save(Entry(knowledge_base=knowledge_base, source=source, enabled=enabled,
                              **_entry_fields(question, answer, list(phrasings), list(tags))))
    schedule_reindex(knowledge_base)
    return entry


@transaction.atomic
def entry_update(*, entry: Entry, question: str | None = None, answer: str | None = None,
                 phrasings: list[str] | None = None, tags: list[str] | None = None,
                 enabled: bool | None = None) -> Entry:
    fields = _entry_fields(question if question is not None else entry.question,
                           answer if answer is not None else entry.answer,
                           phrasings if phrasings is not None else entry.phrasings,
                           tags if tags is not None else entry.tags)
    for name, value in fields.items():
        setattr(entry, name, value)
    if enabled is not None:
        entry.enabled = enabled
    _entry_save(entry)
    schedule_reindex(entry.knowledge_base)
    return entry


@transaction.atomic
def entry_delete(*, entry: Entry) -> None:
    knowledge_base = entry.knowledge_base
    entry.delete()
    schedule_reindex(knowledge_base)


# --- import ----------------------------------------------------------------------------------

@dataclass
class RowOutcome:
    row: int
    status: str  # "imported", "updated" or "skipped"
    question: str
    reason: str = ""


@dataclass
class ImportReport:
    imported: int = 0
    updated: int = 0
    skipped: int = 0
    rows: list[RowOutcome] = field(default_factory=list)

    def add(self, outcome: RowOutcome) -> None:
        self.rows.append(outcome)
        setattr(self, outcome.status, getattr(self, outcome.status) + 1)

    def as_dict(self) -> dict:
        return asdict(self)


def knowledge_base_import(*, knowledge_base: KnowledgeBase, filename: str, data: bytes) -> ImportReport:
    """Import a CSV, JSON or Markdown file row by row; a bad row is reported and skipped, never half-written.

    Raises importers.ImportFormatError (an ApplicationError) when the file as a whole cannot be read.
    """
    rows = parse_file(filename, data)
    report = ImportReport()
    seen: dict[str, int] = {}
    with transaction.atomic():
        for row in rows:
            report.add(_import_row(knowledge_base, row, seen, source=filename))
        if report.imported or report.updated:
            schedule_reindex(knowledge_base)
    return report


def _import_row(knowledge_base: KnowledgeBase, row: ParsedRow, seen: dict[str, int], *, source: str) -> RowOutcome:
    if row.error:
        return RowOutcome(row.row, "skipped", row.question[:200], row.error)
    key = row.question.casefold()
    if key in seen:
        return RowOutcome(row.row, "skipped", row.question, f"duplicate of row {seen[key]} in this file")
    seen[key] = row.row
    fields = _entry_fields(row.question, row.answer, row.phrasings, row.tags)
    existing = Entry.objects.filter(knowledge_base=knowledge_base, question=fields["question"]).first()
    if existing is not None and existing.content_hash == fields["content_hash"] and existing.tags == fields["tags"]:
        return RowOutcome(row.row, "skipped", row.question, "unchanged")
    try:
        with transaction.atomic():  # a savepoint: a failing row leaves nothing behind
            if existing is None:
                Entry.objects.create(knowledge_base=knowledge_base, source=source, **fields)
                return RowOutcome(row.row, "imported", row.question)
            for name, value in fields.items():
                setattr(existing, name, value)
            existing.source = source
            existing.save()
            return RowOutcome(row.row, "updated", row.question)
    except IntegrityError as error:
        return RowOutcome(row.row, "skipped", row.question, f"could not be stored: {error}")


# --- reindexing ------------------------------------------------------------------------------

def _claim_indexing(knowledge_base_id: int) -> bool:
    """Mark the knowledge base as indexing unless a live job already does."""
    return job_claim(model=KnowledgeBase, pk=knowledge_base_id, status_field="index_status",
                     running=KnowledgeBase.IndexStatus.INDEXING, heartbeat_field="updated_at",
                     stale_after_s=settings.JOBS_REQUEUE_AFTER_S).claimed


def entry_embedding_texts(entry: Entry) -> list[tuple[str, str]]:
    """(field, text) of every text of `entry` that is embedded: the question, each phrasing, the answer."""
    return [*((EntryEmbedding.Field.QUESTION, text) for text in [entry.question, *entry.phrasings]),
            (EntryEmbedding.Field.ANSWER, entry.answer)]


def _embed_missing(entries: list[Entry], model: str) -> tuple[int, int]:
    """Embed with `model` (blank: the base model) the texts of `entries` that have no vector of it
    cached; returns (embedded, reused). Vectors of other models and of changed texts are dropped."""
    wanted: list[tuple[Entry, str, str]] = []
    reused = 0
    for entry in entries:
        texts = entry_embedding_texts(entry)
        cached = {(e.field, e.text) for e in entry.embeddings.all() if e.model == model}
        entry.embeddings.exclude(text__in=[t for _, t in texts], model=model).delete()
        for kind, text in texts:
            if (kind, text) in cached:
                reused += 1
            else:
                wanted.append((entry, kind, text))
    client = get_client()
    for start in range(0, len(wanted), EMBED_BATCH):
        batch = wanted[start:start + EMBED_BATCH]
        vectors = client.embed([text for _, _, text in batch], model=model or None)
        EntryEmbedding.objects.bulk_create([
            EntryEmbedding(entry=entry, model=model, field=kind, text=text,
                           vector=np.asarray(vector, dtype=np.float32).tobytes())
            for (entry, kind, text), vector in zip(batch, vectors)])
    return len(wanted), reused


def _index_data(entries: list[Entry], *, dense: bool, model: str) -> IndexData:
    question_entries, question_texts, answer_entries, answer_texts = [], [], [], []
    question_vectors, answer_vectors = [], []
    for entry in entries:
        vectors = {(e.field, e.text): e.vector for e in entry.embeddings.all() if e.model == model} if dense else {}
        for text in [entry.question, *entry.phrasings]:
            question_entries.append(entry.id)
            question_texts.append(text)
            if dense:
                question_vectors.append(np.frombuffer(bytes(vectors[(EntryEmbedding.Field.QUESTION, text)]), np.float32))
        answer_entries.append(entry.id)
        answer_texts.append(entry.answer)
        if dense:
            answer_vectors.append(np.frombuffer(bytes(vectors[(EntryEmbedding.Field.ANSWER, entry.answer)]), np.float32))
    stack = (lambda rows: np.vstack(rows) if rows else np.zeros((0, 384), np.float32)) if dense else (lambda rows: None)
    return IndexData(question_entries, question_texts, stack(question_vectors), answer_entries, answer_texts,
                     stack(answer_vectors))


def knowledge_base_reindex(*, knowledge_base_id: int) -> dict:
    """Rebuild a knowledge base's index from its enabled entries, embedding only texts that changed.

    Idempotent. Without model_service the lexical half is built and `dense` is False (the task
    retries later). Returns counts for the job log.
    """
    if not KnowledgeBase.objects.filter(id=knowledge_base_id).exists():
        return {"status": "gone"}
    if not _claim_indexing(knowledge_base_id):
        return {"status": "busy"}
    knowledge_base = KnowledgeBase.objects.get(id=knowledge_base_id)
    model = knowledge_base.embedding_model
    entries = _enabled_entries(knowledge_base_id)
    error = ""
    try:
        try:
            embedded, reused = _embed_missing(entries, model)
        except ModelServiceRejected as exc:
            if not (model and exc.code == "model_not_found"):
                raise
            model, error = _back_to_base_model(knowledge_base, exc), f"back to the base model: {exc}"
            embedded, reused = _embed_missing(_enabled_entries(knowledge_base_id), model)
        dense = True
    except ModelServiceError as exc:
        embedded, reused, dense = 0, 0, False
        error = f"dense index skipped: {exc}"
        logger.warning("knowledge base %s: %s", knowledge_base_id, error)
    entries = _enabled_entries(knowledge_base_id)
    index = KnowledgeBaseIndex.build(_index_data(entries, dense=dense, model=model),
                                     knowledge_base_calibration(knowledge_base))

    def write(directory):
        index.save(directory)
        index_model_write(directory, model)

    replace_directory(index_directory(knowledge_base_id), write)  # with the model its vectors came from
    KnowledgeBase.objects.filter(id=knowledge_base_id).update(
        index_status=KnowledgeBase.IndexStatus.READY if entries else KnowledgeBase.IndexStatus.EMPTY,
        index_dense=dense, index_error=error, indexed_at=timezone.now(), updated_at=timezone.now(),
        index_version=F("index_version") + 1)
    return {"status": "ready", "entries": len(entries), "embedded": embedded, "reused": reused, "dense": dense,
            "model": model or "base"}


def _enabled_entries(knowledge_base_id: int) -> list[Entry]:
    """With their cached vectors as stored now (read again after vectors were written or dropped)."""
    return list(Entry.objects.filter(knowledge_base_id=knowledge_base_id, enabled=True).prefetch_related("embeddings"))


def _back_to_base_model(knowledge_base: KnowledgeBase, error: Exception) -> str:
    """model_service does not serve the knowledge base's tuned model (its folder was lost, or the data
    was moved without it): retrieval goes back to the base model rather than losing its dense half."""
    logger.warning("knowledge base %s: %s; back to the base model", knowledge_base.id, error)
    KnowledgeBase.objects.filter(id=knowledge_base.id).update(embedding_model="", calibration={})
    knowledge_base.embedding_model, knowledge_base.calibration = "", {}
    return ""


def knowledge_base_calibration(knowledge_base: KnowledgeBase) -> Calibration:
    """The knowledge base's own calibration (fitted by its last tuning) or the default. An admin's
    threshold (`answer_threshold`) applies at search time, so choosing one needs no reindex."""
    return Calibration.from_dict(knowledge_base.calibration) if knowledge_base.calibration else Calibration.load()
