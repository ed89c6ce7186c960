"""apps.core.model_client against a real model_service, and against none."""
import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from apps.core.model_client import ModelServiceClient, ModelServiceRejected, ModelServiceUnavailable
from model_service.ports import free_port


def awaited(coroutine):
    """The coroutine's result, from asyncio.run on a thread of its own (Playwright's sync API may hold this
    thread's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def streamed(client, **params) -> list[str]:
    """achat_stream's deltas, collected on the event loop."""
    async def collect():
        return [delta async for delta in client.achat_stream(**params)]

    return awaited(collect())


@pytest.fixture
def client(transformers_server):
    return ModelServiceClient(base_url=transformers_server.url, timeout=60)


@pytest.mark.slow
def test_chat_and_its_stream_give_the_same_text(client):
    messages = [{"role": "user", "content": "Where is my order?"}]

    whole = client.chat(messages=messages, max_tokens=6, temperature=0)
    text = "".join(streamed(client, messages=messages, max_tokens=6, temperature=0))

    assert whole.finish_reason == "length"
    assert whole.usage["completion_tokens"] == 6
    assert text == whole.text


def _sse(content: str) -> bytes:
    return f'data: {{"choices": [{{"index": 0, "delta": {{"content": "{content}"}}}}]}}\n\n'.encode()


def test_a_stream_joins_the_deltas_that_arrive_together_and_decodes_characters_split_across_reads():
    """model_service's events as the socket delivers them: two in one write (one relayed text, not two), then
    a two-byte character cut between two writes."""
    async def scenario():
        async def serve(reader, writer):
            while (await reader.readline()).strip():  # the request line and headers
                pass
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
            writer.write(_sse("Yes, ") + _sse("we ship"))
            await writer.drain()
            await asyncio.sleep(0.2)
            split = _sse(" caf\u00e9")
            cut = split.index("\u00e9".encode()) + 1
            for part in (split[:cut], split[cut:] + b"data: [DONE]\n\n"):
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(0.2)
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            client = ModelServiceClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
            return [delta async for delta in client.achat_stream(messages=[{"role": "user", "content": "hi"}])]

    deltas = awaited(scenario())

    assert deltas[0] == "Yes, we ship"
    assert "".join(deltas) == "Yes, we ship caf\u00e9"


@pytest.mark.slow
def test_a_refused_stream_raises_rejected_with_the_services_message(client):
    with pytest.raises(ModelServiceRejected, match="does not exist") as raised:
        streamed(client, messages=[{"role": "user", "content": "hi"}], model="nope", max_tokens=2)

    assert raised.value.status == 404


@pytest.mark.slow
def test_complete_gives_every_choice_in_index_order(client):
    single = client.complete(prompt="def area(r):", max_tokens=5, temperature=0)
    several = client.complete(prompt="def area(r):", max_tokens=5, temperature=1.0, n=3)

    assert single.finish_reason == "length"
    assert single.usage["completion_tokens"] == 5
    assert single.choices == (single.text,)
    assert len(several.choices) == 3
    assert several.text == several.choices[0]


@pytest.mark.slow
def test_acomplete_gives_what_complete_gives(client):
    on_the_loop = awaited(client.acomplete(prompt="def area(r):", max_tokens=5, temperature=0))

    assert on_the_loop == client.complete(prompt="def area(r):", max_tokens=5, temperature=0)
    with pytest.raises(ModelServiceRejected, match="does not exist") as raised:
        awaited(client.acomplete(prompt="x", model="nope", max_tokens=2))
    assert raised.value.status == 404


@pytest.mark.slow
def test_embed_keeps_the_input_order(client):
    vectors = client.embed(["first", "second", "third"])
    alone = [client.embed([text])[0] for text in ("first", "second", "third")]

    assert len(vectors) == 3
    for batched, single in zip(vectors, alone):  # same vectors up to batch padding noise
        assert max(abs(a - b) for a, b in zip(batched, single)) < 1e-5


@pytest.mark.slow
def test_health_and_models(client, tiny_checkpoint):
    assert client.health()["status"] == "ok"
    assert client.models() == [tiny_checkpoint.name, "all-MiniLM-L6-v2"]


@pytest.mark.slow
def test_bad_requests_raise_rejected_with_the_services_message(client):
    with pytest.raises(ModelServiceRejected, match="does not exist") as raised:
        client.chat(messages=[{"role": "user", "content": "hi"}], model="nope", max_tokens=2)

    assert raised.value.status == 404


def test_an_absent_service_raises_unavailable_after_the_retries():
    client = ModelServiceClient(base_url=f"http://127.0.0.1:{free_port()}", connect_retries=2, retry_backoff=0.05)

    started = time.monotonic()
    with pytest.raises(ModelServiceUnavailable, match="not reachable"):
        client.chat(messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(ModelServiceUnavailable):
        streamed(client, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(ModelServiceUnavailable, match="not reachable"):
        awaited(client.acomplete(prompt="def f():"))

    assert time.monotonic() - started < 10  # no hanging on a dead port
