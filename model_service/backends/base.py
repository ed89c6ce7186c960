"""The interface every generation backend implements; the HTTP layer sees only this."""
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
