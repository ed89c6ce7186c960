"""A customer's question is embedded when it arrives, so the suggestion asked for later goes to the model
without a model_service round trip first; the stored vector is used only while it is still valid."""
import numpy as np
import pytest

from apps.accounts.roles import Role
from apps.core.model_client import ModelServiceClient, get_client
from apps.customer_service.models import Message
from apps.customer_service.selectors import entry_search, question_vector_key
from apps.customer_service.services import conversation_create, conversation_message_add, conversation_suggest
from tests.users import user_fixture

pytestmark = pytest.mark.slow  # model_service embeds

agent = user_fixture("agent", Role.SUPPORT_AGENT)
QUESTION = "Do you deliver to the UK?"


@pytest.fixture
def embed_calls(monkeypatch):
    """The texts each ModelServiceClient.embed call asked for, in order (the calls still reach model_service)."""
    calls = []
    embed = ModelServiceClient.embed

    def counted(self, texts, model=None):
        calls.append(list(texts))
        return embed(self, texts, model=model)

    monkeypatch.setattr(ModelServiceClient, "embed", counted)
    return calls


@pytest.fixture
def conversation(demo_kb, agent):
    return conversation_create(knowledge_base=demo_kb, customer_name="Kim", assignee=agent)


def best_entry_question(knowledge_base) -> str:
    return entry_search(knowledge_base=knowledge_base, question=QUESTION).hits[0].entry.question


def test_a_customer_question_is_stored_with_the_embedding_a_search_would_make(conversation, agent):
    message = conversation_message_add(conversation=conversation, user=agent, role="customer", text=QUESTION)

    message.refresh_from_db()
    assert message.question_vector_key == question_vector_key(QUESTION, "")  # the base embedder's
    stored = np.frombuffer(bytes(message.question_vector), dtype=np.float32)
    np.testing.assert_allclose(stored, get_client().embed([QUESTION])[0], atol=1e-6)


def test_an_agent_message_is_not_embedded(conversation, agent, embed_calls):
    message = conversation_message_add(conversation=conversation, user=agent, role="agent", text="Hello Kim!")

    message.refresh_from_db()
    assert (message.question_vector, message.question_vector_key, embed_calls) == (None, "", [])


def test_the_suggestion_uses_the_stored_embedding_instead_of_asking_model_service(conversation, agent, embed_calls,
                                                                                   demo_kb):
    conversation_message_add(conversation=conversation, user=agent, role="customer", text=QUESTION)
    assert embed_calls == [[QUESTION]]

    suggestion = conversation_suggest(conversation=conversation, user=agent)

    assert embed_calls == [[QUESTION]]  # nothing more was embedded
    assert suggestion.message.citations[0]["question"] == best_entry_question(demo_kb)
    assert suggestion.text()


def test_a_stored_embedding_of_another_model_is_not_used(conversation, agent, embed_calls, demo_kb):
    message = conversation_message_add(conversation=conversation, user=agent, role="customer", text=QUESTION)
    Message.objects.filter(id=message.id).update(question_vector_key=question_vector_key(QUESTION, "kb-1-v1-abc"),
                                                 question_vector=np.zeros(384, dtype=np.float32).tobytes())

    suggestion = conversation_suggest(conversation=conversation, user=agent)

    assert embed_calls == [[QUESTION], [QUESTION]]  # embedded again for the search
    assert suggestion.message.citations[0]["question"] == best_entry_question(demo_kb)
    assert suggestion.text()


def test_a_conversation_loaded_before_the_knowledge_base_was_indexed_still_stores_the_embedding(conversation, agent):
    conversation.knowledge_base.index_version = 0  # what this object saw before the first reindex

    message = conversation_message_add(conversation=conversation, user=agent, role="customer", text=QUESTION)

    message.refresh_from_db()
    assert message.question_vector_key == question_vector_key(QUESTION, "")
