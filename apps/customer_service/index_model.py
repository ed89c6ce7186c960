"""Which embedding model an index's vectors came from, kept in the index directory itself.

Queries are embedded with the model the index records, not the one the knowledge base names now: between
a tuning's switch and the end of the reindex that follows it, the old index stays in use with its own
model, and the new one takes over whole (the directory is swapped atomically)."""
from __future__ import annotations

from pathlib import Path

INDEX_MODEL_FILE = "embedding_model.txt"


def index_model_write(directory: Path, model: str) -> None:
    (directory / INDEX_MODEL_FILE).write_text(model)


def index_model_read(directory: Path) -> str:
    """The model name (blank: the base model; so is an index written before models were recorded)."""
    path = directory / INDEX_MODEL_FILE
    return path.read_text().strip() if path.exists() else ""
