"""Turning a (chat) completion request into a GenerationRequest: the model, the prompt's token ids,
the sampling options within the context length."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from model_service.api.state import ServiceState
from model_service.checkpoint import Checkpoint
from model_service.errors import ContextLengthExceeded, InvalidRequest
from model_service.protocol import ChatCompletionRequest, CompletionRequest, GenerationRequest, SamplingOptions


@dataclass(frozen=True)
class Prepared:
    request: GenerationRequest
    model: str  # the model id echoed in responses
    stream: bool
    include_usage: bool
    tokens_as_ids: bool


def check(state: ServiceState, body) -> str | None:
    """The cheap checks, made before a slot is taken: the model exists, the choices make sense.
    Returns the adapter to use (None: the base model)."""
    adapter = state.resolve_model(body.model)
    if body.n > 1 and body.temperature == 0:
        raise InvalidRequest("n must be 1 when temperature is 0: greedy decoding gives every choice the same text",
                             param="n")
    return adapter


def completion_prompt(checkpoint: Checkpoint, body: CompletionRequest) -> list[int]:
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


def chat_prompt(checkpoint: Checkpoint, body: ChatCompletionRequest) -> list[int]:
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


def prepare(checkpoint: Checkpoint, body, adapter: str | None, prompt_ids: list[int], *, chat: bool) -> Prepared:
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
    return Prepared(request, body.model or checkpoint.name, body.stream, include_usage,
                     body.return_tokens_as_token_ids)
