"""Turning a (chat) completion request into GenerationRequests (one per prompt): the model, the prompts'
token ids, the sampling options within the context length, and the refusals of what cannot be served."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from model_service.api.state import ServiceState
from model_service.checkpoint import Checkpoint
from model_service.errors import ContextLengthExceeded, InvalidRequest
from model_service.protocol import (
    MAX_PROMPT_CHOICES, ChatCompletionRequest, CompletionRequest, GenerationRequest, SamplingOptions,
)

STRUCTURED_OUTPUTS = "structured_outputs"  # the BackendInfo feature of a backend that constrains output to JSON


@dataclass(frozen=True)
class Prepared:
    requests: list[GenerationRequest]  # one per prompt; choice i of prompt p is index p * n + i
    echoes: list[str]  # per prompt: the text that starts each of its choices ("" without echo)
    model: str  # the model id echoed in responses
    stream: bool
    include_usage: bool
    tokens_as_ids: bool

    @property
    def choices(self) -> int:
        return len(self.requests) * self.requests[0].sampling.n


def check(state: ServiceState, body) -> str | None:
    """The cheap checks, made before a slot is taken: the model exists, the parameters make sense and
    the backend that would serve them implements them. Returns the adapter to use (None: the base model)."""
    adapter = state.resolve_model(body.model)
    for param, why in body.not_implemented():
        raise InvalidRequest(why, param=param)
    if body.n > 1 and body.temperature == 0:
        raise InvalidRequest("n must be 1 when temperature is 0: greedy decoding gives every choice the same text",
                             param="n")
    if isinstance(body, CompletionRequest):
        _check_prompt_count(body)
    _check_logit_bias(state.backend.checkpoint, body.logit_bias)
    constraint = body.response_format.constraint() if body.response_format else None
    backend = state.backend_for(adapter).info()
    if constraint is not None and STRUCTURED_OUTPUTS not in backend.features:
        served = f"the adapter {adapter}" if adapter else "this model"
        raise InvalidRequest(f"response_format {body.response_format.type} is not supported by the {backend.name} "
                             f"backend serving {served}: it cannot constrain the output to JSON",
                             param="response_format")
    return adapter


def _check_prompt_count(body: CompletionRequest) -> None:
    prompts = len(body.prompts())
    if prompts == 0:
        raise InvalidRequest("prompt must hold at least one prompt", param="prompt")
    if prompts * body.n > MAX_PROMPT_CHOICES:
        raise InvalidRequest(f"a request may ask for at most {MAX_PROMPT_CHOICES} choices (prompts × n); "
                             f"this one asks for {prompts * body.n}", param="prompt")


def _check_logit_bias(checkpoint: Checkpoint, logit_bias: dict[str, float] | None) -> None:
    vocab_size = len(checkpoint.tokenizer)
    outside = [token for token in logit_bias or {} if int(token) >= vocab_size]
    if outside:
        raise InvalidRequest(f"logit_bias names token ids outside the vocabulary (ids below {vocab_size}): "
                             f"{', '.join(outside[:5])}", param="logit_bias")


def completion_prompts(checkpoint: Checkpoint, body: CompletionRequest) -> list[list[int]]:
    return [_completion_prompt(checkpoint, prompt, body.suffix) for prompt in body.prompts()]


def _completion_prompt(checkpoint: Checkpoint, prompt: str | list[int], suffix: str | None) -> list[int]:
    if suffix is not None:
        if not isinstance(prompt, str):
            raise InvalidRequest("suffix needs a text prompt", param="suffix")
        if not checkpoint.supports_fim:
            raise InvalidRequest("this model has no fill-in-the-middle tokens", param="suffix", code="fim_unsupported")
        return _with_bos(checkpoint, checkpoint.encode_fim(prompt, suffix))
    if isinstance(prompt, str):
        return _with_bos(checkpoint, checkpoint.encode(prompt))
    vocab_size = len(checkpoint.tokenizer)
    if not prompt or any(not 0 <= token < vocab_size for token in prompt):
        raise InvalidRequest(f"prompt token ids must be a non-empty list of ids below {vocab_size}", param="prompt")
    return list(prompt)


def _with_bos(checkpoint: Checkpoint, token_ids: list[int]) -> list[int]:
    bos = checkpoint.tokenizer.bos_token_id
    return [bos, *token_ids] if bos is not None else token_ids


def chat_prompts(checkpoint: Checkpoint, body: ChatCompletionRequest) -> list[list[int]]:
    """The one prompt of a chat: its messages through the checkpoint's chat template. A template that
    cannot render a message (it fails, or leaves a developer or tool message or a tool call out) is a 400."""
    if not body.messages:
        raise InvalidRequest("messages must hold at least one message", param="messages")
    try:
        token_ids = checkpoint.encode_chat([message.for_template() for message in body.messages])
    except TypeError as error:  # a template that concatenates a missing content (a tool-call turn)
        raise InvalidRequest(f"The model's chat template cannot render these messages: {error}",
                             param="messages") from None
    if any(message.role in ("developer", "tool") or message.tool_calls for message in body.messages):
        _check_rendered(checkpoint.tokenizer.decode(token_ids), body)
    return [token_ids]


def _check_rendered(prompt: str, body: ChatCompletionRequest) -> None:
    """Templates written for system, user and assistant turns may skip other roles silently."""
    for index, message in enumerate(body.messages):
        if message.role in ("developer", "tool") and (message.text() or "").strip() not in prompt:
            raise InvalidRequest(f"The model's chat template does not render {message.role} messages.",
                                 param=f"messages.{index}.role")
        for call in message.tool_calls or ():
            if call.function.name not in prompt:
                raise InvalidRequest("The model's chat template does not render the tool calls of assistant "
                                     "messages.", param=f"messages.{index}.tool_calls")


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


def _sampling(checkpoint: Checkpoint, body, prompt_len: int, *, chat: bool) -> SamplingOptions:
    if chat:
        max_tokens = body.max_completion_tokens or body.max_tokens
        logprobs = (body.top_logprobs or 0) if body.logprobs else None
    else:
        max_tokens, logprobs = body.max_tokens, body.logprobs
    return SamplingOptions(
        max_tokens=_max_tokens(checkpoint, prompt_len, max_tokens, "messages" if chat else "prompt"),
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        n=body.n,
        stop=tuple(body.stop),
        stop_token_ids=checkpoint.stop_token_ids,
        logprobs=logprobs,
        prompt_logprobs=body.logprobs if not chat and body.echo else None,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        repetition_penalty=body.repetition_penalty,
        top_k=max(body.top_k, 0),
        min_p=body.min_p,
        logit_bias=tuple((int(token), bias) for token, bias in (body.logit_bias or {}).items()),
        json=body.response_format.constraint() if body.response_format else None,
    )


def _echoes(checkpoint: Checkpoint, body, prompts: list[list[int]], *, chat: bool) -> list[str]:
    if chat or not body.echo:
        return [""] * len(prompts)
    return [prompt if isinstance(prompt, str) else checkpoint.tokenizer.decode(prompt, skip_special_tokens=True)
            for prompt in body.prompts()]


def prepare(checkpoint: Checkpoint, body, adapter: str | None, prompts: list[list[int]], *, chat: bool) -> Prepared:
    requests = [GenerationRequest(uuid.uuid4().hex, prompt_ids, _sampling(checkpoint, body, len(prompt_ids), chat=chat),
                                  adapter) for prompt_ids in prompts]
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return Prepared(requests, _echoes(checkpoint, body, prompts, chat=chat), body.model or checkpoint.name,
                    body.stream, include_usage, body.return_tokens_as_token_ids)
