"""Request shapes of the OpenAI API (validated by pydantic) and the backend-facing types."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_CHOICES = 4
MAX_LOGPROBS = 5
MAX_SEED = 2**63 - 1  # what the engines' random generators accept
MAX_PROMPT_CHOICES = 16  # prompts × n in one completion request: one engine batch (vLLM's max_num_seqs)
MAX_LOGIT_BIAS = 300  # tokens one request may bias (OpenAI's limit)
MAX_BIAS = 100.0  # |bias| per token: -100 bans a token, +100 forces it
REPETITION_PENALTY_RANGE = (0.01, 10.0)  # beyond it, logits overflow to inf


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


class JsonSchemaFormat(BaseModel):
    """response_format's `json_schema`: the schema the output must validate against."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: str = Field(min_length=1, max_length=64)
    json_schema: dict = Field(alias="schema", default_factory=dict)  # `schema` would shadow pydantic's method
    description: str | None = None
    strict: bool | None = None  # the schema is always enforced, strict or not


class ResponseFormatSpec(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_with_its_type(self):
        if (self.type == "json_schema") != (self.json_schema is not None):
            raise ValueError("json_schema is required with type json_schema, and only with it")
        return self

    def constraint(self) -> JsonConstraint | None:
        if self.type == "text":
            return None
        return JsonConstraint(self.json_schema.json_schema if self.json_schema else None)


class _OpenAIRequest(BaseModel):
    """Parameters the API defines. Anything else is refused by name (OpenAI answers the same)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: Text | list[Text] | None = Field(default=None, validate_default=True)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    n: int = Field(default=1, ge=1, le=MAX_CHOICES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None  # token id (as a string) -> bias in [-100, 100]
    response_format: ResponseFormatSpec | None = None
    # vLLM's extensions
    repetition_penalty: float = Field(default=1.0, ge=REPETITION_PENALTY_RANGE[0], le=REPETITION_PENALTY_RANGE[1])
    top_k: int = Field(default=0, ge=-1)  # 0 or -1: every token
    min_p: float = Field(default=0.0, ge=0.0, le=1.0)
    return_tokens_as_token_ids: bool = False  # logprob tokens named "token_id:<id>" (byte-level tokens stay apart)
    # Metadata clients send by default; accepted, and nothing is done with it (nothing is stored either).
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value):
        if value is None:
            return []
        values = [value] if isinstance(value, str) else value
        if len(values) > 4 or any(not item for item in values):
            raise ValueError("stop takes up to 4 non-empty strings")
        return values

    @field_validator("logit_bias")
    @classmethod
    def _logit_bias_ids(cls, value):
        if value is None:
            return None
        if len(value) > MAX_LOGIT_BIAS:
            raise ValueError(f"logit_bias takes at most {MAX_LOGIT_BIAS} tokens")
        for token, bias in value.items():
            if not token.isascii() or not token.isdigit():
                raise ValueError(f"logit_bias keys are token ids, not {token[:20]!r}")
            if not -MAX_BIAS <= bias <= MAX_BIAS:
                raise ValueError(f"logit_bias values lie in [-{MAX_BIAS}, {MAX_BIAS}]")
        return value

    def not_implemented(self) -> list[tuple[str, str]]:
        """(parameter, why) for each parameter set to a value no backend implements."""
        return []


class CompletionRequest(_OpenAIRequest):
    prompt: Text | list[int] | list[Text] | list[list[int]]
    suffix: Text | None = None  # fill-in-the-middle: the text after the cursor
    logprobs: int | None = Field(default=None, ge=0, le=MAX_LOGPROBS)
    max_tokens: int | None = Field(default=16, ge=1)
    echo: bool = False  # the prompt's text starts each choice
    best_of: int | None = Field(default=None, ge=1)

    def prompts(self) -> list[str] | list[list[int]]:
        """The prompts of the request: one text or token-id list per prompt."""
        prompt = self.prompt
        if isinstance(prompt, str) or (prompt and isinstance(prompt[0], int)):
            return [prompt]
        return list(prompt)

    def not_implemented(self) -> list[tuple[str, str]]:
        refused = []
        if self.best_of not in (None, self.n):
            refused.append(("best_of", "best_of other than n is not supported: no backend ranks extra samples"))
        if self.echo and self.suffix is not None:
            refused.append(("echo", "echo is not supported with suffix"))
        return refused


class ContentPart(BaseModel):
    """One part of a message's content; a text model reads text parts only."""

    model_config = ConfigDict(extra="ignore")

    type: str
    text: Text = ""

    @field_validator("type")
    @classmethod
    def _text_only(cls, value):
        if value != "text":
            raise ValueError(f"this model reads text only: content parts of type {value[:40]!r} are not supported")
        return value


class ToolCallFunction(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    arguments: str  # JSON, as the model wrote it


class ToolCall(BaseModel):
    """A tool call an earlier assistant turn made, sent back with the conversation."""

    model_config = ConfigDict(extra="ignore")

    id: str
    type: Literal["function"] = "function"
    function: ToolCallFunction


class ChatMessage(BaseModel):
    """A message as the API defines it. Other fields (an earlier response's `refusal`, `annotations`)
    are ignored, so a client may send a response's message back unchanged."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None  # assistant only
    tool_call_id: str | None = None  # tool only: the call this message answers

    @model_validator(mode="after")
    def _fields_of_the_role(self):
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError(f"a {self.role} message needs content")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("tool messages, and only they, carry the tool_call_id they answer")
        return self

    def text(self) -> str | None:
        if self.content is None or isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)

    def template_role(self) -> str:
        """The role the chat template sees: `developer` instructions are the template's system prompt."""
        return "system" if self.role == "developer" else self.role

    def for_template(self) -> dict:
        """The message as Hugging Face chat templates read it."""
        message = {"role": self.template_role(), "content": self.text()}
        if self.name is not None:
            message["name"] = self.name
        if self.tool_calls:
            message["tool_calls"] = [call.model_dump() for call in self.tool_calls]
        if self.tool_call_id is not None:
            message["tool_call_id"] = self.tool_call_id
        return message


class ChatCompletionRequest(_OpenAIRequest):
    messages: list[ChatMessage]
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_LOGPROBS)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    # Defined by the API and refused unless off: no backend calls tools, hears or speaks, or reasons.
    tools: list[dict] | None = None
    tool_choice: str | dict | None = None
    parallel_tool_calls: bool | None = None
    functions: list[dict] | None = None
    function_call: str | dict | None = None
    modalities: list[str] | None = None
    audio: dict | None = None
    prediction: dict | None = None
    web_search_options: dict | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None

    def not_implemented(self) -> list[tuple[str, str]]:
        refused = []
        no_tools = "model_service runs no tool calls: no backend parses them from the model's output"
        if self.tools:
            refused.append(("tools", no_tools))
        if self.tool_choice not in (None, "none", "auto"):
            refused.append(("tool_choice", no_tools))
        if self.parallel_tool_calls is not None:
            refused.append(("parallel_tool_calls", no_tools))
        if self.functions:
            refused.append(("functions", no_tools))
        if self.function_call not in (None, "none", "auto"):
            refused.append(("function_call", no_tools))
        if self.modalities not in (None, ["text"]):
            refused.append(("modalities", "this model writes text only"))
        for name in ("audio", "prediction", "web_search_options", "reasoning_effort", "verbosity"):
            if getattr(self, name) is not None:
                refused.append((name, f"{name} is not supported: no backend implements it for this model"))
        return refused


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: Text | list[Text]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"  # base64: little-endian float32 bytes
    dimensions: int | None = Field(default=None, ge=1)  # only the embedder's own size is served
    user: str | None = None  # accepted and ignored


class AdapterRequest(BaseModel):
    """vLLM's runtime LoRA routes: /v1/load_lora_adapter and /v1/unload_lora_adapter."""

    model_config = ConfigDict(extra="ignore")

    lora_name: str = Field(min_length=1, max_length=100)
    lora_path: str | None = None


# --- what the HTTP layer hands a backend, and gets back -------------------------------------

@dataclass(frozen=True)
class JsonConstraint:
    schema: dict | None = None  # None: any JSON object


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
    prompt_logprobs: int | None = None  # the same per prompt token (echo with logprobs); None: none
    presence_penalty: float = 0.0  # subtracted from a token's logit once it is in the output
    frequency_penalty: float = 0.0  # subtracted once per time a token is in the output
    repetition_penalty: float = 1.0  # divides positive (multiplies negative) logits of prompt and output tokens
    top_k: int = 0  # sample among the k most likely tokens; 0: all
    min_p: float = 0.0  # drop tokens less likely than min_p times the most likely one
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias added to its logit)
    json: JsonConstraint | None = None  # the output must be JSON (structured outputs)


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
    logprob: float | None  # None: the first prompt token, which nothing before it predicts


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
