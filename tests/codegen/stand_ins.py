"""Stand-ins for model_service in codegen tests that check what the suite sends it, not what a model
writes (tests/tabby_agent uses them too)."""
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class ScriptedModelService:
    """A model_service stand-in that completes every prompt with `text` and keeps the request bodies."""

    url: str
    text: str
    requests: list[dict] = field(default_factory=list)
    models_asked: int = 0  # GET /v1/models calls
    delay_s: float = 0.0  # how long each completion takes to answer


@pytest.fixture
def scripted_model_service(settings):
    """model_service's /v1/models and /v1/completions, answering "0" to every prompt (no model runs)."""
    service = ScriptedModelService(url="", text="0")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            service.models_asked += 1
            self._answer({"object": "list", "data": [{"id": "demo-moe", "object": "model"}]})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            service.requests.append(body)
            time.sleep(service.delay_s)
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

        def handle_one_request(self):
            try:
                super().handle_one_request()
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    service.url = settings.MODEL_SERVICE_URL = f"http://127.0.0.1:{server.server_port}"
    yield service
    server.shutdown()
    server.server_close()
