"""The OpenAI response shapes of /v1/completions and /v1/chat/completions, whole and streamed."""
from __future__ import annotations

from dataclasses import dataclass, field

from model_service.protocol import Candidate, ChoiceDelta, TokenLogprob


@dataclass
class Choice:
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


class ResponseFormat:
    """The OpenAI response shapes of one route."""

    object_full: str
    object_chunk: str
    id_prefix: str

    def __init__(self, *, tokens_as_ids: bool = False):
        self.tokens_as_ids = tokens_as_ids

    def name(self, candidate: Candidate) -> str:
        return f"token_id:{candidate.token_id}" if self.tokens_as_ids else candidate.token

    def choice(self, choice: Choice) -> dict: ...

    def chunk_choice(self, delta: ChoiceDelta, *, first: bool) -> dict: ...


class CompletionFormat(ResponseFormat):
    object_full = object_chunk = "text_completion"
    id_prefix = "cmpl-"

    def choice(self, choice: Choice) -> dict:
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


class ChatFormat(ResponseFormat):
    object_full = "chat.completion"
    object_chunk = "chat.completion.chunk"
    id_prefix = "chatcmpl-"

    def choice(self, choice: Choice) -> dict:
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
