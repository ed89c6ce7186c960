import time

import pytest

from apps.accounts.roles import Role
from apps.accounts.services import api_token_create, user_create
from apps.codegen.models import Completion, Repository
from apps.codegen.parsing import error_count

URL = "/api/codegen/v1/completions"


@pytest.fixture
def model_service(settings, transformers_server):
    """The plain-PyTorch backend (test settings lift the single line's deadline: it is slower on a busy machine)."""
    settings.MODEL_SERVICE_URL = transformers_server.url
    return transformers_server


def tabby_request(prefix: str, suffix: str = "", language: str = "python", **extra) -> dict:
    return {"language": language, "segments": {"prefix": prefix, "suffix": suffix, "filepath": "inventory/new.py",
                                              "git_url": "https://git.example/inventory.git"}, **extra}


@pytest.mark.slow
def test_a_tabby_request_gets_a_tabby_response_with_cross_file_context(client, bearer, model_service,
                                                                       indexed_repository):
    body = tabby_request("from inventory.models import format_price\n\n\ndef label(product):\n    return format_price(",
                         ")\n", debug_options={"return_snippets": True, "return_prompt": True})

    response = client.post(URL, body, content_type="application/json", **bearer)

    data = response.json()
    assert response.status_code == 200
    assert data["id"].startswith("cmpl-")
    assert [choice["index"] for choice in data["choices"]] == [0]
    snippets = data["debug_data"]["snippets"]
    assert snippets[0]["filepath"] == "inventory/models.py"
    assert snippets[0]["body"].startswith("def format_price(price_cents: int, currency: str = \"EUR\") -> str:")
    assert data["debug_data"]["prompt"].startswith("# Path: inventory/models.py\n# def format_price(")
    assert set(data["debug_data"]["timings"]) == {"retrieval_ms", "matching_ms", "scoring_ms", "model_ms", "postprocess_ms",
                                                 "total_ms"}


@pytest.mark.slow
@pytest.mark.parametrize("language,prefix,suffix", [
    ("python", "def mean(xs):\n    ", "\n"),
    ("python", "class Cart:\n    def total(self):\n        return sum(", ")\n"),
    ("javascript", "function add(a, b) {\n  ", "\n}\n"),
    ("java", "class A {\n  int twice(int x) {\n    return ", ";\n  }\n}\n"),
    ("go", "package main\n\nfunc Max(a, b int) int {\n\t", "\n}\n"),
    ("rust", "fn square(x: i32) -> i32 {\n    ", "\n}\n"),
])
def test_the_served_completion_never_adds_syntax_errors(client, bearer, model_service, language, prefix, suffix):
    response = client.post(URL, tabby_request(prefix, suffix, language=language, seed=1,
                                              debug_options={"return_snippets": True}),
                           content_type="application/json", **bearer)

    text = response.json()["choices"][0]["text"]
    assert response.status_code == 200
    assert error_count(language, prefix + text + suffix) <= error_count(language, prefix + suffix)
    assert response.json()["debug_data"]["guard"]  # says what happened to each candidate


@pytest.mark.slow
def test_a_greedy_request_asks_the_model_for_one_candidate(client, bearer, model_service):
    response = client.post(URL, tabby_request("def mean(xs):\n    ", "\n", temperature=0,
                                              debug_options={"return_snippets": True}),
                           content_type="application/json", **bearer)

    assert response.status_code == 200
    assert len(response.json()["debug_data"]["guard"]) == 1  # sampled candidates would all be the same text


@pytest.mark.slow
def test_a_file_longer_than_the_model_context_is_windowed_around_the_cursor(client, bearer, model_service):
    # hexadecimal constants tokenize into many tokens: 4,000 characters of them overflow the model's context
    prefix = "".join(f"K{i} = 0x{(i * 2654435761) % 2**32:08x}\n" for i in range(2000)) + "def f():\n    "
    suffix = "\n" + "".join(f"J{i} = 0x{(i * 40503) % 2**32:08x}\n" for i in range(2000))

    response = client.post(URL, tabby_request(prefix, suffix, debug_options={"return_prompt": True}),
                           content_type="application/json", **bearer)

    debug = response.json()["debug_data"]
    assert response.status_code == 200
    assert debug["prompt_scale"] < 1
    assert debug["prompt"].endswith("K1999 = 0x" + f"{(1999 * 2654435761) % 2**32:08x}\ndef f():\n    ")
    assert len(debug["prompt"]) < 4_000


@pytest.mark.slow
def test_the_native_flat_shape_works_too(client, bearer, model_service):
    response = client.post(URL, {"language": "py", "prefix": "x = ", "suffix": "\n"}, content_type="application/json",
                           **bearer)

    assert response.status_code == 200
    assert Completion.objects.get(id=response.json()["id"]).language == "python"


def test_a_missing_prefix_is_a_422(client, bearer):
    response = client.post(URL, {"language": "python", "segments": {"suffix": "x"}}, content_type="application/json",
                           **bearer)

    assert response.status_code == 422
    assert "prefix" in response.json()["detail"]


def test_a_body_that_is_not_a_json_object_is_a_422(client, bearer):
    response = client.post(URL, [None, None], content_type="application/json", **bearer)

    assert response.status_code == 422
    assert response.json()["detail"] == "The body must be a JSON object (Tabby's completion request)."


def test_oversized_segments_are_a_413(client, bearer):
    response = client.post(URL, tabby_request("x" * 100_001), content_type="application/json", **bearer)

    assert response.status_code == 413


def test_without_model_service_the_answer_is_a_fast_503(client, bearer, settings):
    settings.MODEL_SERVICE_URL = "http://127.0.0.1:9"

    started = time.monotonic()
    response = client.post(URL, tabby_request("def f():\n    "), content_type="application/json", **bearer)

    assert response.status_code == 503
    assert response.json()["detail"].startswith("The model service is unavailable")
    assert time.monotonic() - started < 5


def test_a_single_line_the_model_is_too_slow_for_is_an_empty_completion(client, bearer, scripted_model_service,
                                                                       settings):
    settings.CODEGEN_SINGLE_LINE_MODEL_DEADLINE_S = 0.3
    scripted_model_service.delay_s = 3.0
    body = tabby_request("total = price * ", "\n", debug_options={"return_snippets": True})

    response = client.post(URL, body, content_type="application/json", **bearer)

    data = response.json()
    assert (response.status_code, data["choices"][0]["text"]) == (200, "")
    assert (data["debug_data"]["model_called"], data["debug_data"]["model_timed_out"]) == (True, True)
    assert Completion.objects.get(id=data["id"]).guard == "model-too-slow"


def test_a_single_line_the_model_answers_in_time_is_served(client, bearer, scripted_model_service, settings):
    settings.CODEGEN_SINGLE_LINE_MODEL_DEADLINE_S = 5.0
    scripted_model_service.text = "quantity"
    body = tabby_request("total = price * ", "\n", debug_options={"return_snippets": True})

    data = client.post(URL, body, content_type="application/json", **bearer).json()

    assert (data["choices"][0]["text"], data["debug_data"]["model_timed_out"]) == ("quantity", False)


def test_other_roles_and_anonymous_clients_are_refused(client, db):
    clinician = user_create(username="doc", password="pw-doc-12345", role=Role.CLINICIAN)
    token = api_token_create(user=clinician, name="x").secret

    assert client.post(URL, tabby_request("x"), content_type="application/json").status_code == 401
    assert client.post(URL, tabby_request("x"), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 403


def test_events_are_stored_per_completion_and_give_the_acceptance_rate(client, bearer, developer):
    shown = [Completion.objects.create(user=developer, language="python", text=f"x{i}") for i in range(4)]
    for completion in shown:
        client.post("/api/codegen/v1/events", {"type": "view", "completion_id": completion.id}, **bearer)
    client.post("/api/codegen/v1/events", {"type": "select", "completion_id": shown[0].id}, **bearer)
    client.post("/api/codegen/v1/events", {"type": "dismiss", "completion_id": shown[1].id}, **bearer)
    unknown = client.post("/api/codegen/v1/events", {"type": "view", "completion_id": "cmpl-nope"}, **bearer)

    client.force_login(developer)  # an IDE token's scope covers completions and events, not the stats
    stats = client.get("/api/codegen/v1/stats").json()

    assert unknown.status_code == 400
    assert (stats["served"], stats["shown"], stats["accepted"], stats["dismissed"]) == (4, 4, 1, 1)
    assert stats["acceptance_rate"] == 0.25


def test_a_completion_naming_a_repository_the_caller_may_not_read_is_a_404(client, bearer, db):
    owner = user_create(username="owner", password="pw-owner-12345", role=Role.DEVELOPER)
    private = Repository.objects.create(name="private", path="/nowhere", created_by=owner)

    response = client.post(URL, {**tabby_request("x = "), "repository": private.id}, content_type="application/json",
                           **bearer)

    assert response.status_code == 404
    assert response.json()["detail"] == "No repository with this id."


@pytest.mark.slow
def test_another_developers_private_repository_never_gives_context_or_snippets(client, bearer, developer,
                                                                               model_service, indexed_repository):
    owner = user_create(username="owner", password="pw-owner-12345", role=Role.DEVELOPER)
    Repository.objects.filter(id=indexed_repository.id).update(created_by=owner, shared=False)
    body = tabby_request("from inventory.models import format_price\n\n\ndef label(product):\n    return format_price(",
                         ")\n", debug_options={"return_snippets": True, "return_prompt": True})

    stranger = client.post(URL, body, content_type="application/json", **bearer).json()
    client.force_login(owner)
    own = client.post(URL, body, content_type="application/json").json()

    assert stranger["debug_data"]["snippets"] == []
    assert "format_price(price_cents" not in stranger["debug_data"]["prompt"]
    assert Completion.objects.get(id=stranger["id"]).repository is None
    assert own["debug_data"]["snippets"][0]["filepath"] == "inventory/models.py"


def test_events_on_another_users_completion_are_refused(client, bearer):
    owner = user_create(username="owner", password="pw-owner-12345", role=Role.DEVELOPER)
    theirs = Completion.objects.create(user=owner, language="python", text="x")

    response = client.post("/api/codegen/v1/events", {"type": "select", "completion_id": theirs.id}, **bearer)

    assert response.status_code == 400
    assert not theirs.events.exists()
