"""Grounded suggestions for agents: retrieve on a standalone question, answer only from the knowledge
base with citations, hand off when the knowledge base does not know.

Strict mode (default) answers with the cited entry's own answer text; with rephrasing on, the model
may reword it, and a rewording that brings in a number, link or address the entry does not hold is
discarded for the entry's text. Without strict mode the model composes from the retrieved entries.
"""
from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

from django.conf import settings

from apps.core.fact_check import facts as _facts, introduces_facts  # noqa: F401 (the guard, in apps/core)
from apps.core.model_client import ModelServiceError, adapter_or_base, get_client
from apps.customer_service.models import Message
from apps.customer_service.selectors import EntrySearch, QuestionVector, entry_search

HUMAN_REQUEST = re.compile(r"\b(human|real person|someone real|an? (agent|person|representative|operator)|"
                           r"speak (to|with)|talk (to|with)|call me)\b", re.IGNORECASE)
FOLLOW_UP = re.compile(r"^(and|also|but|what about|how about|what if)\b|\b(it|that|this|they|them|those|these|one)\b",
                       re.IGNORECASE)
FOLLOW_UP_MAX_WORDS = 8
CITED_ENTRIES = 3
ADAPTER_LOOKUP_MAX_AGE_S = 5.0  # model_service's model list is reused this long (a round trip per suggestion otherwise)
WORDING_PARAMS = {"max_tokens": 300, "temperature": 0.2}  # the model's wording of a suggestion


@dataclass
class SuggestionPlan:
    standalone_question: str
    search: EntrySearch
    text: str  # the deterministic answer (or the handoff note)
    handoff_reason: str = ""
    citations: list[dict] = field(default_factory=list)

    @property
    def answers(self) -> bool:
        return not self.handoff_reason


def standalone_question(history: list[Message], question: str) -> str:
    """A follow-up ("and how long does it take?") joined with the previous customer question."""
    previous = next((m.text for m in reversed(history) if m.role == Message.Role.CUSTOMER and m.text != question),
                    None)
    if previous and len(question.split()) <= FOLLOW_UP_MAX_WORDS and FOLLOW_UP.search(question):
        return f"{previous} {question}"
    return question


def plan_suggestion(*, knowledge_base, history: list[Message], question: str,
                    ahead: QuestionVector | None = None) -> SuggestionPlan:
    standalone = standalone_question(history, question)
    search = entry_search(knowledge_base=knowledge_base, question=standalone, k=CITED_ENTRIES, ahead=ahead)
    if HUMAN_REQUEST.search(question):
        return SuggestionPlan(standalone, search, "The customer asked for a person: please take over.",
                              handoff_reason="The customer asked to talk to a person.")
    if not search.dense:
        return SuggestionPlan(standalone, search, "No suggestion: the model service is unavailable.",
                              handoff_reason="The model service is unavailable, so the question could not be "
                                             "matched reliably; answer it yourself.")
    if not search.confident or not search.hits:
        return SuggestionPlan(standalone, search, "No suggestion: the knowledge base has no confident answer.",
                              handoff_reason=f"No knowledge-base entry matches confidently "
                                             f"(confidence {search.confidence:.2f}).")
    top = search.hits[0]
    citations = [{"entry_id": hit.entry.id, "question": hit.entry.question, "score": round(hit.score, 4)}
                 for hit in search.hits[:1 if settings.CUSTOMER_SERVICE_STRICT else CITED_ENTRIES]]
    return SuggestionPlan(standalone, search, top.entry.answer, citations=citations)


def wording_messages(question: str, entries: list) -> list[dict[str, str]]:
    """The prompt the model words a suggestion from: in strict mode the best entry's answer to
    rewrite, otherwise the retrieved entries numbered for citation. Adapter datasets built from a
    knowledge base use it too, so an adapter learns the very prompt the app sends."""
    if settings.CUSTOMER_SERVICE_STRICT:
        return [{"role": "system", "content": "Rewrite the answer below for the customer in a friendly tone. "
                                              "Do not add any fact, number or link that is not in it."},
                {"role": "user", "content": f"Customer question: {question}\n\nAnswer: {entries[0].answer}"}]
    sources = "\n\n".join(f"[{i}] Q: {entry.question}\nA: {entry.answer}" for i, entry in enumerate(entries, start=1))
    return [{"role": "system", "content": "You are a support assistant. Answer only from the numbered FAQ "
                                          "entries and cite them like [1]. If they do not answer the question, "
                                          "say you do not know."},
            {"role": "user", "content": f"FAQ entries:\n{sources}\n\nCustomer question: {question}"}]


@dataclass
class ModelWording:
    model: str  # the adapter's name, or "base model"
    chunks: AsyncIterator[str]  # the deltas as model_service generates them (nothing is asked before the first read)


def model_wording(plan: SuggestionPlan, question: str) -> ModelWording | None:
    """The model's streamed wording, or None when configured off or unavailable."""
    if not plan.answers or (settings.CUSTOMER_SERVICE_STRICT and not settings.CUSTOMER_SERVICE_REPHRASE):
        return None
    try:
        client = get_client(connect_retries=0)
        adapter = adapter_or_base(client, settings.CUSTOMER_SERVICE_ADAPTER, max_age_s=ADAPTER_LOOKUP_MAX_AGE_S)
        messages = wording_messages(question, [hit.entry for hit in plan.search.hits])
        chunks = client.achat_stream(messages=messages, model=adapter, **WORDING_PARAMS)
        return ModelWording(adapter or "base model", chunks)
    except ModelServiceError:
        return None


def word_chunks(text: str) -> Iterator[str]:
    """The deterministic answer streamed a few words at a time, as a model would."""
    words = re.findall(r"\S+\s*", text)
    for start in range(0, len(words), 3):
        yield "".join(words[start:start + 3])
