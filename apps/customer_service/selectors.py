"""Reads of the customer-service app: search, exports, conversations, statistics."""
from __future__ import annotations

import csv
import io
import json
import threading
from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Q, QuerySet

from apps.core.model_client import ModelServiceError, get_client
from apps.customer_service.models import Conversation, Entry, KnowledgeBase, Message
from apps.customer_service.retrieval import KnowledgeBaseIndex, SearchResult, index_directory

_cache: dict[int, tuple[int, KnowledgeBaseIndex]] = {}  # knowledge base id -> (index version, index)
_cache_lock = threading.Lock()


@dataclass
class EntryHit:
    entry: Entry
    score: float


@dataclass
class EntrySearch:
    hits: list[EntryHit]
    confidence: float
    confident: bool
    dense: bool  # False: the question could not be embedded (model_service down); lexical matches only


def knowledge_base_index(knowledge_base: KnowledgeBase) -> KnowledgeBaseIndex | None:
    """The knowledge base's current index, loaded once per version and process."""
    directory = index_directory(knowledge_base.id)
    if knowledge_base.index_version == 0 or not directory.exists():
        return None
    with _cache_lock:
        cached = _cache.get(knowledge_base.id)
        if cached is None or cached[0] != knowledge_base.index_version:
            cached = (knowledge_base.index_version, KnowledgeBaseIndex.load(directory))
            _cache[knowledge_base.id] = cached
        return cached[1]


def _query_vector(question: str) -> np.ndarray | None:
    try:
        return np.asarray(get_client(connect_retries=0, timeout=5).embed([question])[0], dtype=np.float32)
    except ModelServiceError:
        return None


def entry_search(*, knowledge_base: KnowledgeBase, question: str, k: int = 5) -> EntrySearch:
    index = knowledge_base_index(knowledge_base)
    if index is None:
        return EntrySearch([], 0.0, False, dense=False)
    result: SearchResult = index.search(question, _query_vector(question) if index.has_dense else None, k=k)
    entries = Entry.objects.in_bulk([hit.entry_id for hit in result.hits])
    hits = [EntryHit(entries[hit.entry_id], hit.score) for hit in result.hits if hit.entry_id in entries]
    return EntrySearch(hits, result.confidence, result.confident, result.dense)


def knowledge_base_export(*, knowledge_base: KnowledgeBase, file_format: str) -> tuple[bytes, str]:
    """The entries as CSV or JSON, in the shape the importer reads; returns (content, media type)."""
    entries = knowledge_base.entries.order_by("id")
    if file_format == "json":
        rows = [{"question": e.question, "answer": e.answer, "phrasings": e.phrasings, "tags": e.tags,
                 "enabled": e.enabled} for e in entries]
        return json.dumps(rows, indent=2, ensure_ascii=False).encode(), "application/json"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["question", "answer", "phrasings", "tags"])
    for e in entries:
        writer.writerow([e.question, e.answer, "|".join(e.phrasings), "|".join(e.tags)])
    return buffer.getvalue().encode(), "text/csv"


def conversation_list(*, status: str | None = None) -> QuerySet[Conversation]:
    conversations = Conversation.objects.select_related("knowledge_base").annotate(message_count=Count("messages"))
    return conversations.filter(status=status) if status else conversations


def suggestion_stats() -> dict:
    """How agents used the suggestions and how conversations ended."""
    suggestions = Message.objects.filter(role=Message.Role.ASSISTANT)
    counts = suggestions.aggregate(
        total=Count("id"), accepted=Count("id", filter=Q(feedback=Message.Feedback.ACCEPTED)),
        edited=Count("id", filter=Q(feedback=Message.Feedback.EDITED)),
        rejected=Count("id", filter=Q(feedback=Message.Feedback.REJECTED)))
    reviewed = counts["accepted"] + counts["edited"] + counts["rejected"]
    conversations = Conversation.objects.aggregate(
        total=Count("id"), resolved=Count("id", filter=Q(status=Conversation.Status.RESOLVED)),
        handoff=Count("id", filter=Q(status=Conversation.Status.HANDOFF)))
    return {
        "suggestions": counts,
        "acceptance_rate": round((counts["accepted"] + counts["edited"]) / reviewed, 3) if reviewed else None,
        "conversations": conversations,
        "resolution_rate": round(conversations["resolved"] / conversations["total"], 3)
        if conversations["total"] else None,
    }
