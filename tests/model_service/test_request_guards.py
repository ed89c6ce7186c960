"""The HTTP layer's guards, on the ASGI app in this process: 503 while loading, the body size limit,
tokenization off the event loop, admission before tokenizing, the adapters folder."""
import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from model_service.api.app import create_app
from model_service.api.state import ServiceState
from model_service.checkpoint import Checkpoint
from model_service.config import ServiceConfig
from model_service.errors import InvalidRequest

OPENAI_ERROR_KEYS = {"message", "type", "param", "code"}


def run(coroutine):
    """asyncio.run on a thread of its own: Playwright's sync API may hold this thread's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def client_for(app) -> httpx.AsyncClient:
    """A client of the app; the app's lifespan does not run, so the model stays 'starting'."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://model-service")


async def call_raw(app, *, chunks: list[bytes], headers: list[tuple[bytes, bytes]] = ()) -> tuple[dict, int]:
    """Send a POST whose body arrives in `chunks`; returns the response and how many chunks were read."""
    sent, response = [], {}

    async def receive():
        if len(sent) == len(chunks):
            await asyncio.Event().wait()  # the client holds the connection open
        sent.append(chunks[len(sent)])
        return {"type": "http.request", "body": sent[-1], "more_body": len(sent) < len(chunks)}

    async def send(message):
        if message["type"] == "http.response.start":
            response["status"] = message["status"]
        elif message["type"] == "http.response.body":
            response["body"] = response.get("body", b"") + message.get("body", b"")

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/completions", "raw_path": b"/v1/completions", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), *headers], "client": ("127.0.0.1", 1),
             "server": ("model-service", 80)}
    await app(scope, receive, send)
    return response, len(sent)


def test_generation_routes_answer_503_with_retry_after_while_the_model_loads():
    app = create_app(ServiceConfig(checkpoint=Path("/not-loaded-yet"), embeddings=False))

    async def scenario():
        async with client_for(app) as client:
            return [await client.post("/v1/completions", json={"prompt": "x"}),
                    await client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}),
                    await client.get("/v1/models"),
                    await client.get("/health")]

    *routes, health = run(scenario())

    for response in routes:
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert response.json() == {"error": {"message": "The model is still loading; try again shortly.",
                                             "type": "service_unavailable", "param": None, "code": "model_loading"}}
    assert health.status_code == 503 and health.json()["status"] == "starting"


def test_a_model_that_failed_to_load_answers_503_without_retry_after():
    app = create_app(ServiceConfig(checkpoint=Path("/no-such-checkpoint"), embeddings=False))
    state: ServiceState = app.state.service

    async def scenario():
        await state.start()
        async with client_for(app) as client:
            return await client.post("/v1/completions", json={"prompt": "x"})

    response = run(scenario())

    assert response.status_code == 503
    assert "Retry-After" not in response.headers
    assert response.json()["error"]["message"].startswith("The model failed to load: FileNotFoundError")


def test_a_body_over_the_limit_is_refused_while_it_arrives():
    app = create_app(ServiceConfig(checkpoint=Path("/unused"), embeddings=False, max_request_bytes=1000))

    response, chunks_read = run(call_raw(app, chunks=[b"x" * 400] * 50))

    assert response["status"] == 413
    assert chunks_read == 3  # 1,200 bytes: refused there, the other 47 chunks never read
    assert json.loads(response["body"]) == {"error": {
        "message": "The request body is larger than this server's limit of 1000 bytes.",
        "type": "invalid_request_error", "param": None, "code": "request_too_large"}}


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    app = create_app(ServiceConfig(checkpoint=Path("/unused"), embeddings=False, max_request_bytes=1000))

    response, chunks_read = run(call_raw(app, chunks=[b"x" * 400] * 50, headers=[(b"content-length", b"20000")]))

    assert response["status"] == 413
    assert chunks_read == 0


def test_a_body_within_the_limit_reaches_the_route():
    app = create_app(ServiceConfig(checkpoint=Path("/unused"), embeddings=False, max_request_bytes=1000))
    body = json.dumps({"prompt": "x" * 900}).encode()

    response, chunks_read = run(call_raw(app, chunks=[body[:500], body[500:]]))

    assert response["status"] == 503  # past the limit, on to the route (the model is not loaded)
    assert chunks_read == 2


def test_the_default_body_limit_is_4_mib():
    assert ServiceConfig(checkpoint=Path("/unused")).max_request_bytes == 4 * 1024 * 1024


@pytest.fixture
def serving_app(tiny_checkpoint):
    """The app with the transformers backend started in this process; the body runs in `run`."""
    return create_app(ServiceConfig(checkpoint=tiny_checkpoint, backend="transformers", embeddings=False,
                                    max_running=1, max_waiting=0))


def test_tokenizing_a_prompt_does_not_block_the_event_loop(serving_app, monkeypatch):
    state: ServiceState = serving_app.state.service
    entered, release, tokenized = threading.Event(), threading.Event(), threading.Event()
    encode = Checkpoint.encode

    def slow_encode(checkpoint, text):
        entered.set()
        release.wait(timeout=20)
        tokenized.set()
        return encode(checkpoint, text)

    monkeypatch.setattr(Checkpoint, "encode", slow_encode)

    async def scenario():
        await state.start()
        async with client_for(serving_app) as client:
            completion = asyncio.create_task(client.post("/v1/completions", json={"prompt": "x", "max_tokens": 2}))
            await asyncio.to_thread(entered.wait, 20)
            health = await client.get("/health")
            tokenized_when_health_answered = tokenized.is_set()
            release.set()
            return health, tokenized_when_health_answered, await completion

    health, tokenized_when_health_answered, completion = run(scenario())

    assert health.status_code == 200
    assert tokenized_when_health_answered is False  # the loop answered while the prompt was being tokenized
    assert completion.json()["usage"]["completion_tokens"] == 2


def test_a_full_queue_refuses_before_tokenizing(serving_app, monkeypatch):
    state: ServiceState = serving_app.state.service
    tokenized = []
    monkeypatch.setattr(Checkpoint, "encode", lambda checkpoint, text: tokenized.append(text) or [5])

    async def scenario():
        await state.start()
        held = await state.admission.acquire()  # the one running slot; no room to wait
        async with client_for(serving_app) as client:
            response = await client.post("/v1/completions", json={"prompt": "a long prompt", "max_tokens": 2})
        held.release()
        return response

    response = run(scenario())

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "queue_full"
    assert tokenized == []


# --- the adapters folder -----------------------------------------------------------------------

def adapter_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text("{}")
    return path


@pytest.fixture
def adapters(tmp_path) -> ServiceState:
    adapter_folder(tmp_path / "adapters" / "shop" / "v1")
    return ServiceState(ServiceConfig(checkpoint=Path("/unused"), embeddings=False,
                                      adapters_dir=tmp_path / "adapters"))


def refusal(state: ServiceState, path: str) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as refused:
        state.adapter_path(path)
    return refused.value


def test_adapters_load_from_inside_the_folder_by_absolute_or_relative_path(adapters, tmp_path):
    inside = (tmp_path / "adapters" / "shop" / "v1").resolve()

    assert adapters.adapter_path(str(tmp_path / "adapters" / "shop" / "v1")) == inside
    assert adapters.adapter_path("shop/v1") == inside


def test_a_path_outside_the_folder_is_refused_alike_whether_it_exists_or_not(adapters, tmp_path):
    adapter_folder(tmp_path / "elsewhere")
    refusals = [refusal(adapters, path) for path in
                (str(tmp_path / "elsewhere"), "/etc", "/no/such/folder", "../elsewhere", "shop/../../elsewhere",
                 "bad\x00byte")]

    assert {(r.message, r.param, r.code, r.status) for r in refusals} == {
        ("lora_path must name a folder inside the adapters folder.", "lora_path", "adapter_path_refused", 400)}


def test_a_symlink_out_of_the_folder_is_refused(adapters, tmp_path):
    outside = adapter_folder(tmp_path / "outside")
    (tmp_path / "adapters" / "link").symlink_to(outside)
    leaky = tmp_path / "adapters" / "leaky"
    leaky.mkdir()
    (leaky / "adapter_config.json").symlink_to(outside / "adapter_config.json")

    assert refusal(adapters, "link").code == "adapter_path_refused"
    assert refusal(adapters, "leaky").code == "adapter_path_refused"


def test_a_folder_without_an_adapter_is_refused_naming_it(adapters, tmp_path):
    (tmp_path / "adapters" / "empty").mkdir()

    error = refusal(adapters, "empty")

    assert error.message == "empty in the adapters folder holds no adapter_config.json."
    assert error.param == "lora_path"


def test_without_an_adapters_folder_no_adapter_loads(tmp_path):
    state = ServiceState(ServiceConfig(checkpoint=Path("/unused"), embeddings=False))

    assert refusal(state, str(adapter_folder(tmp_path / "shop"))).code == "adapters_disabled"


def test_a_chat_template_that_refuses_the_messages_is_a_400(tiny_checkpoint):
    checkpoint = Checkpoint.load(tiny_checkpoint)
    checkpoint.tokenizer.chat_template = "{{ raise_exception('Conversation roles must alternate') }}"

    with pytest.raises(InvalidRequest) as refused:
        checkpoint.encode_chat([{"role": "user", "content": "hi"}])

    assert refused.value.param == "messages"
    assert "Conversation roles must alternate" in refused.value.message
