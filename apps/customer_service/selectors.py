"""Reads of the customer-service app: search, exports, conversations, statistics, and who may change
a conversation.

Ownership: every support agent may read every knowledge base and conversation. Unassigned
conversations form the shared queue; an agent takes one and becomes its assignee, and from then on
only the assignee or an admin may add messages, ask for suggestions, give feedback on them or change
the status. Admins also reassign and release conversations; an assignee may release their own.
`conversation_change_refusal` is the one rule; the API and the console reach it through the services.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import timedelta
from datetime import timezone as dt_timezone
from typing import TYPE_CHECKING

import numpy as np
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.accounts.roles import Area, Role
from apps.core.caches import VersionedCache, path_stamp
from apps.core.errors import ApplicationError, NotFoundError
from apps.core.model_client import ModelServiceError, get_client
from apps.customer_service.index_model import index_model_read
from apps.customer_service.models import Conversation, Entry, KnowledgeBase, Message, RetrievalTuning
from apps.customer_service.retrieval import KnowledgeBaseIndex, SearchResult, best_possible_score, index_directory
from apps.customer_service.tag_filters import TagFilter

if TYPE_CHECKING:
    from apps.accounts.models import User


@dataclass(frozen=True)
class LoadedIndex:
    index: KnowledgeBaseIndex
    embedding_model: str  # what its vectors came from, and so what queries are embedded with; blank: base


_indexes: VersionedCache[LoadedIndex] = VersionedCache()  # knowledge base id -> its loaded index


@dataclass
class EntryHit:
    entry: Entry
    score: float  # the fused retrieval score (retrieval.FIELD_WEIGHTS)
    relevance: float = 0.0  # the score over the best one possible with the rankings that ran: in [0, 1]


@dataclass
class EntrySearch:
    hits: list[EntryHit]
    confidence: float
    confident: bool
    dense: bool  # False: the question could not be embedded (model_service down); lexical matches only


def knowledge_base_index(knowledge_base: KnowledgeBase) -> LoadedIndex | None:
    """The knowledge base's current index, loaded once per version and process."""
    directory = index_directory(knowledge_base.id)
    if knowledge_base.index_version == 0 or not directory.exists():
        return None
    return _indexes.get(knowledge_base.id, (knowledge_base.index_version, path_stamp(directory)),
                        lambda: LoadedIndex(KnowledgeBaseIndex.load(directory), index_model_read(directory)))


@dataclass(frozen=True)
class QuestionVector:
    """A question's embedding made ahead of time, when the customer's message arrived; it stands in for the
    query embedding only for the same text and embedding model (`key`)."""
    key: str
    vector: np.ndarray


def question_vector_key(question: str, model: str) -> str:
    return hashlib.sha256(f"{model}\n{question}".encode()).hexdigest()


def question_vector_ahead(*, knowledge_base: KnowledgeBase, question: str) -> QuestionVector | None:
    """The embedding `entry_search` would make for `question` now, or None (no dense index, model_service
    unavailable)."""
    loaded = knowledge_base_index(knowledge_base)
    if loaded is None or not loaded.index.has_dense:
        return None
    vector = _query_vector(question, loaded.embedding_model)
    return None if vector is None else QuestionVector(question_vector_key(question, loaded.embedding_model), vector)


def _query_vector(question: str, model: str) -> np.ndarray | None:
    try:
        vectors = get_client(connect_retries=0, timeout=5).embed([question], model=model or None)
        return np.asarray(vectors[0], dtype=np.float32)
    except ModelServiceError:
        return None


def entry_search(*, knowledge_base: KnowledgeBase, question: str, k: int = 5,
                 tag_filter: TagFilter | None = None, ahead: QuestionVector | None = None) -> EntrySearch:
    """The `k` best entries for `question`, only those whose tags pass `tag_filter` when given (the
    confidence is then that the best of those answers). `ahead`: the question's embedding made earlier,
    used instead of asking model_service when it is still valid."""
    loaded = knowledge_base_index(knowledge_base)
    allowed = _entry_ids_passing(knowledge_base, tag_filter) if tag_filter is not None else None
    if loaded is None or allowed == set():
        return EntrySearch([], 0.0, False, dense=False)
    index = loaded.index
    vector = None
    if index.has_dense:
        valid = ahead is not None and ahead.key == question_vector_key(question, loaded.embedding_model)
        vector = ahead.vector if valid else _query_vector(question, loaded.embedding_model)
    result: SearchResult = index.search(question, vector, k=k, allowed=allowed)
    entries = Entry.objects.select_related("knowledge_base").in_bulk([hit.entry_id for hit in result.hits])
    best = best_possible_score(dense=result.dense)
    hits = [EntryHit(entries[hit.entry_id], hit.score, min(1.0, hit.score / best))
            for hit in result.hits if hit.entry_id in entries]
    confident = result.confident
    if result.dense and knowledge_base.answer_threshold is not None:  # an admin's choice on the trade-off
        confident = result.confidence >= knowledge_base.answer_threshold
    return EntrySearch(hits, result.confidence, confident, result.dense)


def _entry_ids_passing(knowledge_base: KnowledgeBase, tag_filter: TagFilter) -> set[int]:
    """Evaluated here rather than in SQL: JSON containment differs between PostgreSQL and SQLite."""
    return {entry_id for entry_id, tags in knowledge_base.entries.values_list("id", "tags")
            if tag_filter.matches(tags)}


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


def _id(value) -> int | None:
    """A database id from a URL or form value; None (found nowhere) for anything else ("abc", "-1", 10**30)."""
    text = str(value).strip()
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) < 2**31 else None


def _get(queryset: QuerySet, object_id, noun: str):
    """The object with this id, or a 404 that names the `noun` and the id as given."""
    found = queryset.filter(id=_id(object_id)).first()
    if found is None:
        raise NotFoundError(f"{noun} {object_id} does not exist.")
    return found


def knowledge_base_get(*, kb_id) -> KnowledgeBase:
    return _get(KnowledgeBase.objects.all(), kb_id, "Knowledge base")


def knowledge_base_get_for_user(*, user, kb_id) -> KnowledgeBase:
    """The knowledge base if `user` may read it (every support agent and admin may read every one); a
    404 otherwise, the same as for one that does not exist."""
    if not user.may_use(Area.CUSTOMER_SERVICE):
        raise NotFoundError(f"Knowledge base {kb_id} does not exist.")
    return knowledge_base_get(kb_id=kb_id)


def retrieval_tuning_list(*, knowledge_base: KnowledgeBase) -> QuerySet[RetrievalTuning]:
    return knowledge_base.tunings.all()


def retrieval_tuning_get(*, tuning_id) -> RetrievalTuning:
    return _get(RetrievalTuning.objects.select_related("knowledge_base"), tuning_id, "Retrieval tuning")


def suggestion_accuracy(*, knowledge_base: KnowledgeBase, days: int = 30) -> list[dict]:
    """Per day (UTC) of the last `days`, how agents reviewed the knowledge base's suggestions: accepted or
    edited counts as right, rejected as wrong; `accuracy` is right over reviewed (None on a day without
    reviews). Days with no suggestion are left out."""
    since = timezone.now() - timedelta(days=days)
    rows = (Message.objects.filter(role=Message.Role.ASSISTANT, conversation__knowledge_base=knowledge_base,
                                   created_at__gte=since)
            .annotate(day=TruncDate("created_at", tzinfo=dt_timezone.utc)).values("day")
            .annotate(suggestions=Count("id"),
                      right=Count("id", filter=Q(feedback__in=[Message.Feedback.ACCEPTED, Message.Feedback.EDITED])),
                      wrong=Count("id", filter=Q(feedback=Message.Feedback.REJECTED)))
            .order_by("day"))
    return [{"day": row["day"], "suggestions": row["suggestions"], "right": row["right"], "wrong": row["wrong"],
             "accuracy": round(row["right"] / (row["right"] + row["wrong"]), 3) if row["right"] + row["wrong"]
             else None} for row in rows]


def entry_list(*, knowledge_base: KnowledgeBase) -> QuerySet[Entry]:
    return knowledge_base.entries.all()


def entry_get(*, entry_id) -> Entry:
    return _get(Entry.objects.select_related("knowledge_base"), entry_id, "Entry")


def conversation_get(*, conversation_id) -> Conversation:
    """Any conversation by id: every support agent may read every conversation."""
    return _get(Conversation.objects.select_related("knowledge_base", "assignee"), conversation_id, "Conversation")


def conversation_cited_entries(*, conversation: Conversation) -> dict[int, Entry]:
    """The entries the conversation's suggestions cite, by id (deleted ones are absent)."""
    return Entry.objects.in_bulk([citation["entry_id"] for message in conversation.messages.all()
                                  for citation in message.citations])


def message_get(*, message_id) -> Message:
    return _get(Message.objects.select_related("conversation__assignee", "conversation__knowledge_base"), message_id,
                "Message")


def user_is_admin(user) -> bool:
    return user.is_authenticated and user.role == Role.ADMIN


def conversation_change_refusal(*, user, conversation: Conversation, customer_message: bool = False
                                ) -> ApplicationError | None:
    """Why `user` may not change `conversation`, or None when they may.

    The assignee and admins may; anyone may add a customer's message to a conversation still in the
    queue (that is how it fills); everything else waits until someone takes the conversation.
    """
    if user_is_admin(user) or (conversation.assignee_id is not None and conversation.assignee_id == user.id):
        return None
    if conversation.assignee_id is None:
        if customer_message:
            return None
        return ApplicationError(f"Conversation {conversation.id} is in the shared queue: take it before "
                                f"answering it.", status=409, code="not_taken")
    name = conversation.assignee.username
    return ApplicationError(f"Conversation {conversation.id} is assigned to {name}: only {name} or an admin "
                            f"may change it.", status=403, code="assigned_to_someone_else")


def conversation_take_refusal(*, user, conversation: Conversation) -> ApplicationError | None:
    """Why `user` may not take `conversation`, or None: anyone takes from the queue, admins take any."""
    if conversation.assignee_id in (None, user.id) or user_is_admin(user):
        return None
    name = conversation.assignee.username
    return ApplicationError(f"Conversation {conversation.id} is assigned to {name} already: only {name} or an "
                            f"admin may hand it on.", status=403, code="assigned_to_someone_else")


def conversation_may_change(*, user, conversation: Conversation) -> bool:
    return conversation_change_refusal(user=user, conversation=conversation) is None


def conversation_may_take(*, user, conversation: Conversation) -> bool:
    """Whether a Take button makes sense: `user` does not hold it and may take it."""
    refusal = conversation_take_refusal(user=user, conversation=conversation)
    return conversation.assignee_id != user.id and refusal is None


def conversation_list(*, status: str | None = None, assignee: str | None = None, user=None,
                      with_messages: bool = False) -> QuerySet[Conversation]:
    """Conversations, newest activity first; `assignee` "none" is the shared queue, "me" the caller's own;
    `with_messages` fetches their messages too (in one more query)."""
    conversations = (Conversation.objects.select_related("knowledge_base", "assignee")
                     .annotate(message_count=Count("messages")).order_by("-updated_at", "-id"))
    if with_messages:
        conversations = conversations.prefetch_related("messages")
    if status:
        conversations = conversations.filter(status=status)
    if assignee == "none":
        conversations = conversations.filter(assignee__isnull=True)
    elif assignee == "me":
        conversations = conversations.filter(assignee_id=user.id if user else None)
    return conversations


def support_agent_get(*, user_id) -> User:
    """The active support agent (or admin) with this id; a 400 naming `assignee` for anyone else."""
    user = get_user_model().objects.filter(id=_id(user_id), is_active=True).first()
    if user is None or not user.may_use(Area.CUSTOMER_SERVICE):
        raise ApplicationError(f"User {user_id} is not an active support agent.", field="assignee")
    return user


def support_agent_list() -> list[User]:
    """The users a conversation may be assigned to: active users whose role may use customer service."""
    return [user for user in get_user_model().objects.filter(is_active=True).order_by("username")
            if user.may_use(Area.CUSTOMER_SERVICE)]


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


# --- training rows: what adapter datasets learn from this app ----------------------------------

def knowledge_base_list() -> QuerySet[KnowledgeBase]:
    """Every knowledge base: every support agent (and admin) may read every one."""
    return KnowledgeBase.objects.all()


def knowledge_base_training_rows(*, knowledge_base: KnowledgeBase) -> list[dict]:
    """Every way of asking each enabled entry, answered with the entry's answer, as chat examples in
    the prompt this app sends the model for a suggestion."""
    return _wording_rows([(question, entry, entry.answer) for entry in knowledge_base.entries.filter(enabled=True)
                          for question in [entry.question, *entry.phrasings]])


def suggestion_training_rows() -> list[dict]:
    """What agents sent after accepting or editing a suggestion, asked as the app asks the model."""
    kept = [Message.Feedback.ACCEPTED, Message.Feedback.EDITED]
    sent = Message.objects.filter(role=Message.Role.ASSISTANT, feedback__in=kept).exclude(citations=[])
    entries = Entry.objects.in_bulk([message.citations[0]["entry_id"] for message in sent])
    return _wording_rows([(message.standalone_question, entries[message.citations[0]["entry_id"]], message.final_text)
                          for message in sent if message.citations[0]["entry_id"] in entries])


def _wording_rows(rows: list[tuple[str, Entry, str]]) -> list[dict]:
    """(customer question, entry, answer) as chat examples: the wording prompt, then the answer."""
    from apps.customer_service.dialogue import wording_messages  # dialogue imports this module

    return [{"messages": [*wording_messages(question, [entry]), {"role": "assistant", "content": answer}]}
            for question, entry, answer in rows]
