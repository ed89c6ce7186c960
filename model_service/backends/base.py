"""The interfaces every generation backend and every embedder implement; the HTTP layer sees only these."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass

from model_service.checkpoint import Checkpoint
from model_service.protocol import ChoiceDelta, GenerationRequest


@dataclass(frozen=True)
class BackendInfo:
    name: str  # "vllm" or "transformers"
    device: str  # "cpu", "cuda"
    dtype: str  # "bfloat16", "float32"
    max_running: int  # requests generated concurrently; more wait in model_service's queue
    features: tuple[str, ...] = ()  # e.g. "continuous_batching", "prefix_caching"


class Backend(ABC):
    def __init__(self, checkpoint: Checkpoint):
        self.checkpoint = checkpoint

    @abstractmethod
    async def start(self) -> None:
        """Load the weights; raise when this backend cannot run here."""

    @abstractmethod
    async def stop(self) -> None:
        """Free the weights and any worker processes or threads."""

    @abstractmethod
    def info(self) -> BackendInfo: ...

    @abstractmethod
    def generate(self, request: GenerationRequest) -> AsyncIterator[list[ChoiceDelta]]:
        """Yield the new output of each choice as it is produced, until every choice finishes.

        Closing the iterator early (client gone) must free the request in the engine.
        """

    @abstractmethod
    def unfinished_requests(self) -> int:
        """Requests the engine still holds (generating or queued inside it)."""

    def adapters(self) -> list[str]:
        """Names of the LoRA adapters loaded and servable."""
        return []

    @property
    def serves_adapters(self) -> bool:
        """Whether this backend can run LoRA adapters for its checkpoint itself."""
        return False

    async def load_adapter(self, name: str, path: str) -> None:
        raise NotImplementedError

    async def unload_adapter(self, name: str) -> None:
        raise NotImplementedError


class Embedder(ABC):
    """Sentence embeddings for /v1/embeddings."""

    model_id: str  # its id in /v1/models and in responses
    aliases: tuple[str, ...] = ()  # other ids a request may name it by

    def serves(self, model: str | None) -> bool:
        """Whether a request naming `model` (None: no model named) is for this embedder."""
        return not model or model in (self.model_id, *self.aliases)

    @property
    @abstractmethod
    def loaded(self) -> bool: ...

    @abstractmethod
    def load(self) -> None:
        """Load the weights (blocking; safe to call again)."""

    @abstractmethod
    async def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """Unit-length vectors for `texts` and the number of tokens read."""
