"""The Dify external knowledge API, called as Dify calls it: `POST {endpoint}/retrieval` with a JSON body
and `Authorization: Bearer {API key}`. Without model_service the index is lexical, so scores come from
BM25 alone (still in [0, 1])."""
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import ApiToken
from apps.accounts.roles import Role
from apps.accounts.services import api_token_create
from apps.customer_service.models import KnowledgeBase
from apps.customer_service.services import entry_create, knowledge_base_create, knowledge_base_reindex
from tests.users import user_fixture

ENDPOINT = "/api/customer-service/v1/dify"  # what an admin pastes into Dify
URL = ENDPOINT + "/retrieval"
ENTRIES = [  # (question, answer, tags)
    ("Where is my order?", "Check Account > Orders for its tracking link.", ["orders"]),
    ("How do I pay for an order?", "By card or bank transfer.", ["billing"]),
    ("Can I get a refund for an order?", "Yes, within 30 days of delivery.", ["Billing", "orders"]),
    ("Do you ship abroad?", "We ship to the EU and the UK.", []),
]

agent = user_fixture("agent", Role.SUPPORT_AGENT)
developer = user_fixture("developer", Role.DEVELOPER)
admin = user_fixture("admin", Role.ADMIN)


@pytest.fixture
def faq(db) -> KnowledgeBase:
    knowledge_base = knowledge_base_create(name="Shop FAQ")
    for question, answer, tags in ENTRIES:
        entry_create(knowledge_base=knowledge_base, question=question, answer=answer, tags=tags)
    knowledge_base_reindex(knowledge_base_id=knowledge_base.id)
    return KnowledgeBase.objects.get(id=knowledge_base.id)


def token_for(user, scope=ApiToken.Scope.RETRIEVAL) -> str:
    return api_token_create(user=user, name="dify", scope=scope).secret


def dify_body(knowledge_id, query="where is my order", top_k=5, score_threshold=0.0, **extra) -> dict:
    return {"knowledge_id": str(knowledge_id), "query": query,
            "retrieval_setting": {"top_k": top_k, "score_threshold": score_threshold}, **extra}


def retrieve(client, body, authorization: str | None, content_type="application/json"):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    data = json.dumps(body) if isinstance(body, (dict, list)) else body
    return client.post(URL, data, content_type=content_type, **headers)


def titles(response) -> list[str]:
    return [record["title"] for record in response.json()["records"]]


def test_records_are_ranked_entries_with_their_metadata(client, agent, faq):
    response = retrieve(client, dify_body(faq.id), f"Bearer {token_for(agent)}")

    assert response.status_code == 200
    records = response.json()["records"]
    first = records[0]
    assert titles(response)[0] == "Where is my order?"
    assert (first["content"], first["metadata"]) == ("Check Account > Orders for its tracking link.", {
        "entry_id": faq.entries.get(question="Where is my order?").id, "tags": ["orders"],
        "knowledge_base_id": faq.id, "knowledge_base": "Shop FAQ"})
    scores = [record["score"] for record in records]
    assert scores == sorted(scores, reverse=True)
    assert first["score"] == 1.0  # first in both lexical rankings: the best lexical-only score
    assert all(0.0 < score <= 1.0 for score in scores)
    assert "Do you ship abroad?" not in titles(response)  # nothing in common with the query


def test_score_threshold_and_top_k_bound_the_records(client, agent, faq):
    token = f"Bearer {token_for(agent)}"
    everything = retrieve(client, dify_body(faq.id), token).json()["records"]
    second_score = everything[1]["score"]

    above_second = retrieve(client, dify_body(faq.id, score_threshold=second_score + 1e-6), token)
    from_second = retrieve(client, dify_body(faq.id, score_threshold=second_score), token)
    top_one = retrieve(client, dify_body(faq.id, top_k=1), token)

    assert len(everything) == 3
    assert titles(above_second) == ["Where is my order?"]
    assert titles(from_second) == [record["title"] for record in everything if record["score"] >= second_score]
    assert titles(top_one) == ["Where is my order?"]


@pytest.mark.parametrize("setting,message", [
    ({"top_k": 0, "score_threshold": 0.5}, "retrieval_setting.top_k: Ensure this value is greater than or equal to 1."),
    ({"top_k": 51, "score_threshold": 0.5}, "retrieval_setting.top_k: Ensure this value is less than or equal to 50."),
    ({"top_k": 3, "score_threshold": 1.5},
     "retrieval_setting.score_threshold: Ensure this value is less than or equal to 1.0."),
    ({"score_threshold": 0.5}, "retrieval_setting.top_k: This field is required."),
])
def test_retrieval_settings_out_of_bounds_are_a_400_in_difys_shape(client, agent, faq, setting, message):
    body = {**dify_body(faq.id), "retrieval_setting": setting}

    response = retrieve(client, body, f"Bearer {token_for(agent)}")

    assert (response.status_code, response.json()) == (400, {"error_code": 3001, "error_msg": message})


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Basic dXNlcjpwdw==", "Bearer two parts", "bearer x"])
def test_a_missing_or_malformed_authorization_header_is_1001(client, faq, authorization):
    response = retrieve(client, dify_body(faq.id), authorization)

    assert (response.status_code, response.json()) == (403, {
        "error_code": 1001, "error_msg": "Invalid Authorization header format. Expected 'Bearer <api-key>' format."})


def test_an_unknown_token_is_1002(client, faq):
    response = retrieve(client, dify_body(faq.id), "Bearer moe_not-a-token")

    assert (response.status_code, response.json()) == (403, {
        "error_code": 1002, "error_msg": "Authorization failed: Unknown or revoked API token."})


def test_an_expired_token_is_1002(client, agent, faq):
    secret = token_for(agent)
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(days=1))

    response = retrieve(client, dify_body(faq.id), f"Bearer {secret}")

    assert response.status_code == 403
    assert response.json()["error_code"] == 1002
    assert response.json()["error_msg"].startswith("Authorization failed: This API token expired on ")


def test_a_completion_token_is_refused_with_1002(client, admin, faq):
    response = retrieve(client, dify_body(faq.id), f"Bearer {token_for(admin, ApiToken.Scope.COMPLETION)}")

    assert (response.status_code, response.json()) == (403, {
        "error_code": 1002, "error_msg": "Authorization failed: This token's scope (completion) does not cover "
                                         "this API; create a token with the 'retrieval' scope."})


def test_a_full_api_token_may_retrieve_too(client, admin, faq):
    response = retrieve(client, dify_body(faq.id), f"Bearer {token_for(admin, ApiToken.Scope.API)}")

    assert (response.status_code, titles(response)[0]) == (200, "Where is my order?")


@pytest.mark.parametrize("path", ["/api/customer-service/v1/knowledge-bases/", "/api/customer-service/v1/status"])
def test_a_retrieval_token_reaches_nothing_else(client, admin, path):
    response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token_for(admin)}")

    assert response.status_code == 403
    assert response.json()["detail"] == ("This token's scope (retrieval) does not cover this API; create a token "
                                         "with the 'api' scope.")


def test_a_retrieval_token_may_not_ask_for_code_completions(client, admin):
    response = client.post("/api/codegen/v1/events", {"type": "view", "completion_id": "cmpl-nope"},
                           HTTP_AUTHORIZATION=f"Bearer {token_for(admin)}")

    assert response.status_code == 403


@pytest.mark.parametrize("knowledge_id", ["999999", "abc", "-1", "1" * 40])
def test_an_unknown_knowledge_id_is_2001(client, agent, faq, knowledge_id):
    response = retrieve(client, dify_body(knowledge_id), f"Bearer {token_for(agent)}")

    assert (response.status_code, response.json()) == (404, {"error_code": 2001,
                                                             "error_msg": "The knowledge does not exist."})


def test_a_knowledge_base_the_users_role_may_not_read_is_2001_as_if_absent(client, developer, faq):
    response = retrieve(client, dify_body(faq.id), f"Bearer {token_for(developer)}")

    assert (response.status_code, response.json()["error_code"]) == (404, 2001)


def test_a_knowledge_base_not_indexed_yet_has_no_records(client, agent, kb):
    response = retrieve(client, dify_body(kb.id), f"Bearer {token_for(agent)}")

    assert (response.status_code, response.json()) == (200, {"records": []})


def test_an_extra_field_and_a_null_metadata_condition_are_accepted(client, agent, faq):
    body = dify_body(faq.id, metadata_condition=None, user="dify-user")

    response = retrieve(client, body, f"Bearer {token_for(agent)}")

    assert (response.status_code, titles(response)[0]) == (200, "Where is my order?")


def condition(*conditions, logical_operator="and") -> dict:
    return {"logical_operator": logical_operator,
            "conditions": [{"name": name, "comparison_operator": operator, "value": value}
                           for name, operator, value in conditions]}


@pytest.mark.parametrize("metadata_condition,expected", [
    (condition(("tags", "contains", "billing")), ["How do I pay for an order?", "Can I get a refund for an order?"]),
    (condition(("tags", "contains", "BILLING"), ("tags", "contains", "orders")), ["Can I get a refund for an order?"]),
    (condition(("tags", "not contains", "billing")), ["Where is my order?"]),
    (condition(("tags", "contains", "orders"), ("tags", "contains", "billing"), logical_operator="or"),
     ["Where is my order?", "How do I pay for an order?", "Can I get a refund for an order?"]),
    (condition(("tags", "in", ["billing", "shipping"])), ["How do I pay for an order?",
                                                          "Can I get a refund for an order?"]),
    (condition((["tags"], "empty", None)), []),  # the only untagged entry does not match the query
    (condition(("tags", "contains", "no-such-tag")), []),
    ({"conditions": []}, ["Where is my order?", "How do I pay for an order?", "Can I get a refund for an order?"]),
])
def test_metadata_conditions_filter_by_tags(client, agent, faq, metadata_condition, expected):
    body = dify_body(faq.id, query="order", metadata_condition=metadata_condition)

    response = retrieve(client, body, f"Bearer {token_for(agent)}")

    assert response.status_code == 200
    assert sorted(titles(response)) == sorted(expected)


def test_a_tag_filter_finds_the_best_allowed_entry_however_low_it_ranks_unfiltered(client, agent, faq):
    body = dify_body(faq.id, query="where is my order abroad", top_k=1,
                     metadata_condition=condition(("tags", "empty", None)))

    response = retrieve(client, body, f"Bearer {token_for(agent)}")

    assert titles(response) == ["Do you ship abroad?"]


@pytest.mark.parametrize("metadata_condition,message", [
    (condition(("category", "is", "faq")), "Filtering by metadata ['category'] is not supported; only 'tags' is."),
    (condition(("tags", "start with", "bill")),
     "The comparison operator 'start with' is not supported for tags; use one of: contains, not contains, in, "
     "not in, empty, not empty."),
    (condition(("tags", "contains", 3)),
     "The 'contains' condition on tags needs a tag or a list of tags as its value."),
    (condition(("tags", "contains", "billing"), logical_operator="xor"),
     'metadata_condition.logical_operator: "xor" is not a valid choice.'),
    ({"logical_operator": "and"}, "metadata_condition.conditions: This field is required."),
])
def test_an_unsupported_metadata_condition_is_a_400_naming_it(client, agent, faq, metadata_condition, message):
    response = retrieve(client, dify_body(faq.id, metadata_condition=metadata_condition),
                        f"Bearer {token_for(agent)}")

    assert (response.status_code, response.json()) == (400, {"error_code": 3001, "error_msg": message})


@pytest.mark.parametrize("body,content_type,status", [
    ("{not json", "application/json", 400),
    ([1, 2], "application/json", 400),
    ({"query": "x"}, "application/json", 400),
    ("query=x", "application/x-www-form-urlencoded", 415),
])
def test_a_malformed_request_is_a_4xx_in_difys_shape(client, agent, faq, body, content_type, status):
    response = retrieve(client, body, f"Bearer {token_for(agent)}", content_type=content_type)

    assert response.status_code == status
    assert set(response.json()) == {"error_code", "error_msg"}
    assert response.json()["error_code"] == 3001


def test_an_empty_query_is_a_400(client, agent, faq):
    response = retrieve(client, dify_body(faq.id, query=""), f"Bearer {token_for(agent)}")

    assert (response.status_code, response.json()) == (400, {"error_code": 3001,
                                                             "error_msg": "query: The query is empty."})


def test_the_retrieval_scope_is_offered_when_creating_a_token(client, admin):
    client.force_login(admin)

    page = client.get("/console/tokens/")
    created = client.post("/api/accounts/v1/tokens/create", {"name": "dify", "scope": "retrieval"})

    assert '<option value="retrieval">Knowledge retrieval (Dify)</option>' in page.content.decode()
    assert (created.status_code, created.json()["scope"]) == (201, "retrieval")


@pytest.mark.slow
def test_with_embeddings_a_paraphrase_finds_its_entry_and_an_unrelated_query_stays_under_a_threshold(
        client, agent, demo_kb):
    token = f"Bearer {token_for(agent)}"

    paraphrase = retrieve(client, dify_body(demo_kb.id, query="I want to cancel the order I just placed"), token)
    filtered = retrieve(client, dify_body(demo_kb.id, query="I want to cancel the order I just placed",
                                          metadata_condition=condition(("tags", "contains", "stock"))), token)
    unrelated = retrieve(client, dify_body(demo_kb.id, query="Who painted the Mona Lisa?", score_threshold=0.5),
                         token)

    assert titles(paraphrase)[0] == "How do I cancel my order?"
    assert 0.5 < paraphrase.json()["records"][0]["score"] <= 1.0
    assert titles(filtered) and all("stock" in record["metadata"]["tags"] for record in filtered.json()["records"])
    assert unrelated.json() == {"records": []}
