"""What Tabby's IDE agents ask besides completions: health, server settings, plain-text languages, and
repositories named by either form of their git remote."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.codegen.git_urls import git_remote_key
from apps.codegen.models import Completion, Repository
from apps.codegen.postprocess import syntax_guard
from apps.codegen.selectors import repository_for_completion
from tests.codegen.test_completion_api import tabby_request

HEALTH = "/api/codegen/v1/health"
SERVER_SETTING = "/api/codegen/v1beta/server_setting"

@pytest.fixture
def health_server(settings):
    """A model_service stand-in answering /health as model_service does, serving checkpoint "demo-moe"."""
    body = json.dumps({"status": "ok", "checkpoint": {"name": "demo-moe"}, "device": "cpu"}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.MODEL_SERVICE_URL = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()
    server.server_close()


def test_health_names_the_served_checkpoint_in_tabbys_shape(client, bearer, health_server):
    response = client.get(HEALTH, **bearer)

    assert response.status_code == 200
    health = response.json()
    assert health["model"] == "demo-moe"
    assert health["device"] == "cpu"
    assert isinstance(health["arch"], str) and health["arch"]
    assert isinstance(health["cpu_count"], int) and health["cpu_count"] >= 1
    assert isinstance(health["cpu_info"], str)
    assert health["cuda_devices"] == []
    assert set(health["version"]) == {"build_date", "build_timestamp", "git_sha", "git_describe"}
    assert health["version"]["git_describe"] == "v1.0.0"


def test_health_answers_post_as_tabbys_older_agents_ask(client, bearer, health_server):
    response = client.post(HEALTH, **bearer)

    assert response.status_code == 200
    assert response.json()["model"] == "demo-moe"


def test_health_says_why_there_is_no_model_when_model_service_is_down(client, bearer, settings):
    settings.MODEL_SERVICE_URL = "http://127.0.0.1:9"

    response = client.get(HEALTH, **bearer)

    assert response.status_code == 200
    assert response.json()["model"] == "unavailable (model_service unreachable)"
    assert response.json()["device"] == "unknown"


def test_server_setting_leaves_client_side_telemetry_on(client, bearer):
    response = client.get(SERVER_SETTING, **bearer)

    assert response.status_code == 200
    assert response.json() == {"disable_client_side_telemetry": False}


@pytest.mark.parametrize("url", [HEALTH, SERVER_SETTING])
def test_health_and_server_setting_need_a_token(client, db, url):
    response = client.get(url)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()


@pytest.mark.parametrize("language", ["cobol", "", None])
def test_a_missing_or_unknown_language_is_no_422_but_goes_on_as_plain_text(client, bearer, settings, language):
    settings.MODEL_SERVICE_URL = "http://127.0.0.1:9"
    body = tabby_request("x = ")
    if language is None:
        del body["language"]
    else:
        body["language"] = language

    response = client.post("/api/codegen/v1/completions", body, content_type="application/json", **bearer)

    assert response.status_code == 503  # past validation: only the (absent) model stops it


def test_plain_text_has_no_syntax_guard():
    result = syntax_guard("unbalanced ( [ {", language="plaintext", prefix="text: ", suffix="")

    assert (result.text, result.action) == ("unbalanced ( [ {", "accepted")


@pytest.mark.slow
def test_an_unknown_language_is_completed_as_plain_text(client, bearer, settings, transformers_server):
    settings.MODEL_SERVICE_URL = transformers_server.url

    response = client.post("/api/codegen/v1/completions", tabby_request("Dear team,\n", language="cobol"),
                           content_type="application/json", **bearer)

    assert response.status_code == 200
    assert Completion.objects.get(id=response.json()["id"]).language == "plaintext"


@pytest.mark.parametrize("url", ["git@github.com:org/repo.git", "https://github.com/org/repo",
                                 "https://github.com/org/repo.git", "ssh://git@github.com/org/repo.git",
                                 "https://GitHub.com/org/repo/"])
def test_the_ssh_and_https_forms_of_a_remote_have_one_key(url):
    assert git_remote_key(url) == "github.com/org/repo"


def test_a_different_repository_has_another_key():
    assert git_remote_key("git@github.com:org/other.git") != git_remote_key("https://github.com/org/repo")


def test_a_repository_registered_by_https_is_found_by_its_ssh_remote(developer):
    repository = Repository.objects.create(name="repo", path="/x", git_url="https://github.com/org/repo",
                                           created_by=developer)

    assert repository_for_completion(user=developer, git_url="git@github.com:org/repo.git") == repository
    assert repository_for_completion(user=developer, git_url="git@github.com:org/other.git") is None
