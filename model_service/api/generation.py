"""The life of a generation request: validate → wait for a slot → tokenize → generate → respond.

Completions and chat completions share everything but the prompt and the response shape.
"""
from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from model_service.api.errors import error_body
from model_service.api.state import ServiceState
from model_service.checkpoint import Checkpoint
from model_service.errors import ContextLengthExceeded, InvalidRequest
from model_service.protocol import (Candidate, ChatCompletionRequest, ChoiceDelta, CompletionRequest, GenerationRequest,
                                    SamplingOptions, TokenLogprob)


@dataclass
class _Choice:
    index: int
    text: str = ""
    tokens: int = 0
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None

    def add(self, delta: ChoiceDelta) -> None:
        self.text += delta.text
        self.tokens += len(delta.token_ids)
        self.logprobs.extend(delta.logprobs)
        self.finish_reason = delta.finish_reason or self.finish_reason


class _Format:
    """The OpenAI response shapes of one route."""

    object_full: str
    object_chunk: str
    id_prefix: str

    def __init__(self, *, tokens_as_ids: bool = False):
        self.tokens_as_ids = tokens_as_ids

    def name(self, candidate: Candidate) -> str:
        return f"token_id:{candidate.token_id}" if self.tokens_as_ids else candidate.token

    def choice(self, choice: _Choice) -> dict: ...

    def chunk_choice(self, delta: ChoiceDelta, *, first: bool) -> dict: ...


class _CompletionFormat(_Format):
    object_full = object_chunk = "text_completion"
    id_prefix = "cmpl-"

    def choice(self, choice: _Choice) -> dict:
        return {"index": choice.index, "text": choice.text, "finish_reason": choice.finish_reason,
                "logprobs": self._logprobs(choice.logprobs) if choice.logprobs else None}

    def chunk_choice(self, delta: ChoiceDelta, *, first: bool) -> dict:
        return {"index": delta.index, "text": delta.text, "finish_reason": delta.finish_reason,
                "logprobs": self._logprobs(delta.logprobs) if delta.logprobs else None}

    def _logprobs(self, items: list[TokenLogprob]) -> dict:
        offsets, offset = [], 0
        for item in items:
            offsets.append(offset)
            offset += len(item.chosen.token)
        return {"tokens": [self.name(item.chosen) for item in items],
                "token_logprobs": [item.chosen.logprob for item in items],
                "top_logprobs": [{self.name(c): c.logprob for c in item.top} for item in items],
                "text_offset": offsets}


class _ChatFormat(_Format):
    object_full = "chat.completion"
    object_chunk = "chat.completion.chunk"
    id_prefix = "chatcmpl-"

    def choice(self, choice: _Choice) -> dict:
        return {"index": choice.index, "message": {"role": "assistant", "content": choice.text},
                "finish_reason": choice.finish_reason,
                "logprobs": self._logprobs(choice.logprobs) if choice.logprobs else None}

    def chunk_choice(self, delta: ChoiceDelta, *, first: bool) -> dict:
        message = {"role": "assistant", "content": delta.text} if first else {"content": delta.text}
        return {"index": delta.index, "delta": message, "finish_reason": delta.finish_reason,
                "logprobs": self._logprobs(delta.logprobs) if delta.logprobs else None}

    def _logprobs(self, items: list[TokenLogprob]) -> dict:
        def entry(candidate: Candidate) -> dict:
            return {"token": self.name(candidate), "logprob": candidate.logprob,
                    "bytes": list(candidate.token.encode())}

        return {"content": [dict(entry(item.chosen), top_logprobs=[entry(c) for c in item.top]) for item in items]}


@dataclass(frozen=True)
class _Prepared:
    request: GenerationRequest
    model: str  # the model id echoed in responses
    stream: bool
    include_usage: bool
    tokens_as_ids: bool


# --- preparing a request ----------------------------------------------------------------------

def _check(state: ServiceState, body) -> str | None:
    """The cheap checks, made before a slot is taken: the model exists, the choices make sense.
    Returns the adapter to use (None: the base model)."""
    adapter = state.resolve_model(body.model)
    if body.n > 1 and body.temperature == 0:
        raise InvalidRequest("n must be 1 when temperature is 0: greedy decoding gives every choice the same text",
                             param="n")
    return adapter


def _completion_prompt(checkpoint: Checkpoint, body: CompletionRequest) -> list[int]:
    prompt = body.prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], (str, list)):
        if len(prompt) != 1:
            raise InvalidRequest("send one prompt per request", param="prompt")
        prompt = prompt[0]
    if body.suffix is not None:
        if not isinstance(prompt, str):
            raise InvalidRequest("suffix needs a text prompt", param="suffix")
        if not checkpoint.supports_fim:
            raise InvalidRequest("this model has no fill-in-the-middle tokens", param="suffix")
        return _with_bos(checkpoint, checkpoint.encode_fim(prompt, body.suffix))
    if isinstance(prompt, str):
        return _with_bos(checkpoint, checkpoint.encode(prompt))
    vocab_size = len(checkpoint.tokenizer)
    if not prompt or any(not 0 <= token < vocab_size for token in prompt):
        raise InvalidRequest(f"prompt token ids must be a non-empty list of ids below {vocab_size}", param="prompt")
    return list(prompt)


def _with_bos(checkpoint: Checkpoint, token_ids: list[int]) -> list[int]:
    bos = checkpoint.tokenizer.bos_token_id
    return [bos, *token_ids] if bos is not None else token_ids


def _chat_prompt(checkpoint: Checkpoint, body: ChatCompletionRequest) -> list[int]:
    if not body.messages:
        raise InvalidRequest("messages must hold at least one message", param="messages")
    return checkpoint.encode_chat([{"role": m.role, "content": m.text()} for m in body.messages])


def _max_tokens(checkpoint: Checkpoint, prompt_len: int, requested: int | None, param: str) -> int:
    limit = checkpoint.max_model_len
    if prompt_len >= limit:
        raise ContextLengthExceeded(
            f"This model's maximum context length is {limit} tokens; the prompt has {prompt_len}.", param=param)
    if requested is None:
        return limit - prompt_len
    if prompt_len + requested > limit:
        raise ContextLengthExceeded(
            f"This model's maximum context length is {limit} tokens; you requested {prompt_len + requested} "
            f"({prompt_len} in the prompt, {requested} for the completion).", param="max_tokens")
    return requested


def _prepare(checkpoint: Checkpoint, body, adapter: str | None, prompt_ids: list[int], *, chat: bool) -> _Prepared:
    if chat:
        max_tokens = body.max_completion_tokens or body.max_tokens
        logprobs = (body.top_logprobs or 0) if body.logprobs else None
    else:
        max_tokens, logprobs = body.max_tokens, body.logprobs
    sampling = SamplingOptions(
        max_tokens=_max_tokens(checkpoint, len(prompt_ids), max_tokens, "messages" if chat else "prompt"),
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        n=body.n,
        stop=tuple(body.stop),
        stop_token_ids=checkpoint.stop_token_ids,
        logprobs=logprobs,
    )
    request = GenerationRequest(uuid.uuid4().hex, prompt_ids, sampling, adapter)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return _Prepared(request, body.model or checkpoint.name, body.stream, include_usage,
                     body.return_tokens_as_token_ids)


# --- running it -------------------------------------------------------------------------------

async def _timed_deltas(state: ServiceState, prepared: _Prepared, arrival: float) -> AsyncIterator[list[ChoiceDelta]]:
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


def _usage(prepared: _Prepared, choices: dict[int, _Choice]) -> dict:
    prompt = len(prepared.request.prompt_token_ids)
    completion = sum(choice.tokens for choice in choices.values())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def respond(state: ServiceState, request: Request, body, *, chat: bool) -> Response:
    """Answer a (chat) completion; a client that leaves before the response has begun is dropped
    and its generation aborted in the engine (a started stream notices the disconnect itself)."""
    return await _unless_disconnected(request.receive, _respond(state, body, chat=chat))


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


async def _respond(state: ServiceState, body, *, chat: bool) -> Response:
    """Validate cheaply → wait for a slot (429 when the queue is full) → tokenize off the event loop →
    generate. The slot comes before tokenizing so an overloaded server does no expensive work."""
    arrival = time.monotonic()
    checkpoint = state.backend.checkpoint  # 503 until the model is loaded
    adapter = _check(state, body)
    ticket = await state.admission.acquire()
    try:
        encode = _chat_prompt if chat else _completion_prompt
        prompt_ids = await state.tokenize(functools.partial(encode, checkpoint, body))
        prepared = _prepare(checkpoint, body, adapter, prompt_ids, chat=chat)
    except BaseException:
        ticket.release()
        raise
    fmt = (_ChatFormat if chat else _CompletionFormat)(tokens_as_ids=prepared.tokens_as_ids)
    response_id = fmt.id_prefix + prepared.request.request_id
    created = int(time.time())
    if prepared.stream:
        events = _stream_events(state, prepared, fmt, response_id, created, arrival, ticket.release)
        return StreamingResponse(events, media_type="text/event-stream", background=BackgroundTask(ticket.release),
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    try:
        choices = {i: _Choice(i) for i in range(prepared.request.sampling.n)}
        async for deltas in _timed_deltas(state, prepared, arrival):
            for delta in deltas:
                choices[delta.index].add(delta)
    finally:
        ticket.release()
    return JSONResponse({
        "id": response_id, "object": fmt.object_full, "created": created, "model": prepared.model,
        "choices": [fmt.choice(choices[i]) for i in sorted(choices)], "usage": _usage(prepared, choices),
    })


def _sse(payload: dict | str) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"


async def _stream_events(state: ServiceState, prepared: _Prepared, fmt: _Format, response_id: str, created: int,
                         arrival: float, release) -> AsyncIterator[str]:
    head = {"id": response_id, "object": fmt.object_chunk, "created": created, "model": prepared.model}
    choices = {i: _Choice(i) for i in range(prepared.request.sampling.n)}
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
