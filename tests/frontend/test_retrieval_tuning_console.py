"""The console's retrieval-model pages: tunings and their gate, the answer trade-off and threshold, the
suggestion-accuracy chart, and naming the right entry when rejecting a suggestion. Tunings are rows
written here (a real one trains for minutes)."""
import html
import re
from datetime import datetime, time, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.roles import Role
from apps.customer_service import selectors
from apps.customer_service.models import Conversation, FeedbackPair, KnowledgeBase, Message, RetrievalTuning
from apps.customer_service.services import entry_create, knowledge_base_create
from tests.users import user_fixture

admin = user_fixture("admin", Role.ADMIN)
agent = user_fixture("agent", Role.SUPPORT_AGENT)

TRADEOFF = [
    {"threshold": 0.3, "answered_in_scope": 0.95, "precision_when_answered": 0.8421, "handoff_out_of_scope": 0.4},
    {"threshold": 0.5, "answered_in_scope": 0.8, "precision_when_answered": 0.9375, "handoff_out_of_scope": 0.85},
    {"threshold": 0.9, "answered_in_scope": 0.0, "precision_when_answered": None, "handoff_out_of_scope": 1.0},
]
GATE_KEPT = {"gate": {"current": {"model": "base", "top1": 0.8}, "new": {"model": "kb-1-v1-abc123", "top1": 0.75}},
             "held_out_pairs": 20, "feedback_pairs": 3, "tradeoff": TRADEOFF,
             "reason": "kept the model in use: the tuned one is not better on held-out phrasings"}


@pytest.fixture(autouse=True)
def suite_data_dir(settings, tmp_path):
    settings.SUITE_DATA_DIR = tmp_path / "data"


@pytest.fixture
def kb(db) -> KnowledgeBase:
    return knowledge_base_create(name="Shop FAQ")


@pytest.fixture
def kb_with_phrasings(kb) -> KnowledgeBase:
    """Enough for a tuning: two enabled entries with two phrasings each."""
    entry_create(knowledge_base=kb, question="How long do I have to return an item?", answer="30 days.",
                 phrasings=["What is the return window?", "How many days to send something back?"])
    entry_create(knowledge_base=kb, question="Do you ship to the UK?", answer="Yes, in 3 to 5 days.",
                 phrasings=["Can I order from Britain?", "Is there UK delivery?"])
    return kb


def page_of(client, user, kb: KnowledgeBase) -> str:
    client.force_login(user)
    response = client.get(reverse("frontend:cs_knowledge_base", args=[kb.id]))
    assert response.status_code == 200
    return response.content.decode()


def text_of(fragment: str) -> str:
    """The text a reader sees in an HTML fragment: tags dropped, runs of white space as one space."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", fragment))).strip()


def table_rows(page: str, table_id: str) -> list[list[str]]:
    """The body rows of the table `table_id`, as the text of their cells."""
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.S).group(1)
    body = re.search(r"<tbody>(.*?)</tbody>", table, re.S).group(1)
    return [[text_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def flash_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def tuning(kb: KnowledgeBase, version: int = 1, **fields) -> RetrievalTuning:
    return RetrievalTuning.objects.create(knowledge_base=kb, version=version,
                                          model_name=f"kb-{kb.id}-v{version}-abc123", **fields)


# --- the retrieval model card ---------------------------------------------------------------------

def test_an_admin_sees_the_tune_button_and_the_threshold_form(client, admin, kb):
    page = page_of(client, admin, kb)

    assert "Tune retrieval now" in page
    assert 'id="threshold-form"' in page
    assert re.search(r'id="model-in-use">base<', page)


def test_a_support_agent_sees_neither(client, agent, kb):
    page = page_of(client, agent, kb)

    assert "Tune retrieval now" not in page
    assert 'id="threshold-form"' not in page
    assert re.search(r'id="model-in-use">base<', page)


def test_an_admin_queues_a_tuning(client, admin, kb_with_phrasings):
    client.force_login(admin)

    response = client.post(reverse("frontend:cs_tune", args=[kb_with_phrasings.id]), follow=True)

    queued = RetrievalTuning.objects.get()
    assert (queued.knowledge_base, queued.version, queued.status, queued.created_by) == (
        kb_with_phrasings, 1, "queued", admin)
    assert response.redirect_chain == [(reverse("frontend:cs_knowledge_base", args=[kb_with_phrasings.id]), 302)]
    assert flash_messages(response) == ["Retrieval tuning v1 queued: the page follows its progress."]
    assert table_rows(response.content.decode(), "tunings") == [["v1", "Queued", "waiting for a worker", "—", "—"]]


def test_a_support_agent_is_refused_a_tuning(client, agent, kb_with_phrasings):
    client.force_login(agent)

    response = client.post(reverse("frontend:cs_tune", args=[kb_with_phrasings.id]), follow=True)

    assert flash_messages(response) == ["Only an admin may tune a knowledge base's retrieval."]
    assert not RetrievalTuning.objects.exists()


def test_a_knowledge_base_without_phrasings_is_refused_a_tuning(client, admin, kb):
    client.force_login(admin)

    response = client.post(reverse("frontend:cs_tune", args=[kb.id]), follow=True)

    assert flash_messages(response) == [
        "Tuning needs at least 2 enabled entries with two or more phrasings each: some phrasings are held out "
        "to check the tuned model."]
    assert not RetrievalTuning.objects.exists()


def test_a_second_tuning_while_one_runs_is_refused(client, admin, kb_with_phrasings):
    tuning(kb_with_phrasings, status="running")
    client.force_login(admin)

    response = client.post(reverse("frontend:cs_tune", args=[kb_with_phrasings.id]), follow=True)

    assert flash_messages(response) == ["A retrieval tuning of this knowledge base is already queued or running."]
    assert RetrievalTuning.objects.count() == 1


def test_a_running_tuning_shows_its_progress_and_the_page_polls(client, admin, kb):
    tuning(kb, status="running", progress={"phase": "training", "step": 12, "total": 40, "loss": 0.23456})

    page = page_of(client, admin, kb)

    assert table_rows(page, "tunings") == [["v1", "Running", "training 12/40, loss 0.2346", "—", "—"]]
    assert re.search(r'<section class="card" id="retrieval-model" [^>]*hx-get="'
                     + reverse("frontend:cs_retrieval", args=[kb.id]) + '" hx-trigger="every 2s"', page)
    assert re.search(r'<button type="submit" disabled>Tune retrieval now</button>', page)


def test_the_polled_card_reloads_the_page_once_no_tuning_is_active(client, admin, kb):
    running = tuning(kb, status="running", progress={"phase": "evaluating"})
    client.force_login(admin)
    url = reverse("frontend:cs_retrieval", args=[kb.id])

    while_running = client.get(url)
    RetrievalTuning.objects.filter(id=running.id).update(status="succeeded", metrics=GATE_KEPT,
                                                         progress={"phase": "done"})
    once_done = client.get(url)

    assert "HX-Refresh" not in while_running.headers
    assert table_rows(while_running.content.decode(), "tunings") == [["v1", "Running", "evaluating", "—", "—"]]
    assert once_done.headers["HX-Refresh"] == "true"
    assert 'hx-trigger' not in once_done.content.decode()


def test_the_gate_of_a_kept_model(client, agent, kb):
    tuning(kb, status="succeeded", switched=False, metrics=GATE_KEPT)

    page = page_of(client, agent, kb)

    gate = text_of(re.search(r'<p id="gate"[^>]*>(.*?)</p>', page, re.S).group(1))
    assert 'data-switched="no"' in page
    assert gate == ("Last finished tuning (v1): held-out top-1 base 0.800 (in use before) vs kb-1-v1-abc123 0.750 "
                    "(tuned): kept the model in use (why: kept the model in use: the tuned one is not better on "
                    "held-out phrasings). 20 held-out phrasings, 3 agents' feedback pairs trained on.")
    assert table_rows(page, "tunings") == [["v1", "Succeeded", "—", "0.800 → 0.750", "kept"]]


def test_a_switched_model_is_the_one_in_use(client, agent, kb):
    KnowledgeBase.objects.filter(id=kb.id).update(embedding_model=f"kb-{kb.id}-v2-abc123")
    tuning(kb, version=1, status="failed", error="RuntimeError: out of memory")
    metrics = {**GATE_KEPT, "gate": {"current": {"model": "base", "top1": 0.7},
                                     "new": {"model": f"kb-{kb.id}-v2-abc123", "top1": 0.9}},
               "reason": "the tuned model retrieves held-out phrasings better"}
    tuning(kb, version=2, status="succeeded", switched=True, metrics=metrics)

    page = page_of(client, agent, kb)

    assert re.search(rf'id="model-in-use">kb-{kb.id}-v2-abc123<', page)
    assert 'data-switched="yes"' in page
    assert "switched to the tuned model</strong> (why: the tuned model retrieves held-out phrasings better)." in page
    assert table_rows(page, "tunings") == [["v2", "Succeeded", "—", "0.700 → 0.900", "switched"],
                                           ["v1", "Failed", "—", "—", "RuntimeError: out of memory"]]


# --- the trade-off and the answer threshold -----------------------------------------------------

def test_the_trade_off_rows_of_the_latest_finished_tuning(client, agent, kb):
    tuning(kb, version=1, status="succeeded", metrics={**GATE_KEPT, "tradeoff": TRADEOFF[:1]})
    tuning(kb, version=2, status="succeeded", metrics=GATE_KEPT)
    tuning(kb, version=3, status="running")

    page = page_of(client, agent, kb)

    assert table_rows(page, "tradeoff") == [["0.3", "95%", "84%", "40%"], ["0.5", "80%", "94%", "85%"],
                                            ["0.9", "0%", "—", "100%"]]
    assert re.search(r'<tr data-threshold="0.5" class="in-use"', page)  # the calibration's default, 0.5
    assert "(the calibration's default)" in page


def test_an_admin_picks_a_row_of_the_trade_off(client, admin, kb):
    tuning(kb, status="succeeded", metrics=GATE_KEPT)
    before = page_of(client, admin, kb)

    response = client.post(reverse("frontend:cs_threshold", args=[kb.id]), {"threshold": "0.3"}, follow=True)

    kb.refresh_from_db()
    after = response.content.decode()
    assert '<button type="submit" name="threshold" value="0.3">Use 0.3</button>' in before
    assert kb.answer_threshold == 0.3
    assert flash_messages(response) == ["Answer threshold set to 0.3."]
    assert re.search(r'<tr data-threshold="0.3" class="in-use"', after)
    assert "(set by an admin; the calibration's default is 0.5)" in after
    assert [row[-1] for row in table_rows(after, "tradeoff")] == ["in use", "Use 0.5", "Use 0.9"]


def test_an_admin_types_a_threshold_then_returns_to_the_default(client, admin, kb):
    client.force_login(admin)
    url = reverse("frontend:cs_threshold", args=[kb.id])

    typed = client.post(url, {"threshold": "0.425"}, follow=True)
    kb.refresh_from_db()
    typed_value = kb.answer_threshold
    reset = client.post(url, {"threshold": "default"}, follow=True)
    kb.refresh_from_db()

    assert typed_value == 0.425
    assert flash_messages(typed) == ["Answer threshold set to 0.425."]
    assert 'Use the default (0.5)' in typed.content.decode()
    assert kb.answer_threshold is None
    assert flash_messages(reset) == ["Answer threshold back to the calibration's default, 0.5."]
    assert 'data-threshold="0.5">0.5</strong> (the calibration\'s default)' in reset.content.decode()


@pytest.mark.parametrize("value", ["abc", "", "1.5", "-0.1", "NaN", "1e309"])
def test_a_threshold_that_is_no_confidence_is_refused(client, admin, kb, value):
    KnowledgeBase.objects.filter(id=kb.id).update(answer_threshold=0.4)
    client.force_login(admin)

    response = client.post(reverse("frontend:cs_threshold", args=[kb.id]), {"threshold": value}, follow=True)

    kb.refresh_from_db()
    assert flash_messages(response) == ["The answer threshold is a confidence from 0 to 1."]
    assert kb.answer_threshold == 0.4


def test_a_support_agent_may_not_set_the_threshold(client, agent, kb):
    client.force_login(agent)

    response = client.post(reverse("frontend:cs_threshold", args=[kb.id]), {"threshold": "0.3"}, follow=True)

    kb.refresh_from_db()
    assert flash_messages(response) == ["Only an admin may change the answer threshold."]
    assert kb.answer_threshold is None


# --- the accuracy chart ---------------------------------------------------------------------------

def suggestion_on(conversation: Conversation, day, feedback: str = "") -> Message:
    """A suggestion made at noon (UTC) of `day`, reviewed as `feedback`."""
    message = Message.objects.create(conversation=conversation, role="assistant", text="…", feedback=feedback)
    Message.objects.filter(id=message.id).update(created_at=datetime.combine(day, time(12), dt_timezone.utc))
    return message


def test_the_accuracy_chart_draws_the_selectors_numbers(client, agent, kb):
    today = timezone.now().date()
    conversation = Conversation.objects.create(knowledge_base=kb)
    for day, feedback in [(2, "accepted"), (2, "rejected"), (1, "edited"), (1, "accepted"), (1, ""), (0, ""),
                          (40, "accepted")]:  # 40 days ago: outside the chart's 30 days
        suggestion_on(conversation, today - timedelta(days=day), feedback)
    other = Conversation.objects.create(knowledge_base=knowledge_base_create(name="Other FAQ"))
    suggestion_on(other, today, "rejected")  # another knowledge base's

    page = page_of(client, agent, kb)

    iso = lambda days_ago: (today - timedelta(days=days_ago)).isoformat()  # noqa: E731
    assert [{**row, "day": row["day"].isoformat()} for row in selectors.suggestion_accuracy(knowledge_base=kb)] == [
        {"day": iso(2), "suggestions": 2, "right": 1, "wrong": 1, "accuracy": 0.5},
        {"day": iso(1), "suggestions": 3, "right": 2, "wrong": 0, "accuracy": 1.0},
        {"day": iso(0), "suggestions": 1, "right": 0, "wrong": 0, "accuracy": None}]
    assert table_rows(page, "accuracy-table") == [[iso(2), "2", "1", "1", "50%"], [iso(1), "3", "2", "0", "100%"],
                                                  [iso(0), "1", "0", "0", "—"]]
    # x: 24 + 552 * (days since 30 days ago) / 30; y: 24 + 112 * (1 - accuracy); a day without reviews has no point
    assert re.findall(r'<circle class="accuracy-point" cx="([\d.]+)" cy="([\d.]+)" r="4" data-day="([\d-]+)" '
                      r'data-accuracy="([\d.]+)"', page) == [("539.2", "80.0", iso(2), "0.5"),
                                                             ("557.6", "24.0", iso(1), "1.0")]
    assert '<polyline class="accuracy-line" points="539.2,80.0 557.6,24.0"/>' in page


def test_without_suggestions_there_is_no_chart(client, agent, kb):
    page = page_of(client, agent, kb)

    assert "<svg" not in page
    assert "No suggestions in the last 30 days." in page


# --- naming the right entry when rejecting --------------------------------------------------------

@pytest.fixture
def reviewed_conversation(kb_with_phrasings, agent):
    """The agent's conversation with a suggestion citing the return policy for a UK question."""
    kb = kb_with_phrasings
    returns, uk = kb.entries.order_by("id")
    entry_create(knowledge_base=kb, question="An old, disabled entry", answer="-", enabled=False)
    conversation = Conversation.objects.create(knowledge_base=kb, assignee=agent)
    Message.objects.create(conversation=conversation, role="customer", text="Can you send it to London?")
    suggestion = Message.objects.create(
        conversation=conversation, role="assistant", text="30 days.", standalone_question="Can you send it to London?",
        citations=[{"entry_id": returns.id, "question": returns.question, "score": 0.4}], confidence=0.6)
    return conversation, suggestion, uk


def test_the_conversation_page_offers_the_knowledge_bases_enabled_entries(client, agent, reviewed_conversation):
    conversation, suggestion, uk = reviewed_conversation
    returns_id = suggestion.citations[0]["entry_id"]
    client.force_login(agent)

    page = client.get(reverse("frontend:cs_conversation", args=[conversation.id])).content.decode()

    select = re.search(r'<select id="reject-entry">(.*?)</select>', page, re.S).group(1)
    assert re.findall(r'<option value="(\d*)">([^<]*)</option>', select) == [
        ("", "None chosen"), (str(returns_id), "How long do I have to return an item?"),
        (str(uk.id), "Do you ship to the UK?")]


def test_rejecting_with_the_right_entry_makes_a_corrected_training_pair(client, agent, reviewed_conversation):
    """What suggest.js posts: the feedback form fields, with `entry` when the agent chose one."""
    conversation, suggestion, uk = reviewed_conversation
    client.force_login(agent)

    response = client.post(f"/api/customer-service/v1/messages/{suggestion.id}/feedback",
                           {"action": "rejected", "text": "", "entry": str(uk.id)})

    assert response.status_code == 200
    assert response.json()["feedback"] == "rejected"
    assert list(FeedbackPair.objects.values_list("knowledge_base", "entry", "text", "source", "message")) == [
        (conversation.knowledge_base_id, uk.id, "Can you send it to London?", "corrected", suggestion.id)]


def test_rejecting_without_an_entry_makes_no_training_pair(client, agent, reviewed_conversation):
    _, suggestion, _ = reviewed_conversation
    client.force_login(agent)

    response = client.post(f"/api/customer-service/v1/messages/{suggestion.id}/feedback",
                           {"action": "rejected", "text": ""})

    assert response.status_code == 200
    assert not FeedbackPair.objects.exists()
