"""Page-number pagination on the app's lists, and the search API's tag filter."""
import pytest

from apps.accounts.roles import Role
from apps.customer_service.models import Conversation
from apps.customer_service.pagination import PAGE_SIZE
from apps.customer_service.services import entry_create, knowledge_base_create, knowledge_base_reindex
from tests.users import user_fixture

BASE = "/api/customer-service/v1"

agent = user_fixture("agent", Role.SUPPORT_AGENT)


@pytest.fixture
def api(client, agent):
    client.force_login(agent)
    return client


@pytest.fixture
def five_entries(kb):
    return [entry_create(knowledge_base=kb, question=f"Question {n}?", answer=f"Answer {n}.") for n in range(5)]


def test_a_list_comes_in_pages_with_links_to_its_neighbours(api, kb, five_entries):
    url = f"{BASE}/knowledge-bases/{kb.id}/entries"

    first = api.get(url, {"page_size": 2}).json()
    second = api.get(url, {"page_size": 2, "page": 2}).json()
    last = api.get(url, {"page_size": 2, "page": 3}).json()

    assert (first["count"], [e["question"] for e in first["results"]]) == (5, ["Question 0?", "Question 1?"])
    assert (first["previous"], first["next"]) == (None, f"http://testserver{url}?page_size=2&page=2")
    assert [e["question"] for e in second["results"]] == ["Question 2?", "Question 3?"]
    assert (second["previous"], second["next"]) == (f"http://testserver{url}?page_size=2&page=1",
                                                    f"http://testserver{url}?page_size=2&page=3")
    assert ([e["question"] for e in last["results"]], last["next"]) == (["Question 4?"], None)


def test_links_keep_the_lists_filters(api, kb):
    for name in ("Ada", "Bob", "Cy"):
        Conversation.objects.create(knowledge_base=kb, customer_name=name, status="handoff")
    Conversation.objects.create(knowledge_base=kb, customer_name="Dee")

    page = api.get(f"{BASE}/conversations/", {"status": "handoff", "page_size": 2}).json()

    assert page["count"] == 3
    assert page["next"] == f"http://testserver{BASE}/conversations/?status=handoff&page_size=2&page=2"


def test_a_list_without_page_parameters_is_the_first_page_of_the_default_size(api, kb):
    for n in range(PAGE_SIZE + 1):
        knowledge_base_create(name=f"KB {n:02d}")

    page = api.get(f"{BASE}/knowledge-bases/").json()

    assert (page["count"], len(page["results"])) == (PAGE_SIZE + 2, PAGE_SIZE)
    assert page["next"] == f"http://testserver{BASE}/knowledge-bases/?page=2&page_size={PAGE_SIZE}"


def test_an_empty_list_has_one_empty_page(api):
    response = api.get(f"{BASE}/conversations/")

    assert (response.status_code, response.json()) == (200, {"count": 0, "next": None, "previous": None,
                                                             "results": []})


@pytest.mark.parametrize("params,field,message", [
    ({"page_size": 101}, "page_size", "Ensure this value is less than or equal to 100."),
    ({"page_size": 0}, "page_size", "Ensure this value is greater than or equal to 1."),
    ({"page": 0}, "page", "Ensure this value is greater than or equal to 1."),
    ({"page": "abc"}, "page", "A valid integer is required."),
    ({"page": 4}, "page", "There are 3 pages."),
    ({"page": 10**30}, "page", "There are 3 pages."),
])
def test_a_page_out_of_bounds_is_a_400_naming_the_parameter(api, kb, five_entries, params, field, message):
    response = api.get(f"{BASE}/knowledge-bases/{kb.id}/entries", {"page_size": 2, **params})

    assert response.status_code == 400
    assert response.json()[field] == [message]


@pytest.fixture
def tagged_kb(db, settings):
    settings.MODEL_SERVICE_URL = "http://127.0.0.1:9"  # a lexical index: the test does not need embeddings
    knowledge_base = knowledge_base_create(name="Tagged")
    for question, tags in [("Where is my order?", ["orders"]), ("How do I pay for an order?", ["billing"]),
                           ("Can I get a refund for an order?", ["billing", "Orders"])]:
        entry_create(knowledge_base=knowledge_base, question=question, answer="An answer.", tags=tags)
    knowledge_base_reindex(knowledge_base_id=knowledge_base.id)
    return knowledge_base


@pytest.mark.parametrize("tags,expected", [
    ("billing", ["How do I pay for an order?", "Can I get a refund for an order?"]),
    ("billing, orders", ["Can I get a refund for an order?"]),  # every tag, case-insensitively
    ("shipping", []),
    (" , ", ["Where is my order?", "How do I pay for an order?", "Can I get a refund for an order?"]),
])
def test_search_returns_only_entries_having_every_tag(api, tagged_kb, tags, expected):
    response = api.get(f"{BASE}/search", {"kb": tagged_kb.id, "q": "order", "tags": tags})

    assert response.status_code == 200
    results = response.json()["results"]
    assert sorted(result["question"] for result in results) == sorted(expected)
    assert all("tags" in result for result in results)


def test_search_refuses_more_tags_than_an_entry_may_have(api, tagged_kb):
    too_many = ",".join(f"t{n}" for n in range(21))

    response = api.get(f"{BASE}/search", {"kb": tagged_kb.id, "q": "order", "tags": too_many})

    assert (response.status_code, response.json()) == (400, {"tags": ["At most 20 tags."]})
