"""The retrieval model in Chromium: an admin watches a tuning finish without reloading and picks a point of
its trade-off; an agent rejects a streamed suggestion and names the entry that was right."""
import pytest
from playwright.sync_api import Page, expect

from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.customer_service.models import FeedbackPair, KnowledgeBase, Message, RetrievalTuning
from apps.customer_service.services import knowledge_base_create, knowledge_base_import, knowledge_base_reindex
from tests.frontend.test_console_browser import PASSWORD, log_in
from tests.frontend.test_customer_service_browser import CSV

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRADEOFF = [
    {"threshold": 0.3, "answered_in_scope": 0.95, "precision_when_answered": 0.84, "handoff_out_of_scope": 0.4},
    {"threshold": 0.5, "answered_in_scope": 0.8, "precision_when_answered": 0.94, "handoff_out_of_scope": 0.85},
]


def test_an_admin_watches_a_tuning_switch_and_picks_a_threshold(page: Page, live_server, transactional_db,
                                                                settings, tmp_path):
    settings.SUITE_DATA_DIR = tmp_path / "data"
    user_create(username="boss", password=PASSWORD, role=Role.ADMIN)
    knowledge_base = knowledge_base_create(name="Shop FAQ")
    tuning = RetrievalTuning.objects.create(knowledge_base=knowledge_base, version=1, model_name="kb-x-v1-abc123",
                                            status="running",
                                            progress={"phase": "training", "step": 12, "total": 40, "loss": 0.5})
    log_in(page, live_server.url, "boss")
    page.goto(live_server.url + f"/console/customer-service/knowledge-bases/{knowledge_base.id}/")
    expect(page.locator('#tunings tr[data-status="running"]')).to_contain_text("training 12/40, loss 0.5000")
    expect(page.get_by_role("button", name="Tune retrieval now")).to_be_disabled()

    RetrievalTuning.objects.filter(id=tuning.id).update(progress={"phase": "training", "step": 40, "total": 40,
                                                                  "loss": 0.25})
    expect(page.locator('#tunings tr[data-status="running"]')).to_contain_text("training 40/40, loss 0.2500")
    KnowledgeBase.objects.filter(id=knowledge_base.id).update(embedding_model="kb-x-v1-abc123")
    RetrievalTuning.objects.filter(id=tuning.id).update(
        status="succeeded", switched=True, progress={"phase": "done"},
        metrics={"gate": {"current": {"model": "base", "top1": 0.7}, "new": {"model": "kb-x-v1-abc123", "top1": 0.9}},
                 "held_out_pairs": 10, "feedback_pairs": 2, "tradeoff": TRADEOFF,
                 "reason": "the tuned model retrieves held-out phrasings better"})

    expect(page.locator("#model-in-use")).to_have_text("kb-x-v1-abc123")  # the page reloaded itself
    expect(page.locator("#gate")).to_contain_text("switched to the tuned model")
    expect(page.locator('#tradeoff tr[data-threshold="0.5"]')).to_have_class("in-use")
    page.get_by_role("button", name="Use 0.3").click()

    expect(page.locator("p.message")).to_have_text("Answer threshold set to 0.3.")
    expect(page.locator('#tradeoff tr[data-threshold="0.3"]')).to_have_class("in-use")
    page.get_by_role("button", name="Tune retrieval now").click()
    expect(page.locator("p.message.error")).to_contain_text("Tuning needs at least 2 enabled entries")
    assert KnowledgeBase.objects.get(id=knowledge_base.id).answer_threshold == 0.3


def test_an_agent_rejects_a_suggestion_and_names_the_right_entry(page: Page, live_server, transactional_db, settings,
                                                                  tmp_path, transformers_server):
    settings.MODEL_SERVICE_URL = transformers_server.url
    settings.SUITE_DATA_DIR = tmp_path / "data"
    user_create(username="support", password=PASSWORD, role=Role.SUPPORT_AGENT)
    knowledge_base = knowledge_base_create(name="Shop FAQ")
    knowledge_base_import(knowledge_base=knowledge_base, filename="faq.csv", data=CSV.encode())
    knowledge_base_reindex(knowledge_base_id=knowledge_base.id)
    log_in(page, live_server.url, "support")
    page.goto(live_server.url + "/console/customer-service/")
    page.get_by_label("Customer's message").fill("How many days do I have to send a jumper back?")
    page.get_by_role("button", name="Start").click()
    page.get_by_role("button", name="Suggest a reply").click()
    expect(page.locator("#suggestion-citations")).to_contain_text("How long do I have to return an item?")

    page.get_by_label("If you reject it, the entry that was right").select_option(label="Do you ship to the UK?")
    page.get_by_role("button", name="Reject").click()

    expect(page.locator("#suggestion-meta")).to_have_text("Suggestion rejected.")
    suggestion = Message.objects.get(role="assistant")
    pair = FeedbackPair.objects.get()
    assert (pair.entry.question, pair.source, pair.text, pair.message_id) == (
        "Do you ship to the UK?", "corrected", suggestion.standalone_question, suggestion.id)
