from asgiref.sync import async_to_sync

from apps.customer_service.dialogue import (HUMAN_REQUEST, ModelWording, introduces_facts, standalone_question,
                                            word_chunks)
from apps.customer_service.models import Conversation, Message
from apps.customer_service.services.conversations import _stream


def message(role: str, text: str) -> Message:
    return Message(role=role, text=text)


def test_a_short_follow_up_is_joined_with_the_previous_customer_question():
    history = [message("customer", "Do you ship to the UK?"), message("assistant", "Yes, in 3 to 5 days."),
               message("customer", "and how much does it cost?")]

    assert standalone_question(history, "and how much does it cost?") == \
        "Do you ship to the UK? and how much does it cost?"


def test_a_self_contained_question_stays_as_it_is():
    history = [message("customer", "Do you ship to the UK?"), message("customer", "How do I reset my password?")]

    assert standalone_question(history, "How do I reset my password?") == "How do I reset my password?"


def test_requests_for_a_person_are_recognised():
    assert HUMAN_REQUEST.search("Can I speak with a human?")
    assert HUMAN_REQUEST.search("I want to talk to an agent")
    assert not HUMAN_REQUEST.search("What does the shipping fee cover?")


def test_a_rewording_may_not_bring_in_numbers_links_or_addresses():
    source = "Returns are free within 30 days; write to help@shop.example."

    assert not introduces_facts("You have 30 days to return items for free (help@shop.example).", source)
    assert introduces_facts("You have 60 days to return items.", source)
    assert introduces_facts("See https://elsewhere.example for details.", source)


def test_word_chunks_reassemble_the_text():
    text = "You can return items within 30 days of delivery."

    assert "".join(word_chunks(text)) == text


async def chunks_of(*parts: str):
    for part in parts:
        yield part


@async_to_sync
async def joined(stream) -> str:
    return "".join([part async for part in stream])


def test_a_model_wording_with_new_facts_is_replaced_by_the_entry_answer(db):
    from apps.customer_service.models import KnowledgeBase

    conversation = Conversation.objects.create(knowledge_base=KnowledgeBase.objects.create(name="kb"))
    grounded = "Returns are free within 30 days."
    kept = Message.objects.create(conversation=conversation, role="assistant", text=grounded, state="streaming")
    replaced = Message.objects.create(conversation=conversation, role="assistant", text=grounded, state="streaming")

    good = joined(_stream(kept, grounded,
                          ModelWording("shop", chunks_of("Good news: ", "returns are free within 30 days!"))))
    bad = joined(_stream(replaced, grounded, ModelWording("shop", chunks_of("Returns are free within ", "90 days."))))

    kept.refresh_from_db()
    replaced.refresh_from_db()
    assert (good, kept.text) == ("Good news: returns are free within 30 days!",
                                 "Good news: returns are free within 30 days!")
    assert bad.endswith("[replaced by the knowledge-base answer]\n" + grounded)
    assert (replaced.text, replaced.worded_by, kept.worded_by) == (grounded, "", "shop")
    assert (kept.state, replaced.state) == ("complete", "complete")


def test_facts_are_found_in_linear_time_on_hostile_text():
    """A million address characters without an `@` (quadratic before: about an hour) and the same after one."""
    from apps.customer_service.dialogue import _facts

    assert _facts("a" * 1_000_000) == set()
    assert _facts("x@" + "a" * 1_000_000) == set()
    assert _facts("Write to help.desk+uk@shop.example.com within 30 days or 2.5 weeks: https://shop.example/r") == {
        "help.desk+uk@shop.example.com", "30", "2.5", "https://shop.example/r"}
