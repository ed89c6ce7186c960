"""The one way apps reach model_service.

Every call has a timeout, connection failures are retried a few times with back-off, errors are
typed (the caller decides between a fallback, a 503 or a retry), and a chat stream
(`achat_stream`) is an async iterator of text deltas for the event loop (an ASGI view streaming to its
client; a thread collects it with async_to_sync), where closing the iterator hangs up on
model_service, which aborts the generation. `acomplete` is a completion on the event loop: a request
thread under ASGI calls it with async_to_sync, so that when its client hangs up (Django cancels the
request, and asgiref the coroutine it started) Django hangs up on model_service too.
"""
from __future__ import annotations

import asyncio
import codecs
import functools
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
from django.conf import settings

logger = logging.getLogger(__name__)

BASE_EMBEDDER = "all-MiniLM-L6-v2"  # model_service's embedding model when no tuned one is named


class ModelServiceError(Exception):
    """model_service answered with an error or not at all."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class ModelServiceUnavailable(ModelServiceError):
    """model_service could not be reached (down, starting, or timed out)."""


class ModelServiceOverloaded(ModelServiceError):
    """model_service refused the request because its queue is full (HTTP 429)."""

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message, status=429)
        self.retry_after = retry_after


class ModelServiceRejected(ModelServiceError):
    """model_service refused the request as invalid (4xx other than 429); `code` is its error code
    (for instance "context_length_exceeded")."""

    def __init__(self, message: str, *, status: int, code: str | None = None):
        super().__init__(message, status=status)
        self.code = code


@dataclass(frozen=True)
class Completion:
    text: str  # the first choice
    finish_reason: str | None
    model: str
    usage: dict[str, int] = field(default_factory=dict)
    choices: tuple[str, ...] = ()  # every choice's text, in index order (n > 1)
    logprobs: tuple[dict | None, ...] = ()  # every choice's OpenAI logprobs object (None unless asked for)


class ModelServiceClient:
    def __init__(self, *, base_url: str, api_key: str = "", timeout: float = 30.0,
                 connect_retries: int = 2, retry_backoff: float = 0.2):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.connect_retries = connect_retries
        self.retry_backoff = retry_backoff
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    # --- reads -----------------------------------------------------------------------------
    def health(self, *, timeout: float = 2.0) -> dict[str, Any]:
        return self._request("GET", "/health", timeout=timeout)

    def models(self) -> list[str]:
        return [model["id"] for model in self._request("GET", "/v1/models")["data"]]

    def load_adapter(self, *, name: str, path: str) -> dict:
        return self._request("POST", "/v1/load_lora_adapter", json={"lora_name": name, "lora_path": path},
                             timeout=max(self.timeout, 120))

    def unload_adapter(self, *, name: str) -> dict:
        return self._request("POST", "/v1/unload_lora_adapter", json={"lora_name": name})

    def embed(self, texts: list[str], model: str | None = None) -> list[list[float]]:
        """Unit vectors for `texts`, in their order, from the embedding model `model` (a tuned embedder's
        name; None: the base all-MiniLM-L6-v2)."""
        body = self._request("POST", "/v1/embeddings", json={"input": texts, "model": model or BASE_EMBEDDER})
        return [item["embedding"] for item in sorted(body["data"], key=lambda item: item["index"])]

    # --- generation ------------------------------------------------------------------------
    def complete(self, *, prompt: str, model: str | None = None, **params: Any) -> Completion:
        body = self._request("POST", "/v1/completions", json=self._body(prompt=prompt, model=model, **params))
        return self._completion(body)

    @staticmethod
    def _completion(body: dict[str, Any]) -> Completion:
        choices = sorted(body["choices"], key=lambda choice: choice["index"])
        return Completion(choices[0]["text"], choices[0]["finish_reason"], body["model"], body.get("usage", {}),
                          tuple(choice["text"] for choice in choices), tuple(choice.get("logprobs") for choice in choices))

    async def acomplete(self, *, prompt: str, model: str | None = None, **params: Any) -> Completion:
        """`complete` without connection retries (a completion that waits is stale), cancellable: cancelling
        it closes the connection, and model_service stops generating."""
        body = self._body(prompt=prompt, model=model, **params)
        with self._unavailable_on_transport_errors():
            async with httpx.AsyncClient(headers=self._headers, timeout=self.timeout, verify=_ssl_context()) as client:
                response = await client.post(self.base_url + "/v1/completions", json=body)
        self._raise_for_status(response)
        return self._completion(response.json())

    def chat(self, *, messages: list[dict[str, str]], model: str | None = None, **params: Any) -> Completion:
        body = self._request("POST", "/v1/chat/completions",
                             json=self._body(messages=messages, model=model, **params))
        choice = body["choices"][0]
        return Completion(choice["message"]["content"], choice["finish_reason"], body["model"],
                          body.get("usage", {}))

    async def achat_stream(self, *, messages: list[dict[str, str]], model: str | None = None,
                           **params: Any) -> AsyncIterator[str]:
        """The generated text as model_service sends it, on the event loop: each delta, or the deltas that
        arrived together joined into one. Closing the iterator early (the caller's own client left) closes
        the connection, and model_service aborts the generation."""
        body = self._body(messages=messages, model=model, stream=True, **params)
        async with aclosing(self._astream("/v1/chat/completions", body)) as batches:
            async for chunks in batches:
                text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks
                               if chunk["choices"])
                if text:
                    yield text

    # --- plumbing --------------------------------------------------------------------------
    @staticmethod
    def _body(*, model: str | None, **params: Any) -> dict[str, Any]:
        body = {key: value for key, value in params.items() if value is not None}
        if model:
            body["model"] = model
        return body

    def _request(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
        for attempt in range(self.connect_retries + 1):
            try:
                response = httpx.request(method, self.base_url + path, headers=self._headers, verify=_ssl_context(),
                                         timeout=timeout or self.timeout, **kwargs)
            except httpx.ConnectError as error:
                if attempt == self.connect_retries:
                    raise ModelServiceUnavailable(f"model_service at {self.base_url} is not reachable: {error}")
                time.sleep(self.retry_backoff * 2**attempt)
                continue
            except httpx.TimeoutException as error:
                raise ModelServiceUnavailable(f"model_service did not answer in time: {error!r}")
            except httpx.HTTPError as error:
                raise ModelServiceUnavailable(f"model_service connection failed: {error!r}")
            self._raise_for_status(response)
            return response.json()
        raise AssertionError("unreachable")

    async def _astream(self, path: str, body: dict[str, Any]) -> AsyncIterator[list[dict[str, Any]]]:
        """model_service's stream chunks, a list per network read (several tokens of a stream that arrived
        together are relayed as one).

        Read with aiohttp rather than httpx: a stream costs the web process CPU for every token it relays,
        and httpx's async transport spends about 1.1 ms of CPU per token read where aiohttp spends 0.3 ms
        (measured on 2 busy cores); at 16 agents streaming at once that CPU is what the next agent's first
        token waits for."""
        timeout = aiohttp.ClientTimeout(total=None, connect=self.timeout, sock_read=self.timeout)
        with self._unavailable_on_transport_errors():
            async with aiohttp.ClientSession(headers=self._headers, timeout=timeout, trust_env=True) as session:
                async with session.post(self.base_url + path, json=body, ssl=_ssl_context()) as response:
                    if response.status >= 400:
                        self._raise_for_status(httpx.Response(response.status, headers=dict(response.headers),
                                                              content=await response.read()))
                    decoder, unfinished = codecs.getincrementaldecoder("utf-8")(), ""
                    async for data in response.content.iter_any():  # what each network read brought
                        *lines, unfinished = (unfinished + decoder.decode(data)).split("\n")
                        chunks = [_stream_chunk(line.rstrip("\r")) for line in lines]
                        ended = _DONE in chunks
                        if ended:
                            chunks = chunks[:chunks.index(_DONE)]
                        if chunks := [chunk for chunk in chunks if chunk is not None]:
                            yield chunks
                        if ended:
                            return

    @contextmanager
    def _unavailable_on_transport_errors(self) -> Iterator[None]:
        """The timeouts and connection failures of an async call (httpx's or, for a stream, aiohttp's), as
        ModelServiceUnavailable."""
        try:
            yield
        except (httpx.TimeoutException, asyncio.TimeoutError) as error:
            raise ModelServiceUnavailable(f"model_service did not answer in time: {error!r}")
        except (httpx.HTTPError, aiohttp.ClientError) as error:
            raise ModelServiceUnavailable(f"model_service at {self.base_url} is not reachable: {error!r}")

    @staticmethod
    def _raise_for_status(response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        try:
            error = response.json()["error"]
            message, code = error["message"], error.get("code")
        except (ValueError, KeyError, TypeError, AttributeError):
            message, code = response.text[:500], None
        if response.status_code == 429:
            raise ModelServiceOverloaded(message, retry_after=float(response.headers.get("Retry-After", "1")))
        if response.status_code < 500:
            raise ModelServiceRejected(message, status=response.status_code, code=code)
        raise ModelServiceError(message, status=response.status_code)


_DONE = object()


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default TLS settings, built once: every client httpx makes builds them again otherwise,
    loading the CA bundle (measured: 180 ms on a busy 2-core machine, on the event loop for a stream)."""
    return httpx.create_ssl_context()


def _stream_chunk(line: str) -> dict[str, Any] | object | None:
    """One line of model_service's Server-Sent Events: a chunk, _DONE at the end, None for anything else."""
    if not line.startswith("data: "):
        return None
    data = line[len("data: "):]
    if data == "[DONE]":
        return _DONE
    chunk = json.loads(data)
    if "error" in chunk:
        raise ModelServiceError(chunk["error"].get("message", "stream failed"))
    return chunk


_ADAPTERS_MISSING: set[str] = set()  # warned about; warned again once they were seen loaded
_MODELS_SEEN: dict[str, tuple[float, list[str]]] = {}  # base URL -> (monotonic time asked, model ids)


def adapter_or_base(client: ModelServiceClient, adapter: str, *, max_age_s: float = 0.0) -> str | None:
    """`adapter` when model_service has it loaded, else None (the base model), with a warning logged
    once (completions come at every keystroke) until the adapter is loaded again. With `max_age_s`, a
    list of models asked for at most that long ago is reused: a round trip saved per request, at the
    price of noticing a loaded or unloaded adapter that much later."""
    seen = _MODELS_SEEN.get(client.base_url)
    if seen is not None and time.monotonic() - seen[0] < max_age_s:
        models = seen[1]
    else:
        models = client.models()
        _MODELS_SEEN[client.base_url] = (time.monotonic(), models)
    if adapter in models:
        _ADAPTERS_MISSING.discard(adapter)
        return adapter
    if adapter not in _ADAPTERS_MISSING:
        _ADAPTERS_MISSING.add(adapter)
        logger.warning("adapter %r is not loaded in model_service; using the base model", adapter)
    return None


def get_client(**overrides: Any) -> ModelServiceClient:
    """A client configured from settings (MODEL_SERVICE_URL, MODEL_SERVICE_API_KEY, ...)."""
    options = {
        "base_url": settings.MODEL_SERVICE_URL,
        "api_key": settings.MODEL_SERVICE_API_KEY,
        "timeout": settings.MODEL_SERVICE_TIMEOUT,
    }
    options.update(overrides)
    return ModelServiceClient(**options)
