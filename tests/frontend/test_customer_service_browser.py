"""A support agent's day in Chromium: import a CSV, ask a question, get a cited streamed suggestion, accept it."""
import re

import pytest
from playwright.sync_api import Page, expect

from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.customer_service.models import KnowledgeBase, Message
from apps.customer_service.services import knowledge_base_reindex
from tests.frontend.test_console_browser import PASSWORD, log_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CSV = ("question,answer,phrasings,tags\n"
       "How long do I have to return an item?,You can return items within 30 days of delivery.,"
       "What is the return window?|How many days to send something back?,returns\n"
       "Do you ship to the UK?,Yes: UK delivery takes 3 to 5 working days.,Can I order from Britain?,shipping\n"
       ",no question,,\n")


@pytest.fixture
def agent(transactional_db):
    return user_create(username="support", password=PASSWORD, role=Role.SUPPORT_AGENT)


def test_import_ask_stream_and_accept(page: Page, live_server, agent, settings, tmp_path, transformers_server):
    settings.MODEL_SERVICE_URL = transformers_server.url
    settings.SUITE_DATA_DIR = tmp_path / "data"
    log_in(page, live_server.url, "support")
    page.goto(live_server.url + "/console/customer-service/knowledge-bases/")
    page.get_by_label("Name").fill("Shop FAQ")
    page.get_by_role("button", name="Create").click()

    csv_file = tmp_path / "faq.csv"
    csv_file.write_text(CSV)
    page.get_by_label("File").set_input_files(str(csv_file))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-report")).to_contain_text("2 imported, 0 updated, 1 skipped.")
    expect(page.locator('#import-report tr[data-status="skipped"]')).to_contain_text("missing question")

    knowledge_base_reindex(knowledge_base_id=KnowledgeBase.objects.get(name="Shop FAQ").id)  # the worker's job
    page.reload()
    page.get_by_label("Question").fill("how many days can I send stuff back")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".test-hits li").first).to_contain_text("How long do I have to return an item?")

    page.goto(live_server.url + "/console/customer-service/")
    page.get_by_label("Customer", exact=True).fill("Ada")
    page.get_by_label("Customer's message").fill("How many days do I have to send a jumper back?")
    page.get_by_role("button", name="Start").click()
    page.get_by_role("button", name="Suggest a reply").click()

    expect(page.locator("#suggestion-text")).to_have_text("You can return items within 30 days of delivery.")
    expect(page.locator("#suggestion-citations")).to_contain_text("How long do I have to return an item?")
    expect(page.locator("#suggestion-meta")).to_have_text(re.compile(r"^Confidence 0\.\d\d$"))
    page.get_by_role("button", name="Accept").click()

    expect(page.locator("#suggestion-meta")).to_have_text("Suggestion accepted.")
    expect(page.locator('ol.messages li[data-role="agent"]')).to_contain_text(
        "You can return items within 30 days of delivery.")
    assert Message.objects.get(role="assistant").feedback == "accepted"


def test_an_off_topic_question_is_handed_off_in_the_console(page: Page, live_server, agent, settings, tmp_path,
                                                            transformers_server):
    from apps.customer_service.services import knowledge_base_create, knowledge_base_import

    settings.MODEL_SERVICE_URL = transformers_server.url
    settings.SUITE_DATA_DIR = tmp_path / "data"
    knowledge_base = knowledge_base_create(name="Shop FAQ")
    knowledge_base_import(knowledge_base=knowledge_base, filename="faq.csv", data=CSV.encode())
    knowledge_base_reindex(knowledge_base_id=knowledge_base.id)
    log_in(page, live_server.url, "support")
    page.goto(live_server.url + "/console/customer-service/")
    page.get_by_label("Customer's message").fill("Which planet is closest to the sun?")
    page.get_by_role("button", name="Start").click()

    page.get_by_role("button", name="Suggest a reply").click()

    expect(page.locator("#suggestion-meta")).to_contain_text("Handed off to a human")
    expect(page.locator("#suggestion-actions")).to_be_hidden()
    expect(page.locator("#conversation-status")).to_have_attribute("data-status", "handoff")
    page.goto(live_server.url + "/console/customer-service/?status=handoff")
    expect(page.locator('#conversation-list tr[data-status="handoff"]')).to_have_count(1)


def test_an_agent_takes_a_queued_conversation_and_another_only_reads_it(page: Page, live_server, agent, settings,
                                                                        tmp_path):
    from apps.customer_service.models import Conversation
    from apps.customer_service.services import knowledge_base_create

    settings.SUITE_DATA_DIR = tmp_path / "data"
    knowledge_base = knowledge_base_create(name="Shop FAQ")
    conversation = Conversation.objects.create(knowledge_base=knowledge_base, customer_name="Ada")
    Message.objects.create(conversation=conversation, role="customer", text="Where is my parcel?")
    user_create(username="other", password=PASSWORD, role=Role.SUPPORT_AGENT)
    log_in(page, live_server.url, "support")
    page.goto(live_server.url + "/console/customer-service/?assignee=none")
    page.locator("#conversation-list").get_by_role("link", name=str(conversation.id)).click()
    expect(page.locator("#suggest")).to_have_count(0)

    page.get_by_role("button", name="Take conversation").click()

    expect(page.locator("#assignment")).to_contain_text("Assigned to support (you)")
    expect(page.get_by_role("button", name="Suggest a reply")).to_be_visible()
    page.context.clear_cookies()
    log_in(page, live_server.url, "other")
    page.goto(live_server.url + f"/console/customer-service/conversations/{conversation.id}/")
    expect(page.locator("#assignment")).to_contain_text("only support or an admin may answer it")
    expect(page.locator("#suggest")).to_have_count(0)
    expect(page.get_by_text("Where is my parcel?")).to_be_visible()
