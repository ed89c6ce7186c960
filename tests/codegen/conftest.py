import json
import shutil
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from apps.accounts.roles import Role
from apps.accounts.services import api_token_create
from apps.codegen.models import Repository
from apps.codegen.services import repository_index
from tests.users import user_fixture

DEMO_REPOSITORY = Path("apps/codegen/demo/repository").resolve()

developer = user_fixture("dev", Role.DEVELOPER)


@pytest.fixture
def bearer(developer):
    """An IDE (completion-scope) token of the developer, as an Authorization header."""
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(user=developer, name='ide').secret}"}


@pytest.fixture(autouse=True)
def suite_data_dir(settings, tmp_path):
    settings.SUITE_DATA_DIR = tmp_path / "data"


@pytest.fixture
def repository_copy(tmp_path) -> Path:
    target = tmp_path / "repository"
    shutil.copytree(DEMO_REPOSITORY, target)
    return target


@pytest.fixture
def indexed_repository(db, repository_copy) -> Repository:
    repository = Repository.objects.create(name="inventory", path=str(repository_copy),
                                           git_url="https://git.example/inventory.git", shared=True)
    repository_index(repository_id=repository.id)
    repository.refresh_from_db()
    return repository


@dataclass
class ScriptedModelService:
    """A model_service stand-in that completes every prompt with `text` and keeps the request bodies."""

    url: str
    text: str
    requests: list[dict] = field(default_factory=list)


@pytest.fixture
def scripted_model_service(settings):
    """model_service's /v1/models and /v1/completions, answering "0" to every prompt (no model runs)."""
    service = ScriptedModelService(url="", text="0")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self._answer({"object": "list", "data": [{"id": "demo-moe", "object": "model"}]})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            service.requests.append(body)
            self._answer({"id": "cmpl-scripted", "object": "text_completion", "model": "demo-moe",
                          "choices": [{"index": 0, "text": service.text, "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

        def _answer(self, payload):
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    service.url = settings.MODEL_SERVICE_URL = f"http://127.0.0.1:{server.server_port}"
    yield service
    server.shutdown()
    server.server_close()
