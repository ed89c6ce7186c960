"""The backends package: the interfaces, backend selection (`vllm`, `transformers`, or `auto`: vLLM, else
transformers with the reason), the adapter-hosting policy (merged checkpoints in engines of their own, PEFT) and the embedder. The HTTP layer imports only this."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from model_service.backends.adapter_hosting import AdapterHosting, AdapterServing
from model_service.backends.base import Backend, BackendInfo, Embedder
from model_service.checkpoint import Checkpoint
from model_service.config import ServiceConfig

logger = logging.getLogger(__name__)

BACKEND_CHOICES = ("auto", "vllm", "transformers")


@dataclass(frozen=True)
class StartedBackend:
    backend: Backend
    degraded_reason: str  # empty unless the fallback is serving


async def backend_start(checkpoint: Checkpoint, config: ServiceConfig) -> StartedBackend:
    """The backend `config.backend` names, started; `auto` falls back to transformers when vLLM cannot start."""
    name = config.backend
    if name not in BACKEND_CHOICES:
        raise ValueError(f"backend must be one of {BACKEND_CHOICES}, not {name!r}")
    reason = "transformers backend chosen in the configuration: no batching across requests"
    if name in ("auto", "vllm"):
        from model_service.backends.vllm_backend import VllmBackend, VllmOptions

        backend = VllmBackend(checkpoint, VllmOptions(
            max_running=config.max_running, enforce_eager=config.enforce_eager,
            gpu_memory_utilization=config.gpu_memory_utilization,
            tensor_parallel_size=config.tensor_parallel_size, quantization=config.quantization))
        try:
            await backend.start()
            return StartedBackend(backend, "")
        except Exception as error:
            await backend.stop()
            if name == "vllm":
                raise
            reason = f"vLLM could not start ({type(error).__name__}: {error}); serving with transformers"
            logger.warning(reason)
    from model_service.backends.transformers_backend import TransformersBackend

    if config.tensor_parallel_size > 1 or config.quantization:
        reason += " (on one device, unquantized: tensor parallelism and quantization are vLLM's)"
    backend = TransformersBackend(checkpoint)
    await backend.start()
    return StartedBackend(backend, reason)


def embedder_create() -> Embedder:
    """The embedder /v1/embeddings serves: all-MiniLM-L6-v2 with sentence-transformers (loaded by `load()`)."""
    from model_service.backends.sentence_transformers_embedder import SentenceTransformersEmbedder

    return SentenceTransformersEmbedder()


def tuned_embedders_create(embedders_dir: Path | None, max_loaded: int):
    """The tuned embedders /v1/embeddings serves by name from `embedders_dir` (None: none), an LRU of
    `max_loaded` (see model_service.backends.sentence_transformers_embedder.TunedEmbedders)."""
    from model_service.backends.sentence_transformers_embedder import TunedEmbedders

    return TunedEmbedders(embedders_dir, max_loaded)


__all__ = ["AdapterHosting", "AdapterServing", "Backend", "BackendInfo", "BACKEND_CHOICES", "Embedder", "StartedBackend",
           "backend_start", "embedder_create",
           "tuned_embedders_create"]
