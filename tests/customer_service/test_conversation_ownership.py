"""The shared queue and assignment: every support agent reads every conversation; only its assignee
(or an admin) changes it; the API and the console answer alike."""
import json

import pytest

from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.core.errors import ApplicationError
from apps.customer_service.models import Conversation, Message
from apps.customer_service.services import conversation_status_set, conversation_take
from tests.users import user_fixture

BASE = "/api/customer-service/v1"


alice = user_fixture("alice", Role.SUPPORT_AGENT)
bob = user_fixture("bob", Role.SUPPORT_AGENT)
admin = user_fixture("root", Role.ADMIN)


@pytest.fixture
def queued(kb):
    """A conversation waiting in the shared queue with the customer's question."""
    conversation = Conversation.objects.create(knowledge_base=kb, customer_name="Ada")
    Message.objects.create(conversation=conversation, role="customer", text="Where is my order?")
    return conversation


@pytest.fixture
def taken(queued, alice):
    queued.assignee = alice
    queued.save()
    suggestion = Message.objects.create(conversation=queued, role="assistant", text="Check Account > Orders.")
    return queued, suggestion


def as_user(client, user):
    client.force_login(user)
    return client


def post_json(client, path, body=None):
    return client.post(path, json.dumps(body or {}), content_type="application/json")


def test_an_agent_takes_a_conversation_from_the_queue(client, alice, queued):
    api = as_user(client, alice)
    queue_before = api.get(f"{BASE}/conversations/?assignee=none").json()["results"]

    taken = api.post(f"{BASE}/conversations/{queued.id}/take")

    assert [c["id"] for c in queue_before] == [queued.id]
    assert taken.status_code == 200
    assert taken.json()["assignee"] == {"id": alice.id, "username": "alice"}
    assert api.get(f"{BASE}/conversations/?assignee=none").json()["results"] == []
    assert [c["id"] for c in api.get(f"{BASE}/conversations/?assignee=me").json()["results"]] == [queued.id]


def test_creating_a_conversation_takes_it_unless_it_goes_to_the_queue(client, alice, kb):
    api = as_user(client, alice)

    mine = api.post(f"{BASE}/conversations/", {"knowledge_base": kb.id}).json()
    queued = api.post(f"{BASE}/conversations/", {"knowledge_base": kb.id, "queue": "true"}).json()

    assert (mine["assignee"]["username"], queued["assignee"]) == ("alice", None)


@pytest.mark.parametrize("method,path,body", [
    ("post", "/conversations/{c}/messages", {"role": "agent", "text": "On its way."}),
    ("post", "/conversations/{c}/messages", {"role": "customer", "text": "Hello?"}),
    ("post", "/conversations/{c}/suggest", None),
    ("post", "/conversations/{c}/status", {"status": "resolved"}),
    ("post", "/messages/{m}/feedback", {"action": "accepted"}),
    ("post", "/conversations/{c}/take", None),
])
def test_another_agent_reads_a_taken_conversation_but_may_not_change_it(client, bob, taken, method, path, body):
    conversation, suggestion = taken
    api = as_user(client, bob)

    read = api.get(f"{BASE}/conversations/{conversation.id}")
    response = post_json(api, BASE + path.format(c=conversation.id, m=suggestion.id), body)

    assert read.status_code == 200
    assert response.status_code == 403
    assert response.json()["code"] == "assigned_to_someone_else"
    assert response.json()["detail"].startswith(f"Conversation {conversation.id} is assigned to alice")
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee.username, conversation.messages.count()) == ("open", "alice", 2)
    assert Message.objects.get(id=suggestion.id).feedback == ""


def test_the_assignee_answers_and_resolves(client, alice, taken):
    conversation, suggestion = taken
    api = as_user(client, alice)

    accepted = post_json(api, f"{BASE}/messages/{suggestion.id}/feedback", {"action": "accepted"})
    resolved = post_json(api, f"{BASE}/conversations/{conversation.id}/status", {"status": "resolved"})

    assert (accepted.status_code, resolved.status_code) == (200, 200)
    assert resolved.json()["status"] == "resolved"


def test_a_queued_conversation_takes_customer_messages_but_no_answers_until_taken(client, bob, queued):
    api = as_user(client, bob)

    customer = post_json(api, f"{BASE}/conversations/{queued.id}/messages", {"role": "customer", "text": "Hi?"})
    agent = post_json(api, f"{BASE}/conversations/{queued.id}/messages", {"role": "agent", "text": "Hello"})
    suggest = api.post(f"{BASE}/conversations/{queued.id}/suggest")

    assert customer.status_code == 201
    assert agent.status_code == suggest.status_code == 409
    assert agent.json() == {"detail": f"Conversation {queued.id} is in the shared queue: take it before answering it.",
                            "code": "not_taken"}


def test_an_admin_changes_reassigns_and_releases_any_conversation(client, admin, bob, taken):
    conversation, _ = taken
    api = as_user(client, admin)

    resolved = post_json(api, f"{BASE}/conversations/{conversation.id}/status", {"status": "resolved"})
    reassigned = post_json(api, f"{BASE}/conversations/{conversation.id}/assign", {"assignee": bob.id})
    released = post_json(api, f"{BASE}/conversations/{conversation.id}/assign", {"assignee": None})

    assert resolved.json()["status"] == "resolved"
    assert reassigned.json()["assignee"] == {"id": bob.id, "username": "bob"}
    assert released.json()["assignee"] is None


def test_an_assignee_releases_their_own_conversation_but_may_not_hand_it_to_someone(client, alice, bob, taken):
    conversation, _ = taken
    api = as_user(client, alice)

    handed = post_json(api, f"{BASE}/conversations/{conversation.id}/assign", {"assignee": bob.id})
    released = post_json(api, f"{BASE}/conversations/{conversation.id}/assign", {"assignee": None})

    assert handed.status_code == 403
    assert handed.json()["code"] == "admin_only"
    assert released.json()["assignee"] is None


@pytest.mark.parametrize("assignee", ["clinician", 10**12])
def test_a_conversation_is_assigned_only_to_a_support_agent(client, admin, taken, assignee):
    conversation, _ = taken
    if assignee == "clinician":
        assignee = user_create(username="doc", password="pw-doc-12345", role=Role.CLINICIAN).id
    api = as_user(client, admin)

    response = post_json(api, f"{BASE}/conversations/{conversation.id}/assign", {"assignee": assignee})

    assert response.status_code == 400
    assert response.json() == {"detail": f"User {assignee} is not an active support agent.", "code": "invalid",
                               "field": "assignee"}


def test_the_rule_holds_in_the_services_too(bob, taken):
    conversation, _ = taken

    with pytest.raises(ApplicationError) as refused:
        conversation_status_set(conversation=conversation, user=bob, status="resolved")
    with pytest.raises(ApplicationError) as not_taken:
        conversation_take(conversation=conversation, user=bob)

    assert (refused.value.status, not_taken.value.status) == (403, 403)


def test_a_suggestion_is_not_saved_for_an_agent_whose_conversation_was_reassigned_while_it_was_planned(
        monkeypatch, admin, alice, bob, taken):
    """The request read the conversation as alice's; an admin hands it to bob before the suggestion is
    saved: the save's own locked read refuses it."""
    from apps.customer_service.dialogue import plan_suggestion
    from apps.customer_service.services import conversation_assign, conversation_suggest
    from apps.customer_service.services import conversations as conversation_services

    conversation, _ = taken
    read_by_the_request = Conversation.objects.select_related("assignee").get(id=conversation.id)

    def planned_while_reassigned(**kwargs):
        conversation_assign(conversation=Conversation.objects.get(id=conversation.id), user=admin, assignee=bob)
        return plan_suggestion(**kwargs)

    monkeypatch.setattr(conversation_services, "plan_suggestion", planned_while_reassigned)
    with pytest.raises(ApplicationError) as refused:
        conversation_suggest(conversation=read_by_the_request, user=alice)

    assert (refused.value.status, refused.value.code) == (403, "assigned_to_someone_else")
    assert list(conversation.messages.filter(role="assistant").values_list("text", flat=True)) == [
        "Check Account > Orders."]


# --- the console ---------------------------------------------------------------------------------

def test_the_console_shows_a_taken_conversation_read_only_to_others(client, bob, taken):
    conversation, _ = taken
    console = as_user(client, bob)

    page = console.get(f"/console/customer-service/conversations/{conversation.id}/").content.decode()
    refused = console.post(f"/console/customer-service/conversations/{conversation.id}/status/",
                           {"status": "resolved"}, follow=True)

    assert "only alice or an admin may answer it" in page
    assert 'id="suggest"' not in page and "Take conversation" not in page
    assert f"Conversation {conversation.id} is assigned to alice: only alice or an admin may change it." in \
        refused.content.decode()
    conversation.refresh_from_db()
    assert conversation.status == "open"


def test_the_console_take_button_makes_the_agent_the_assignee(client, bob, queued):
    console = as_user(client, bob)
    queue_page = console.get("/console/customer-service/?assignee=none").content.decode()
    before = console.get(f"/console/customer-service/conversations/{queued.id}/").content.decode()

    console.post(f"/console/customer-service/conversations/{queued.id}/take/")

    after = console.get(f"/console/customer-service/conversations/{queued.id}/").content.decode()
    queued.refresh_from_db()
    assert f'href="/console/customer-service/conversations/{queued.id}/"' in queue_page
    assert "In the shared queue" in before and "Take conversation" in before and 'id="suggest"' not in before
    assert queued.assignee == bob
    assert 'id="suggest"' in after and "Release to the queue" in after


def test_the_console_lets_an_admin_reassign(client, admin, bob, taken):
    conversation, _ = taken
    console = as_user(client, admin)

    console.post(f"/console/customer-service/conversations/{conversation.id}/assign/", {"assignee": str(bob.id)})
    junk = console.post(f"/console/customer-service/conversations/{conversation.id}/assign/", {"assignee": "abc"},
                        follow=True)

    conversation.refresh_from_db()
    assert conversation.assignee == bob
    assert "User abc is not an active support agent." in junk.content.decode()
