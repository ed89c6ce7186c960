"""Request shapes of the OpenAI API (validated by pydantic) and the backend-facing types."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

MAX_CHOICES = 4
MAX_LOGPROBS = 5
MAX_SEED = 2**63 - 1  # what the engines' random generators accept


def _encodable(value: str) -> str:
    """JSON may carry lone surrogates ("\\ud800"), which no tokenizer accepts."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (it holds a lone surrogate)") from None
    return value


Text = Annotated[str, AfterValidator(_encodable)]


class StreamOptions(BaseModel):
    include_usage: bool = False


class _OpenAIRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: Text | list[Text] | None = Field(default=None, validate_default=True)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    n: int = Field(default=1, ge=1, le=MAX_CHOICES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    # vLLM's extension: name tokens "token_id:<id>" in logprobs, so byte-level tokens stay distinct
    return_tokens_as_token_ids: bool = False

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value):
        if value is None:
            return []
        values = [value] if isinstance(value, str) else value
        if len(values) > 4 or any(not item for item in values):
            raise ValueError("stop takes up to 4 non-empty strings")
        return values


class CompletionRequest(_OpenAIRequest):
    prompt: Text | list[int] | list[Text] | list[list[int]]
    suffix: Text | None = None  # fill-in-the-middle: the text after the cursor
    logprobs: int | None = Field(default=None, ge=0, le=MAX_LOGPROBS)
    max_tokens: int | None = Field(default=16, ge=1)


class ContentPart(BaseModel):
    """One part of a message's content; only text parts reach a text model."""

    model_config = ConfigDict(extra="ignore")

    type: str
    text: Text = ""


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: Text | list[ContentPart]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if part.type == "text")


class ChatCompletionRequest(_OpenAIRequest):
    messages: list[ChatMessage]
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_LOGPROBS)
    max_completion_tokens: int | None = Field(default=None, ge=1)


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input: Text | list[Text]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"  # base64: little-endian float32 bytes


class AdapterRequest(BaseModel):
    """vLLM's runtime LoRA routes: /v1/load_lora_adapter and /v1/unload_lora_adapter."""

    model_config = ConfigDict(extra="ignore")

    lora_name: str = Field(min_length=1, max_length=100)
    lora_path: str | None = None


# --- what the HTTP layer hands a backend, and gets back -------------------------------------

@dataclass(frozen=True)
class SamplingOptions:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    n: int = 1
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    logprobs: int | None = None  # top-k alternatives per generated token; None: no logprobs


@dataclass(frozen=True)
class GenerationRequest:
    request_id: str
    prompt_token_ids: list[int]
    sampling: SamplingOptions
    adapter: str | None = None


@dataclass(frozen=True)
class Candidate:
    token_id: int
    token: str  # decoded text; several byte-level tokens may share one ("\ufffd")
    logprob: float


@dataclass(frozen=True)
class TokenLogprob:
    chosen: Candidate  # the generated token
    top: tuple[Candidate, ...]  # the k most likely tokens at this step, most likely first


@dataclass
class ChoiceDelta:
    """New output of one choice since the last delta."""

    index: int
    text: str
    token_ids: list[int]
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None  # "stop" or "length" once the choice is done
