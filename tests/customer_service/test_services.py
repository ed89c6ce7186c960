import pytest

from apps.core.errors import ApplicationError
from apps.customer_service.models import Entry, EntryEmbedding, KnowledgeBase
from apps.customer_service.selectors import entry_search, knowledge_base_export
from apps.customer_service.services import (entry_update, knowledge_base_create, knowledge_base_import,
                                            knowledge_base_reindex, knowledge_base_update)

CSV = ("question,answer,phrasings,tags\n"
       "Where is my order?,Check Account > Orders.,Where is my parcel?|Order status,orders\n"
       ",No question here,,\n"
       "How do I pay?,,,\n"
       "Where is my order?,Duplicate in the same file.,,\n"
       "Can I pay by card?,Yes: Visa and Mastercard.,,payments\n").encode()


def test_import_reports_every_row_and_stores_only_good_ones(kb):
    report = knowledge_base_import(knowledge_base=kb, filename="faq.csv", data=CSV)

    assert (report.imported, report.updated, report.skipped) == (2, 0, 3)
    assert [(r.row, r.status, r.reason) for r in report.rows] == [
        (1, "imported", ""), (2, "skipped", "missing question"), (3, "skipped", "missing answer"),
        (4, "skipped", "duplicate of row 1 in this file"), (5, "imported", "")]
    assert list(kb.entries.values_list("question", "phrasings", "tags", "source")) == [
        ("Where is my order?", ["Where is my parcel?", "Order status"], ["orders"], "faq.csv"),
        ("Can I pay by card?", [], ["payments"], "faq.csv")]
    assert KnowledgeBase.objects.get(id=kb.id).index_status == KnowledgeBase.IndexStatus.PENDING


def test_reimport_updates_changed_rows_and_skips_unchanged_ones(kb):
    knowledge_base_import(knowledge_base=kb, filename="faq.csv", data=CSV)
    changed = CSV.replace(b"Yes: Visa and Mastercard.", b"Yes: Visa and Mastercard and Amex.")

    report = knowledge_base_import(knowledge_base=kb, filename="faq.csv", data=changed)

    assert [(r.row, r.status, r.reason) for r in report.rows if r.status != "skipped" or r.reason == "unchanged"] == [
        (1, "skipped", "unchanged"), (5, "updated", "")]
    assert kb.entries.get(question="Can I pay by card?").answer == "Yes: Visa and Mastercard and Amex."


def test_export_round_trips_through_import(kb, db):
    knowledge_base_import(knowledge_base=kb, filename="faq.csv", data=CSV)
    exported, media_type = knowledge_base_export(knowledge_base=kb, file_format="csv")
    copy = KnowledgeBase.objects.create(name="Copy")

    report = knowledge_base_import(knowledge_base=copy, filename="copy.csv", data=exported)

    assert media_type == "text/csv"
    assert report.imported == 2
    assert list(copy.entries.values_list("question", "answer", "phrasings", "tags")) == list(
        kb.entries.values_list("question", "answer", "phrasings", "tags"))


@pytest.mark.slow
def test_reindex_embeds_only_what_changed(demo_kb, demo_faq):
    texts = sum(2 + len(entry["phrasings"]) for entry in demo_faq)
    assert EntryEmbedding.objects.filter(entry__knowledge_base=demo_kb).count() == texts

    again = knowledge_base_reindex(knowledge_base_id=demo_kb.id)
    entry = demo_kb.entries.first()
    entry_update(entry=entry, answer=entry.answer + " Thank you!")
    after_edit = knowledge_base_reindex(knowledge_base_id=demo_kb.id)

    assert (again["embedded"], again["reused"]) == (0, texts)
    assert (after_edit["embedded"], after_edit["reused"]) == (1, texts - 1)  # only the edited answer
    demo_kb.refresh_from_db()
    assert (demo_kb.index_status, demo_kb.index_dense, demo_kb.index_version) == ("ready", True, 3)


@pytest.mark.slow
def test_search_finds_the_entry_for_its_paraphrases(demo_kb, demo_faq):
    found = 0
    for entry in demo_faq:
        result = entry_search(knowledge_base=demo_kb, question=entry["phrasings"][0], k=5)
        found += result.hits[0].entry.question == entry["question"]

    assert found / len(demo_faq) >= 0.95  # indexed phrasings come back on top


@pytest.mark.slow
def test_an_unrelated_question_is_not_confident(demo_kb):
    result = entry_search(knowledge_base=demo_kb, question="Who painted the Mona Lisa?", k=5)

    assert result.dense
    assert not result.confident


def test_without_model_service_the_index_is_lexical_and_search_not_confident(kb, settings):
    settings.MODEL_SERVICE_URL = "http://127.0.0.1:9"
    knowledge_base_import(knowledge_base=kb, filename="faq.csv", data=CSV)

    result = knowledge_base_reindex(knowledge_base_id=kb.id)
    search = entry_search(knowledge_base=KnowledgeBase.objects.get(id=kb.id), question="where is my parcel", k=3)

    assert (result["status"], result["dense"]) == ("ready", False)
    assert KnowledgeBase.objects.get(id=kb.id).index_error.startswith("dense index skipped")
    assert search.hits[0].entry.question == "Where is my order?"  # lexical matches still come back
    assert (search.dense, search.confident) == (False, False)


def test_disabled_entries_are_left_out_of_the_index(kb, settings):
    settings.MODEL_SERVICE_URL = "http://127.0.0.1:9"
    knowledge_base_import(knowledge_base=kb, filename="faq.csv", data=CSV)
    entry_update(entry=Entry.objects.get(question="Where is my order?"), enabled=False)

    knowledge_base_reindex(knowledge_base_id=kb.id)
    search = entry_search(knowledge_base=KnowledgeBase.objects.get(id=kb.id), question="where is my order", k=3)

    assert [hit.entry.question for hit in search.hits] == []


def test_renaming_a_knowledge_base_leaves_the_index_state_to_the_reindex_job(kb):
    stale = KnowledgeBase.objects.get(id=kb.id)
    KnowledgeBase.objects.filter(id=kb.id).update(index_status=KnowledgeBase.IndexStatus.READY)
    heartbeat = KnowledgeBase.objects.get(id=kb.id).updated_at

    knowledge_base_update(knowledge_base=stale, name="Store FAQ", description="All about the store")

    fresh = KnowledgeBase.objects.get(id=kb.id)
    assert (fresh.name, fresh.description, fresh.index_status) == ("Store FAQ", "All about the store", "ready")
    assert fresh.updated_at == heartbeat


def test_a_description_change_keeps_a_name_that_predates_the_any_case_rule(kb):
    KnowledgeBase.objects.create(name="SHOP FAQ")  # allowed by the database's exact-case constraint

    updated = knowledge_base_update(knowledge_base=kb, description="Updated")
    recased = knowledge_base_update(knowledge_base=KnowledgeBase.objects.get(name="SHOP FAQ"), name="Shop faq (old)")

    assert (updated.name, updated.description, recased.name) == ("Shop FAQ", "Updated", "Shop faq (old)")


@pytest.mark.parametrize("name,message", [
    ("   ", "A knowledge base needs a name of 1 to 200 characters."),
    ("x" * 201, "A knowledge base needs a name of 1 to 200 characters."),
    ("SHOP faq", "A knowledge base named 'SHOP faq' exists already; choose another name."),
])
def test_knowledge_base_names_are_given_short_and_unique_in_any_case(kb, name, message):
    with pytest.raises(ApplicationError) as refused:
        knowledge_base_create(name=name)

    assert (refused.value.message, refused.value.field) == (message, "name")


def test_typed_texts_are_cut_to_the_named_limits(kb, settings):
    from apps.accounts.roles import Role
    from apps.accounts.services import user_create
    from apps.customer_service.services import (conversation_create, conversation_message_add,
                                                conversation_status_set, entry_create)

    settings.CUSTOMER_SERVICE_MAX_QUESTION_CHARS = 10
    settings.CUSTOMER_SERVICE_MAX_ANSWER_CHARS = 12
    settings.CUSTOMER_SERVICE_MAX_REASON_CHARS = 8
    agent = user_create(username="agent", password="pw-agent-123", role=Role.SUPPORT_AGENT)

    entry = entry_create(knowledge_base=kb, question="Where is my order now?", answer="Check Account > Orders.")
    conversation = conversation_create(knowledge_base=kb, customer_name="  " + "A" * 300, assignee=agent)
    message = conversation_message_add(conversation=conversation, user=agent, role="customer",
                                       text="  Where is my parcel today?")
    conversation = conversation_status_set(conversation=conversation, user=agent, status="handoff",
                                           reason="Needs a refund decision.")

    assert (entry.question, entry.answer) == ("Where is m", "Check Accoun")
    assert conversation.customer_name == "A" * 200
    assert message.text == "Where is m"
    assert conversation.handoff_reason == "Needs a "
