"""The life of a generation request: validate → wait for a slot → tokenize → generate → respond.

Completions and chat completions share everything but the prompt and the response shape.
"""
from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from model_service.api.errors import error_body
from model_service.api.formats import ChatFormat, Choice, CompletionFormat, ResponseFormat
from model_service.api.preparation import Prepared, chat_prompt, check, completion_prompt, prepare
from model_service.api.state import ServiceState
from model_service.protocol import ChoiceDelta


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
        encode = chat_prompt if chat else completion_prompt
        prompt_ids = await state.tokenize(functools.partial(encode, checkpoint, body))
        prepared = prepare(checkpoint, body, adapter, prompt_ids, chat=chat)
    except BaseException:
        ticket.release()
        raise
    fmt = (ChatFormat if chat else CompletionFormat)(tokens_as_ids=prepared.tokens_as_ids)
    response_id = fmt.id_prefix + prepared.request.request_id
    created = int(time.time())
    if prepared.stream:
        events = _stream_events(state, prepared, fmt, response_id, created, arrival, ticket.release)
        return StreamingResponse(events, media_type="text/event-stream", background=BackgroundTask(ticket.release),
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    try:
        choices = {i: Choice(i) for i in range(prepared.request.sampling.n)}
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
    metrics.prompt_tokens.inc(len(prepared.request.prompt_token_ids))
    last_token_at = None
    finished = False
    try:
        async for deltas in state.backend_for(prepared.request.adapter).generate(prepared.request):
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
            yield deltas
        finished = True
        metrics.e2e_latency.observe(time.monotonic() - arrival)
    finally:
        if not finished:
            metrics.aborted.inc()



def _usage(prepared: Prepared, choices: dict[int, Choice]) -> dict:
    prompt = len(prepared.request.prompt_token_ids)
    completion = sum(choice.tokens for choice in choices.values())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}



def _sse(payload: dict | str) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"



async def _stream_events(state: ServiceState, prepared: Prepared, fmt: ResponseFormat, response_id: str, created: int,
                         arrival: float, release) -> AsyncIterator[str]:
    head = {"id": response_id, "object": fmt.object_chunk, "created": created, "model": prepared.model}
    choices = {i: Choice(i) for i in range(prepared.request.sampling.n)}
    started: set[int] = set()
    try:
        async for deltas in _timed_deltas(state, prepared, arrival):
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
        release()
    yield _sse("[DONE]")
