"""The life of a generation request: validate → tokenize → wait for a slot → generate → respond.

Completions and chat completions share everything but the prompt and the response shape.
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from model_service.api.errors import error_body
from model_service.api.state import ServiceState
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

def _completion_prompt(state: ServiceState, body: CompletionRequest) -> list[int]:
    checkpoint = state.checkpoint
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
        return _with_bos(state, checkpoint.encode_fim(prompt, body.suffix))
    if isinstance(prompt, str):
        return _with_bos(state, checkpoint.encode(prompt))
    vocab_size = len(checkpoint.tokenizer)
    if not prompt or any(not 0 <= token < vocab_size for token in prompt):
        raise InvalidRequest(f"prompt token ids must be a non-empty list of ids below {vocab_size}", param="prompt")
    return list(prompt)


def _with_bos(state: ServiceState, token_ids: list[int]) -> list[int]:
    bos = state.checkpoint.tokenizer.bos_token_id
    return [bos, *token_ids] if bos is not None else token_ids


def _chat_prompt(state: ServiceState, body: ChatCompletionRequest) -> list[int]:
    if not body.messages:
        raise InvalidRequest("messages must hold at least one message", param="messages")
    return state.checkpoint.encode_chat([{"role": m.role, "content": m.text()} for m in body.messages])


def _max_tokens(state: ServiceState, prompt_len: int, requested: int | None, param: str) -> int:
    limit = state.checkpoint.max_model_len
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


def _prepare(state: ServiceState, body, prompt_ids: list[int], *, max_tokens: int | None, logprobs: int | None,
             param: str) -> _Prepared:
    adapter = state.resolve_model(body.model)
    if body.n > 1 and body.temperature == 0:
        raise InvalidRequest("n must be 1 when temperature is 0: greedy decoding gives every choice the same text",
                             param="n")
    sampling = SamplingOptions(
        max_tokens=_max_tokens(state, len(prompt_ids), max_tokens, param),
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        n=body.n,
        stop=tuple(body.stop),
        stop_token_ids=state.checkpoint.stop_token_ids,
        logprobs=logprobs,
    )
    request = GenerationRequest(uuid.uuid4().hex, prompt_ids, sampling, adapter)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return _Prepared(request, body.model or state.checkpoint.name, body.stream, include_usage,
                     body.return_tokens_as_token_ids)


def prepare_completion(state: ServiceState, body: CompletionRequest) -> _Prepared:
    return _prepare(state, body, _completion_prompt(state, body), max_tokens=body.max_tokens,
                    logprobs=body.logprobs, param="prompt")


def prepare_chat(state: ServiceState, body: ChatCompletionRequest) -> _Prepared:
    top = body.top_logprobs or 0
    return _prepare(state, body, _chat_prompt(state, body),
                    max_tokens=body.max_completion_tokens or body.max_tokens,
                    logprobs=top if body.logprobs else None, param="messages")


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


async def respond(state: ServiceState, prepared: _Prepared, *, chat: bool):
    arrival = time.monotonic()
    ticket = await state.admission.acquire()
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
