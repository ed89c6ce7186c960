"""The life of a generation request: validate → wait for a slot → tokenize → generate → respond.

Completions and chat completions share everything but the prompts and the response shape. A completion
with several prompts is one engine request per prompt, their choices numbered prompt-major.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import replace

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from model_service.api.errors import error_body
from model_service.api.formats import ChatFormat, Choice, CompletionFormat, ResponseFormat
from model_service.api.preparation import Prepared, chat_prompts, check, completion_prompts, prepare
from model_service.api.state import ServiceState
from model_service.protocol import ChoiceDelta

logger = logging.getLogger(__name__)
ABORT_RECORD_TOKENS = 64  # an aborted generation's log line gives the times of its last this many tokens


async def respond(state: ServiceState, request: Request, body, *, chat: bool) -> Response:
    """Answer a (chat) completion; a client that leaves before the response has begun is dropped
    and its generation aborted in the engine (a started stream notices the disconnect itself)."""
    return await _unless_disconnected(request.receive, _respond(state, body, chat=chat))


async def _respond(state: ServiceState, body, *, chat: bool) -> Response:
    """Validate cheaply → wait for a slot (429 when the queue is full) → tokenize off the event loop →
    generate. The slot comes before tokenizing so an overloaded server does no expensive work."""
    arrival = time.monotonic()
    checkpoint = state.backend.checkpoint  # 503 until the model is loaded
    adapter = check(state, body)
    ticket = await state.admission.acquire()
    try:
        encode = chat_prompts if chat else completion_prompts
        prompts = await state.tokenize(functools.partial(encode, checkpoint, body))
        prepared = prepare(checkpoint, body, adapter, prompts, chat=chat)
    except BaseException:
        ticket.release()
        raise
    fmt = (ChatFormat if chat else CompletionFormat)(tokens_as_ids=prepared.tokens_as_ids)
    response_id = fmt.id_prefix + prepared.requests[0].request_id
    created = int(time.time())
    if prepared.stream:
        try:  # the first output before the headers: a request the engine refuses still gets its 4xx
            deltas = _timed_deltas(state, prepared, arrival)
            first = await anext(deltas, [])
        except BaseException:
            ticket.release()
            raise
        events = _stream_events(prepared, fmt, response_id, created, first, deltas, ticket.release)
        # release_async, not release: Starlette runs a plain function given as a background task in a
        # worker thread, a thread hop per request
        return StreamingResponse(events, media_type="text/event-stream",
                                 background=BackgroundTask(ticket.release_async),
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    try:
        choices = {i: Choice(i) for i in range(prepared.choices)}
        async for deltas in _timed_deltas(state, prepared, arrival):
            for delta in deltas:
                choices[delta.index].add(delta)
    finally:
        ticket.release()
    return JSONResponse({
        "id": response_id, "object": fmt.object_full, "created": created, "model": prepared.model,
        "choices": [fmt.choice(choices[i]) for i in sorted(choices)], "usage": _usage(prepared, choices),
    })



async def _unless_disconnected(receive, work) -> Response:
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_until_disconnected(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():  # the client left: cancelling closes the generation, which aborts it
            task.cancel()
            await asyncio.wait({task})
    if task.cancelled():
        return Response(status_code=499)  # nobody reads it
    return task.result()



async def _until_disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass



async def _timed_deltas(state: ServiceState, prepared: Prepared, arrival: float) -> AsyncIterator[list[ChoiceDelta]]:
    """The backend's deltas, with latency and token metrics recorded on the way."""
    metrics = state.metrics
    metrics.prompt_tokens.inc(_prompt_tokens(prepared))
    last_token_at = None
    token_times: deque[float] = deque(maxlen=ABORT_RECORD_TOKENS)
    generated = 0
    finished = False
    stream = _all_prompts(state, prepared)
    try:
        async for deltas in stream:
            tokens = sum(len(delta.token_ids) for delta in deltas)
            if tokens:
                now = time.monotonic()
                if last_token_at is None:
                    metrics.time_to_first_token.observe(now - arrival)
                else:
                    for _ in range(tokens):
                        metrics.inter_token_latency.observe((now - last_token_at) / tokens)
                last_token_at = now
                metrics.generation_tokens.inc(tokens)
                generated += tokens
                token_times.extend([now] * tokens)
            yield deltas
        finished = True
        metrics.e2e_latency.observe(time.monotonic() - arrival)
    finally:
        await stream.aclose()
        if not finished:
            metrics.aborted.inc()
            _log_abort(prepared, generated, token_times)


def _log_abort(prepared: Prepared, generated: int, token_times: deque[float]) -> None:
    """One line per generation stopped because its client left: how many tokens it had generated and when
    its last ones came (time.monotonic(), the machine's clock shared by every process on it), so that the
    tokens generated after a client's own hang-up can be counted exactly (benchmarks/load.py --typing)."""
    logger.info("generation aborted: %s", json.dumps({
        "request_id": prepared.requests[0].request_id, "generated_tokens": generated,
        "aborted_at": round(time.monotonic(), 6), "last_token_times": [round(t, 6) for t in token_times]}))



async def _all_prompts(state: ServiceState, prepared: Prepared) -> AsyncIterator[list[ChoiceDelta]]:
    """The deltas of every prompt's engine request as they come, renumbered prompt-major, each choice's
    first delta led by its echo. One plain prompt goes straight through."""
    backend = state.backend_for(prepared.requests[0].adapter)
    if len(prepared.requests) == 1 and not prepared.echoes[0]:
        stream = backend.generate(prepared.requests[0])
    else:
        stream = _merged([_numbered(backend.generate(request), offset=index * request.sampling.n, echo=echo)
                          for index, (request, echo) in enumerate(zip(prepared.requests, prepared.echoes))])
    try:
        async for deltas in stream:
            yield deltas
    finally:
        await stream.aclose()  # frees the requests in the engine when the client has gone


async def _numbered(stream: AsyncIterator[list[ChoiceDelta]], *, offset: int, echo: str
                    ) -> AsyncIterator[list[ChoiceDelta]]:
    started: set[int] = set()
    try:
        async for deltas in stream:
            numbered = []
            for delta in deltas:
                text = delta.text if delta.index in started else echo + delta.text
                started.add(delta.index)
                numbered.append(replace(delta, index=offset + delta.index, text=text))
            yield numbered
    finally:
        await stream.aclose()


_END = object()


async def _merged(streams: list[AsyncIterator[list[ChoiceDelta]]]) -> AsyncIterator[list[ChoiceDelta]]:
    """The batches of several streams in the order they arrive; the first error ends them all."""
    arrived: asyncio.Queue = asyncio.Queue()

    async def pump(stream):
        try:
            async for deltas in stream:
                arrived.put_nowait(deltas)
            arrived.put_nowait(_END)
        except Exception as error:  # noqa: BLE001 - handed to the reader, which raises it
            arrived.put_nowait(error)

    pumps = [asyncio.create_task(pump(stream)) for stream in streams]
    try:
        running = len(pumps)
        while running:
            item = await arrived.get()
            if item is _END:
                running -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield item
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        for stream in streams:
            await stream.aclose()


def _prompt_tokens(prepared: Prepared) -> int:
    return sum(len(request.prompt_token_ids) for request in prepared.requests)


def _usage(prepared: Prepared, choices: dict[int, Choice]) -> dict:
    prompt = _prompt_tokens(prepared)
    completion = sum(choice.tokens for choice in choices.values())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}



def _sse(payload: dict | str) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"



async def _stream_events(prepared: Prepared, fmt: ResponseFormat, response_id: str, created: int,
                         first_deltas: list[ChoiceDelta], rest: AsyncIterator[list[ChoiceDelta]],
                         release) -> AsyncIterator[str]:
    head = {"id": response_id, "object": fmt.object_chunk, "created": created, "model": prepared.model}
    choices = {i: Choice(i) for i in range(prepared.choices)}
    started: set[int] = set()
    try:
        async for deltas in _prepend(first_deltas, rest):
            for delta in deltas:
                choices[delta.index].add(delta)
                first = delta.index not in started
                started.add(delta.index)
                if delta.text or delta.finish_reason or first:
                    yield _sse(dict(head, choices=[fmt.chunk_choice(delta, first=first)]))
        if prepared.include_usage:
            yield _sse(dict(head, choices=[], usage=_usage(prepared, choices)))
    except Exception as error:  # headers are sent: the error travels as an event
        yield _sse(error_body(error))
    finally:
        await rest.aclose()
        release()
    yield _sse("[DONE]")


async def _prepend(first: list[ChoiceDelta], rest: AsyncIterator[list[ChoiceDelta]]
                   ) -> AsyncIterator[list[ChoiceDelta]]:
    yield first
    async for deltas in rest:
        yield deltas
