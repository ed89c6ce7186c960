"""Conversations: the shared queue and assignment, customer and agent messages, streamed suggestions,
agent feedback, handoff. Every change goes through `selectors.conversation_change_refusal` first."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

import numpy as np
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import transaction

from apps.accounts.roles import Area
from apps.core.errors import ApplicationError
from apps.customer_service.dialogue import (ModelWording, introduces_facts, model_wording, plan_suggestion,
                                            standalone_question, word_chunks)
from apps.customer_service.models import Conversation, Entry, FeedbackPair, KnowledgeBase, Message
from apps.customer_service.selectors import (QuestionVector, conversation_change_refusal, conversation_take_refusal,
                                             question_vector_ahead, user_is_admin)


def _lock_for_change(conversation: Conversation, user, *, customer_message: bool = False) -> None:
    """Re-read the assignee under a row lock (a take in another request may just have landed) and
    raise the refusal unless `user` may change the conversation. Call inside a transaction."""
    refusal = conversation_change_refusal(user=user, conversation=_locked(conversation),
                                          customer_message=customer_message)
    if refusal is not None:
        raise refusal


def _locked(conversation: Conversation) -> Conversation:
    return Conversation.objects.select_for_update(of=("self",)).select_related("assignee").get(id=conversation.id)


@transaction.atomic
def conversation_create(*, knowledge_base: KnowledgeBase, customer_name: str = "", assignee=None) -> Conversation:
    """A new conversation, taken by `assignee` or, without one, waiting in the shared queue; a customer
    name longer than the field is cut."""
    max_length = Conversation._meta.get_field("customer_name").max_length
    return Conversation.objects.create(knowledge_base=knowledge_base, customer_name=customer_name.strip()[:max_length],
                                       assignee=assignee)


@transaction.atomic
def conversation_take(*, conversation: Conversation, user) -> Conversation:
    """`user` takes a conversation from the queue; an admin may also take one someone else holds."""
    locked = _locked(conversation)
    refusal = conversation_take_refusal(user=user, conversation=locked)
    if refusal is not None:
        raise refusal
    return _assign(locked, user)


@transaction.atomic
def conversation_assign(*, conversation: Conversation, user, assignee) -> Conversation:
    """An admin assigns a conversation to a support agent (from `selectors.support_agent_get`), or
    releases it to the queue (None); an assignee may release their own conversation."""
    locked = _locked(conversation)
    releasing_own = assignee is None and locked.assignee_id == user.id
    if not (user_is_admin(user) or releasing_own):
        raise ApplicationError("Only an admin may assign conversations; an assignee may release their own.",
                               status=403, code="admin_only")
    if assignee is not None and not (assignee.is_active and assignee.may_use(Area.CUSTOMER_SERVICE)):
        raise ApplicationError(f"User {assignee.id} is not an active support agent.", field="assignee")
    return _assign(locked, assignee)


def _assign(conversation: Conversation, assignee) -> Conversation:
    conversation.assignee = assignee
    conversation.save(update_fields=["assignee", "updated_at"])
    return conversation


def conversation_message_add(*, conversation: Conversation, user, role: str, text: str) -> Message:
    """A customer's or agent's message, cut to CUSTOMER_SERVICE_MAX_QUESTION_CHARS. A customer's question
    is embedded once it is saved (outside the transaction), for the suggestion an agent asks for next."""
    with transaction.atomic():
        message = _message_add(conversation, user, role,
                               text.strip()[:settings.CUSTOMER_SERVICE_MAX_QUESTION_CHARS])
    if role == Message.Role.CUSTOMER:
        _question_vector_store(message)
    return message


def _message_add(conversation: Conversation, user, role: str, text: str) -> Message:
    _lock_for_change(conversation, user, customer_message=role == Message.Role.CUSTOMER)
    message = Message.objects.create(conversation=conversation, role=role, text=text.strip())
    conversation.save(update_fields=["updated_at"])
    return message


def _question_vector_store(message: Message) -> None:
    """Saves the embedding a suggestion's retrieval would otherwise ask model_service for while the agent
    waits for the first token: about 20 ms alone, and with many agents at once their queries queue on
    model_service's one query thread. Without model_service, the suggestion embeds as before."""
    conversation = message.conversation
    question = standalone_question(list(conversation.messages.all()), message.text)
    knowledge_base = KnowledgeBase.objects.get(id=conversation.knowledge_base_id)  # as indexed now
    ahead = question_vector_ahead(knowledge_base=knowledge_base, question=question)
    if ahead is not None:
        Message.objects.filter(id=message.id).update(question_vector=ahead.vector.astype(np.float32).tobytes(),
                                                     question_vector_key=ahead.key)


def _question_vector(message: Message) -> QuestionVector | None:
    if not message.question_vector_key or message.question_vector is None:
        return None
    return QuestionVector(message.question_vector_key, np.frombuffer(bytes(message.question_vector), dtype=np.float32))


@transaction.atomic
def conversation_status_set(*, conversation: Conversation, user, status: str, reason: str = "") -> Conversation:
    """Open, hand off or resolve a conversation; a handoff reason is cut to CUSTOMER_SERVICE_MAX_REASON_CHARS."""
    _lock_for_change(conversation, user)
    return _status_set(conversation, status, reason[:settings.CUSTOMER_SERVICE_MAX_REASON_CHARS])


def _status_set(conversation: Conversation, status: str, reason: str) -> Conversation:
    conversation.status = status
    conversation.handoff_reason = reason if status == Conversation.Status.HANDOFF else ""
    conversation.save(update_fields=["status", "handoff_reason", "updated_at"])
    return conversation


@dataclass
class Suggestion:
    message: Message  # saved at once, streaming, with the deterministic text; the model's wording replaces it when kept
    chunks: AsyncIterator[str]  # the text as it streams; exhausting it completes `message`, leaving early interrupts it
    # `message` and its conversation are kept as the suggestion leaves them (final text, who worded it, a
    # handoff), so the reply at the end of a stream needs no second read.

    def text(self) -> str:
        """The whole streamed text, from a thread (a sync view); `message` is final afterwards."""
        return async_to_sync(_joined)(self.chunks)


async def _joined(chunks: AsyncIterator[str]) -> str:
    return "".join([chunk async for chunk in chunks])


def conversation_suggest(*, conversation: Conversation, user) -> Suggestion:
    """Suggest a reply to the last customer message, grounded in the knowledge base.

    The message is saved (streaming) before the model is asked, and every write is a short transaction
    of its own: none is open while the model generates. Who may ask is checked on the conversation as the
    request read it, then again under the row lock of the one transaction that saves the message (a take
    may have landed meanwhile): one locked read per suggestion, where agents wait for the first token."""
    refusal = conversation_change_refusal(user=user, conversation=conversation)
    if refusal is not None:
        raise refusal
    history = list(conversation.messages.all())
    question = next((m for m in reversed(history) if m.role == Message.Role.CUSTOMER), None)
    if question is None:
        raise ApplicationError("The conversation has no customer message to answer.", code="no_question")
    plan = plan_suggestion(knowledge_base=conversation.knowledge_base, history=history, question=question.text,
                           ahead=_question_vector(question))
    with transaction.atomic():
        _lock_for_change(conversation, user)
        message = Message.objects.create(
            conversation=conversation, role=Message.Role.ASSISTANT, text=plan.text,
            standalone_question=plan.standalone_question, citations=plan.citations,
            confidence=round(plan.search.confidence, 4), state=Message.State.STREAMING)
        if plan.handoff_reason:
            _status_set(conversation, Conversation.Status.HANDOFF, plan.handoff_reason)
    wording = model_wording(plan, question.text)
    return Suggestion(message, _stream(message, plan.text, wording))


def _feedback_pair_add(message: Message, action: str, entry: Entry | None) -> None:
    cited_id = message.citations[0]["entry_id"] if message.citations else None
    if entry is None and action != Message.Feedback.REJECTED and cited_id is not None:
        entry = Entry.objects.filter(id=cited_id, knowledge_base_id=message.conversation.knowledge_base_id).first()
    if entry is None or not message.standalone_question.strip():
        return
    kept = action in (Message.Feedback.ACCEPTED, Message.Feedback.EDITED) and entry.id == cited_id
    source = FeedbackPair.Source(action) if kept else FeedbackPair.Source.CORRECTED
    FeedbackPair.objects.create(knowledge_base_id=entry.knowledge_base_id, entry=entry, message=message,
                                text=message.standalone_question.strip(), source=source)


async def _stream(message: Message, grounded_text: str, wording: ModelWording | None) -> AsyncIterator[str]:
    """The suggestion's text as the model words it (or the grounded text, a few words at a time), then the
    message completed with what was kept. A consumer that stops early (its client hung up: the iterator is
    closed or its task cancelled) leaves the message interrupted, with the grounded text."""
    completed = False
    try:
        parts, failed = [], False
        if wording is not None:
            try:
                async with aclosing(wording.chunks) as chunks:  # leaving early hangs up on model_service at once
                    async for part in chunks:
                        parts.append(part)
                        yield part
            except Exception:  # the model went away, or was too slow (MODEL_SERVICE_TIMEOUT): grounded text
                failed = True
        text = "".join(parts).strip()
        if text and not failed and not introduces_facts(text, grounded_text):
            await sync_to_async(_suggestion_complete)(message, text=text, worded_by=wording.model)
            completed = True
            return
        if parts:  # the wording was discarded: tell the client what the suggestion really is
            yield "\n\n[replaced by the knowledge-base answer]\n" + grounded_text
        else:  # no model, or none in time: the grounded text, streamed as the model's would have been
            for part in word_chunks(grounded_text):
                yield part
        await sync_to_async(_suggestion_complete)(message)
        completed = True
    finally:
        if not completed:
            await sync_to_async(_suggestion_interrupt)(message)


def _suggestion_complete(message: Message, *, text: str | None = None, worded_by: str = "") -> None:
    """One short write: the streamed suggestion is complete, in the model's wording when one was kept."""
    values = {"state": Message.State.COMPLETE}
    if text is not None:
        values.update(text=text, worded_by=worded_by)
    Message.objects.filter(id=message.id, state=Message.State.STREAMING).update(**values)
    for name, value in values.items():
        setattr(message, name, value)


def _suggestion_interrupt(message: Message) -> None:
    Message.objects.filter(id=message.id, state=Message.State.STREAMING).update(state=Message.State.INTERRUPTED)
    message.state = Message.State.INTERRUPTED


@transaction.atomic
def message_feedback(*, message: Message, user, action: str, final_text: str = "", entry_id: int | None = None
                     ) -> Message:
    """The agent accepts, edits or rejects a suggestion; accepted and edited text is sent as the agent's reply.

    `entry_id`: the entry that really answers the customer (a rejected suggestion's right entry; by default
    the cited one for an accepted or edited suggestion). The customer's question and that entry become a
    training pair for the knowledge base's next retrieval tuning."""
    _lock_for_change(message.conversation, user)
    entry = None
    if entry_id is not None:
        entry = Entry.objects.filter(id=entry_id, knowledge_base_id=message.conversation.knowledge_base_id).first()
        if entry is None:
            raise ApplicationError(f"Entry {entry_id} is not in this conversation's knowledge base.", field="entry")
    if message.role != Message.Role.ASSISTANT:
        raise ApplicationError("Only suggestions take feedback.", code="not_a_suggestion")
    locked = Message.objects.select_for_update().get(id=message.id)
    if locked.state != Message.State.COMPLETE:
        raise ApplicationError(f"This suggestion is {locked.state}, not complete: ask for a new one.", status=409,
                               code="suggestion_incomplete")
    reviewed = locked.feedback
    if reviewed:
        raise ApplicationError(f"This suggestion was already {reviewed}.", status=409, code="already_reviewed")
    if action == Message.Feedback.EDITED and not final_text.strip():
        raise ApplicationError("An edited suggestion needs the edited text.", field="text")
    message.feedback = action
    message.final_text = {Message.Feedback.ACCEPTED: message.text, Message.Feedback.EDITED: final_text.strip(),
                          Message.Feedback.REJECTED: ""}[action]
    message.save(update_fields=["feedback", "final_text"])
    _feedback_pair_add(message, action, entry)
    if message.final_text:  # as long as the suggestion or the edit: not cut to a typed message's limit
        _message_add(message.conversation, user, Message.Role.AGENT, message.final_text)
    return message
