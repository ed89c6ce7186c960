import pytest

from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.customer_service.services import conversation_create, entry_create, knowledge_base_create


@pytest.fixture
def admin_client(client, db):
    client.force_login(user_create(username="admin", password="pw-for-tests-123", role=Role.ADMIN))
    return client


def test_the_admin_lists_and_shows_customer_service_data_read_only(admin_client):
    kb = knowledge_base_create(name="Shop FAQ")
    entry = entry_create(knowledge_base=kb, question="Where is my order?", answer="Check Account > Orders.")
    conversation = conversation_create(knowledge_base=kb, customer_name="Ada")

    lists = {model: admin_client.get(f"/admin/customer_service/{model}/").status_code
             for model in ("knowledgebase", "entry", "conversation", "message")}
    shown = admin_client.get(f"/admin/customer_service/entry/{entry.id}/change/")
    conversation_page = admin_client.get(f"/admin/customer_service/conversation/{conversation.id}/change/")
    add = admin_client.get("/admin/customer_service/knowledgebase/add/")
    delete = admin_client.post(f"/admin/customer_service/knowledgebase/{kb.id}/delete/", {"post": "yes"})

    assert lists == {"knowledgebase": 200, "entry": 200, "conversation": 200, "message": 200}
    assert shown.status_code == 200
    assert b"Where is my order?" in shown.content
    assert b'name="question"' not in shown.content  # shown, not an editable field
    assert conversation_page.status_code == 200
    assert add.status_code == 403
    assert delete.status_code == 403
    assert kb.entries.count() == 1
