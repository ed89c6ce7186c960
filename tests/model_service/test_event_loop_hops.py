"""What keeps time to first token low under load: no thread hop a request does not need, no middleware
that wraps each streamed chunk. Structure only; benchmarks/serving.py measures the latency."""
import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
from starlette.middleware.base import BaseHTTPMiddleware

from model_service.admission import Ticket
from model_service.api.app import create_app
from model_service.backends.vllm_backend import VllmBackend
from model_service.checkpoint import Checkpoint
from model_service.config import ServiceConfig
from model_service.protocol import GenerationRequest, SamplingOptions


class RecordingEngine:
    """Stands in for vLLM's AsyncLLM: records what `generate` is handed, answers one token."""

    def __init__(self):
        self.prompts = []

    async def generate(self, prompt, params, request_id):
        self.prompts.append(prompt)
        yield SimpleNamespace(outputs=[SimpleNamespace(index=0, text="x", token_ids=[7], logprobs=None,
                                                       finish_reason="length")])


def test_the_vllm_backend_hands_the_engine_a_rendered_token_input(tiny_checkpoint):
    """AsyncLLM.add_request sends a raw prompt (a TokensPrompt) through its renderer's thread pool and takes
    a rendered input, a dict with a "type", as it is: the prompt is already tokens, so no hop."""
    backend = VllmBackend(Checkpoint.load(tiny_checkpoint))
    backend.engine = RecordingEngine()
    request = GenerationRequest("r1", [3, 4, 5], SamplingOptions(max_tokens=1, temperature=0.0))

    async def scenario():
        return [deltas async for deltas in backend.generate(request)]

    with ThreadPoolExecutor(max_workers=1) as pool:
        outputs = pool.submit(asyncio.run, scenario()).result()

    assert backend.engine.prompts == [{"type": "token", "prompt_token_ids": [3, 4, 5]}]
    assert [[(d.text, d.token_ids, d.finish_reason) for d in deltas] for deltas in outputs] == [[("x", [7], "length")]]


def test_every_middleware_is_plain_asgi():
    """Starlette's BaseHTTPMiddleware passes each chunk of a streamed response through a memory stream and
    a task of its own; plain ASGI middleware hands `send` straight on."""
    app = create_app(ServiceConfig(checkpoint=Path("/unused"), embeddings=False))

    classes = [middleware.cls for middleware in app.user_middleware]

    assert len(classes) == 3
    assert not any(issubclass(cls, BaseHTTPMiddleware) for cls in classes)


def test_a_streamed_completion_releases_its_slot_only_on_the_event_loop(tiny_checkpoint, monkeypatch):
    """The stream frees its slot as it ends; the response's background task only covers a stream that never
    ran, and must not cost a hop to a worker thread (Starlette runs a plain function there)."""
    app = create_app(ServiceConfig(checkpoint=tiny_checkpoint, backend="transformers", embeddings=False))
    state = app.state.service
    release, threads = Ticket.release, []

    def recording_release(ticket):
        threads.append(threading.current_thread().name)
        release(ticket)

    monkeypatch.setattr(Ticket, "release", recording_release)

    async def scenario():
        await state.start()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://model-service") as client:
            response = await client.post("/v1/completions", json={"prompt": "x", "max_tokens": 2, "stream": True})
        await state.stop()
        return threading.current_thread().name, response

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="event-loop") as pool:
        loop_thread, response = pool.submit(asyncio.run, scenario()).result()

    assert response.text.endswith("data: [DONE]\n\n")
    assert threads and set(threads) == {loop_thread}
    assert state.admission.running == 0
