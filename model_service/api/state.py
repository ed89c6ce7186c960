"""Everything the routes share: the checkpoint, the backend once started, admission, metrics."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from model_service.admission import Admission
from model_service.backends import (AdapterHosting, AdapterServing, Backend, Embedder, backend_start, embedder_create,
                                    tuned_embedders_create)
from model_service.checkpoint import Checkpoint
from model_service.config import ServiceConfig
from model_service.errors import ModelNotFound, NotReady
from model_service.metrics import Metrics

logger = logging.getLogger(__name__)


class ServiceState:
    def __init__(self, config: ServiceConfig):
        self.config = config
        self.metrics = Metrics()
        self.admission = Admission(max_running=config.max_running, max_waiting=config.max_waiting,
                                   retry_after=config.retry_after)
        self.metrics.running.set_function(lambda: self.admission.running)
        self.metrics.waiting.set_function(lambda: self.admission.waiting)
        self.embedder = embedder_create() if config.embeddings else None
        self.tuned_embedders = tuned_embedders_create(config.embedders_dir, config.max_tuned_embedders)
        self.checkpoint: Checkpoint | None = None
        self._backend: Backend | None = None
        self.adapter_hosting = AdapterHosting(config.adapters_dir)
        self.degraded_reason = ""
        self._tokenizer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenizer")
        self.status = "starting"  # then "ok" or "error"
        self.error = ""

    async def start(self) -> None:
        """Load the checkpoint and start the backend; /health shows progress and failure."""
        try:
            self.checkpoint = await asyncio.to_thread(
                Checkpoint.load, self.config.checkpoint, name=self.config.served_model_name,
                max_model_len=self.config.max_model_len, fim_format=self.config.fim_format)
            started = await backend_start(self.checkpoint, self.config)
            self._backend = started.backend
            self.degraded_reason = started.degraded_reason
            self.admission.max_running = min(self.config.max_running, started.backend.info().max_running)
            if self.embedder is not None:
                await asyncio.to_thread(self.embedder.load)
            self.status = "ok"
            logger.info("serving %s with the %s backend", self.checkpoint.name, started.backend.info().name)
        except Exception as error:
            self.status, self.error = "error", f"{type(error).__name__}: {error}"
            logger.exception("model_service failed to start")

    async def stop(self) -> None:
        if self._backend is not None:
            await self._backend.stop()
        await self.adapter_hosting.stop()
        self._tokenizer_thread.shutdown(wait=False, cancel_futures=True)

    @property
    def backend(self) -> Backend:
        """The started backend; NotReady (503) while the checkpoint loads or after it failed to."""
        if self._backend is None or self.status != "ok":
            if self.status == "starting":
                raise NotReady("The model is still loading; try again shortly.")
            raise NotReady(f"The model failed to load: {self.error}", retry_after=None)
        return self._backend

    async def tokenize(self, encode: Callable[[], list[int]]) -> list[int]:
        """Run a tokenization off the event loop, so a long prompt never stalls other streams.

        One thread: a fast tokenizer is not safe to call from several threads at once."""
        return await asyncio.get_running_loop().run_in_executor(self._tokenizer_thread, encode)

    def resolve_model(self, model: str | None) -> str | None:
        """The adapter to use for `model`, or None for the base model."""
        base = self.backend.checkpoint.name
        if not model or model == base:
            return None
        if model in self.adapters():
            return model
        raise ModelNotFound(f"The model '{model}' does not exist; see /v1/models.", param="model")

    # --- LoRA adapters: model_service.backends.adapter_hosting decides which backend hosts them ------
    @property
    def adapter_strategy(self) -> str:
        return self.adapter_hosting.strategy

    def adapter_serving(self) -> dict[str, dict]:
        """Per adapter: merged-vllm, peft or peft-beside, in words, and its folder."""
        return self.adapter_hosting.serving()

    def adapters(self) -> list[str]:
        return self.adapter_hosting.names(self.backend)

    def backend_for(self, adapter: str | None) -> Backend:
        return self.adapter_hosting.backend_for(self.backend, adapter)

    def adapter_path(self, path: str) -> Path:
        return self.adapter_hosting.folder(path)

    async def adapter_load(self, name: str, path: str) -> AdapterServing:
        return await self.adapter_hosting.load(self.backend, name, path)

    async def adapter_unload(self, name: str) -> None:
        await self.adapter_hosting.unload(self.backend, name)

    async def embedding_model(self, model: str | None) -> Embedder:
        """The base embedder for `model` None or its name, else the tuned embedder of that name (loaded
        off the event loop on first use)."""
        if self.embedder is None:
            raise ModelNotFound("embeddings are not served by this instance", param="model")
        if self.embedder.serves(model):
            return self.embedder
        return await self.tuned_embedders.get(model)
