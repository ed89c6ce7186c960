"""Conversations: customer and agent messages, streamed suggestions, agent feedback, handoff."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db import transaction

from apps.customer_service.dialogue import (ModelWording, introduces_facts, model_wording, plan_suggestion,
                                            word_chunks)
from apps.customer_service.models import Conversation, KnowledgeBase, Message


@transaction.atomic
def conversation_create(*, knowledge_base: KnowledgeBase, customer_name: str = "", agent=None) -> Conversation:
    return Conversation.objects.create(knowledge_base=knowledge_base, customer_name=customer_name, agent=agent)


@transaction.atomic
def conversation_message_add(*, conversation: Conversation, role: str, text: str) -> Message:
    message = Message.objects.create(conversation=conversation, role=role, text=text.strip())
    conversation.save(update_fields=["updated_at"])
    return message


@transaction.atomic
def conversation_status_set(*, conversation: Conversation, status: str, reason: str = "") -> Conversation:
    conversation.status = status
    conversation.handoff_reason = reason if status == Conversation.Status.HANDOFF else ""
    conversation.save(update_fields=["status", "handoff_reason", "updated_at"])
    return conversation


@dataclass
class Suggestion:
    message: Message  # saved at once with the deterministic text; the model's wording replaces it when accepted
    chunks: Iterator[str]  # the text as it streams; exhausting it finalises `message`


def conversation_suggest(*, conversation: Conversation) -> Suggestion:
    """Suggest a reply to the last customer message, grounded in the knowledge base."""
    history = list(conversation.messages.all())
    question = next((m for m in reversed(history) if m.role == Message.Role.CUSTOMER), None)
    if question is None:
        raise ValueError("the conversation has no customer message to answer")
    plan = plan_suggestion(knowledge_base=conversation.knowledge_base, history=history, question=question.text)
    with transaction.atomic():
        message = Message.objects.create(
            conversation=conversation, role=Message.Role.ASSISTANT, text=plan.text,
            standalone_question=plan.standalone_question, citations=plan.citations,
            confidence=round(plan.search.confidence, 4))
        if plan.handoff_reason:
            conversation_status_set(conversation=conversation, status=Conversation.Status.HANDOFF,
                                    reason=plan.handoff_reason)
    wording = model_wording(plan, question.text)
    return Suggestion(message, _stream(message, plan.text, wording))


def _stream(message: Message, grounded_text: str, wording: ModelWording | None) -> Iterator[str]:
    if wording is None:
        yield from word_chunks(grounded_text)
        return
    parts = []
    try:
        for part in wording.chunks:
            parts.append(part)
            yield part
    except Exception:  # the model went away mid-stream: the grounded text stands
        parts = []
    text = "".join(parts).strip()
    if text and not introduces_facts(text, grounded_text):
        Message.objects.filter(id=message.id).update(text=text, worded_by=wording.model)
        message.text, message.worded_by = text, wording.model
    elif parts:  # the wording was discarded: tell the client what the suggestion really is
        yield "\n\n[replaced by the knowledge-base answer]\n" + grounded_text


@transaction.atomic
def message_feedback(*, message: Message, action: str, final_text: str = "") -> Message:
    """The agent accepts, edits or rejects a suggestion; accepted and edited text is sent as the agent's reply."""
    if message.role != Message.Role.ASSISTANT:
        raise ValueError("only suggestions take feedback")
    if message.feedback:
        raise ValueError(f"this suggestion was already {message.feedback}")
    if action == Message.Feedback.EDITED and not final_text.strip():
        raise ValueError("an edited suggestion needs the edited text")
    message.feedback = action
    message.final_text = {Message.Feedback.ACCEPTED: message.text, Message.Feedback.EDITED: final_text.strip(),
                          Message.Feedback.REJECTED: ""}[action]
    message.save(update_fields=["feedback", "final_text"])
    if message.final_text:
        conversation_message_add(conversation=message.conversation, role=Message.Role.AGENT, text=message.final_text)
    return message
