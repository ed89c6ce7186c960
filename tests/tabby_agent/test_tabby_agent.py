"""Tabby's own IDE agent (npm tabby-agent 1.5.0, as Tabby's editor plugins run it) against the live suite
with model_service on the test checkpoint: over LSP and over its JSON-lines protocol it reports the
server ready, gets completions, and its view/select/dismiss events land in the database."""
import pytest

from apps.accounts.roles import Role
from apps.accounts.services import api_token_create, user_create
from apps.codegen.models import Completion, CompletionEvent, Repository
from tests.codegen.stand_ins import scripted_model_service  # noqa: F401 (a fixture)
from tests.tabby_agent.clients import JsonLinesAgent, LspAgent, agent_config_toml
from tests.users import user_fixture

pytestmark = pytest.mark.slow

developer = user_fixture("dev", Role.DEVELOPER)
DOCUMENT = "def total(prices):\n    result = 0\n    for price in prices:\n        result = result + "
SSH_REMOTE = "git@git.example:shop/inventory.git"  # the repository is registered by its https form


@pytest.fixture
def endpoint(live_server):
    """What a user types as the Tabby server in the IDE: the codegen API's root."""
    return live_server.url + "/api/codegen"


@pytest.fixture
def token(developer):
    return api_token_create(user=developer, name="tabby-agent").secret


@pytest.fixture
def model_service(settings, vllm_server):
    settings.MODEL_SERVICE_URL = vllm_server.url
    return vllm_server


@pytest.fixture
def lsp_agent(tmp_path, endpoint, token):
    """The agent as a language server, configured as its users do: in ~/.tabby-client/agent/config.toml."""
    config = tmp_path / ".tabby-client" / "agent" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(agent_config_toml(endpoint=endpoint, token=token))
    agent = LspAgent(tmp_path)
    yield agent
    agent.stop()


@pytest.fixture
def json_agent(tmp_path):
    agent = JsonLinesAgent(tmp_path)
    yield agent
    agent.stop()


def initialize_json_agent(agent: JsonLinesAgent, *, endpoint: str, token: str) -> bool:
    """Tabby's Vim plugin's way: the server and token in `initialize`'s config."""
    return agent.call("initialize", {
        "config": {"server": {"endpoint": endpoint, "token": token, "requestTimeout": 30000},
                   "anonymousUsageTracking": {"disable": True}},
        "clientProperties": {"session": {"client": "suite-tests", "ide": {"name": "suite-tests", "version": "1"}}}})


def test_over_lsp_the_agent_connects_and_completes_a_document(lsp_agent, model_service, developer, tmp_path):
    uri = (tmp_path / "inventory" / "cart.py").as_uri()

    initialized = lsp_agent.request("initialize", {"processId": None, "rootUri": None, "capabilities": {},
                                                   "clientInfo": {"name": "suite-tests", "version": "1"}})
    lsp_agent.notify("initialized", {})
    lsp_agent.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                               "text": DOCUMENT + "\n    return result\n"}})
    completions = lsp_agent.request("textDocument/completion", {
        "textDocument": {"uri": uri}, "position": {"line": 3, "character": len(DOCUMENT.splitlines()[-1])}})
    lsp_agent.request("shutdown", {})

    assert initialized["serverInfo"] == {"name": "tabby-agent", "version": "1.5.0"}
    assert "completionProvider" in initialized["capabilities"]
    # the agent warns with window/showMessage when it is disconnected or unauthorized
    assert [n for n in lsp_agent.notifications if n["method"] == "window/showMessage"] == []
    served = Completion.objects.get(user=developer)
    assert (served.language, served.guard) == ("python", "accepted")
    assert [item["data"]["completionId"] for item in completions["items"]] == [served.id]
    assert completions["items"][0]["textEdit"]["newText"].strip() == served.text.strip()  # the agent trims spaces


def test_over_json_lines_the_agent_is_ready_completes_and_reports_its_events(json_agent, model_service, endpoint,
                                                                              token, developer):
    repository = Repository.objects.create(name="inventory", path="/nowhere", created_by=developer,
                                           git_url="https://git.example/shop/inventory")
    document = DOCUMENT + "\n    return result\n"

    assert initialize_json_agent(json_agent, endpoint=endpoint, token=token) is True
    status = json_agent.call("getStatus")
    health = json_agent.call("getServerHealthState")
    completion = json_agent.call("provideCompletions", {
        "filepath": "/home/dev/shop/inventory/cart.py", "language": "python", "text": document,
        "position": len(DOCUMENT), "manually": True,
        "git": {"root": "/home/dev/shop", "remotes": [{"name": "origin", "url": SSH_REMOTE}]}})
    event = {"completion_id": completion["id"], "choice_index": 0, "view_id": "view-1"}
    posted = [json_agent.call("postEvent", {"type": "view", **event}),
              json_agent.call("postEvent", {"type": "select", **event, "elapsed": 1250, "select_kind": "line"}),
              json_agent.call("postEvent", {"type": "dismiss", **event, "elapsed": 3000})]

    assert status == "ready"
    assert {"event": "statusChanged", "status": "ready"} in json_agent.events
    assert health["model"] == "tiny-random"
    served = Completion.objects.get(id=completion["id"])
    assert (served.user, served.repository, served.filepath) == (developer, repository, "inventory/cart.py")
    assert [choice["text"].strip() for choice in completion["choices"]] == [served.text.strip()]  # spaces trimmed
    assert posted == [True, True, True]
    assert list(CompletionEvent.objects.filter(completion=served).order_by("id").values_list(
        "type", "choice_index", "view_id", "elapsed", "select_kind")) == [
        ("view", 0, "view-1", None, ""), ("select", 0, "view-1", 1250, "line"), ("dismiss", 0, "view-1", 3000, "")]


@pytest.mark.parametrize("whose", ["nobody's", "a clinician's"])
def test_with_a_token_that_may_not_complete_the_agent_says_unauthorized(json_agent, endpoint, db, whose):
    token = "not-a-token"  # 401
    if whose == "a clinician's":  # a real token of a role without code completion: 403
        token = api_token_create(user=user_create(username="doc", password="pw-doc-12345", role=Role.CLINICIAN),
                                 name="ide").secret

    initialize_json_agent(json_agent, endpoint=endpoint, token=token)

    assert json_agent.call("getStatus") == "unauthorized"
    assert {"event": "statusChanged", "status": "unauthorized"} in json_agent.events


def test_the_agents_declarations_changed_files_and_clipboard_reach_the_prompt(json_agent, scripted_model_service,
                                                                              endpoint, token):
    initialize_json_agent(json_agent, endpoint=endpoint, token=token)
    json_agent.call("provideCompletions", {
        "filepath": "/home/dev/shop/inventory/cart.py", "language": "python", "text": DOCUMENT,
        "position": len(DOCUMENT), "manually": True, "clipboard": "  discount = 0.1  ",
        "git": {"root": "/home/dev/shop", "remotes": [{"name": "origin", "url": SSH_REMOTE}]},
        "declarations": [{"filepath": "/home/dev/shop/inventory/models.py", "offset": 0,
                          "text": "def price(product): ..."}],
        "relevantSnippetsFromChangedFiles": [{"filepath": "/home/dev/shop/inventory/tax.py", "offset": 40,
                                              "text": "VAT = 0.2", "score": 0.8}]})

    assert scripted_model_service.requests[-1]["prompt"] == (
        "# Path: inventory/models.py\n# def price(product): ...\n"
        "# Path: inventory/tax.py\n# VAT = 0.2\n"
        "# Clipboard:\n# discount = 0.1\n" + DOCUMENT)
