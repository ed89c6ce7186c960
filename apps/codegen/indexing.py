"""A repository's index on disk: which of its files may be read, the BM25 index over its chunks and the
match index over its files (apps/codegen/matching.py: a base and a delta of the files changed since),
built together into a folder swapped in whole, and searched through a per-process cache keyed by
`Repository.index_version` and that folder). The service that (re)indexes a repository is
`apps.codegen.services.repository_index`.

Only files that resolve inside the repository's folder are read (a symbolic link out of it is
skipped and named in `Repository.skipped`), and the number and bytes of files are bounded.
"""
from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import bm25s
from django.conf import settings

from apps.codegen.languages import language_for_path
from apps.codegen.matching import Continuation, LayeredMatchIndex, layered_index_write, match_index_exists
from apps.codegen.parsing import code_tokens
from apps.codegen.models import Chunk, Repository
from apps.core.caches import VersionedCache, path_stamp
from apps.core.index_dirs import replace_directory

MAX_FILE_BYTES = 1_000_000
SKIPPED_DIRECTORIES = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", "build", "dist",
                       "target", "vendor", ".tox", ".mypy_cache", ".pytest_cache"}


def repositories_root() -> Path:
    return settings.SUITE_DATA_DIR / "codegen"


def index_directory(repository_id: int) -> Path:
    return repositories_root() / "indexes" / f"repo_{repository_id}"


def uploads_root() -> Path:
    """Where uploaded repositories are unpacked, one folder each."""
    return repositories_root() / "repos"


def uploaded_folder(repository_id: int) -> Path:
    return uploads_root() / f"repo_{repository_id}"


def _walk(root: Path):
    """(folder, linked folder names, file names) under `root`, in a stable order; skipped folders and
    symbolic links to folders are not entered."""
    for directory, folders, names in os.walk(root):  # followlinks=False
        here = Path(directory)
        linked = sorted(name for name in folders if (here / name).is_symlink())
        folders[:] = sorted(name for name in folders if name not in SKIPPED_DIRECTORIES and not name.startswith(".")
                            and name not in linked)
        yield here, linked, sorted(names)


def _size_or_problem(root: Path, real: Path) -> int | str:
    """The size of the resolved file `real`, or why it may not be indexed."""
    if root not in real.parents:
        return "a link that resolves outside the repository"
    try:
        info = real.stat()
    except OSError:
        return "unreadable (a broken link?)"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    return info.st_size if info.st_size <= MAX_FILE_BYTES else f"larger than {MAX_FILE_BYTES:,} bytes"


def source_files(root: Path) -> tuple[list[tuple[str, Path]], list[dict]]:
    """(relative path, real file) of every file of a supported language that resolves inside `root`, within
    CODEGEN_INDEX_MAX_FILES and CODEGEN_INDEX_MAX_BYTES; and the files left out, each with the reason."""
    root = root.resolve()
    found: list[tuple[str, Path]] = []
    skipped: list[dict] = []
    total_bytes = 0
    for here, linked, names in _walk(root):
        skipped += [{"path": str((here / name).relative_to(root)), "reason": "a link to a folder (not followed)"}
                    for name in linked]
        for name in filter(language_for_path, names):
            relative, real = str((here / name).relative_to(root)), (here / name).resolve()
            size = _size_or_problem(root, real)
            if isinstance(size, str):
                skipped.append({"path": relative, "reason": size})
                continue
            if len(found) == settings.CODEGEN_INDEX_MAX_FILES or total_bytes + size > settings.CODEGEN_INDEX_MAX_BYTES:
                skipped.append({"path": relative, "reason": (
                    f"the index holds at most {settings.CODEGEN_INDEX_MAX_FILES:,} files and "
                    f"{settings.CODEGEN_INDEX_MAX_BYTES:,} bytes (CODEGEN_INDEX_MAX_FILES, CODEGEN_INDEX_MAX_BYTES): "
                    "this file and the rest were skipped")})
                return found, skipped
            found.append((relative, real))
            total_bytes += size
    return found, skipped


def build_chunk_index(repository_id: int, sources: list[tuple[str, str]]) -> str:
    """BM25 over the repository's chunks, saved with the chunk ids it returns, and the match index over
    `sources` ((relative path, text) of its files), updated from the previous one for the files that changed.
    Returns how the match index was updated ("delta", or "base" where it was rebuilt whole)."""
    chunk_ids, texts = [], []
    for chunk_id, text in Chunk.objects.filter(file__repository_id=repository_id).values_list("id", "text"):
        chunk_ids.append(chunk_id)
        texts.append(code_tokens(text) or ["_"])
    retriever = bm25s.BM25()
    retriever.index(texts or [["_"]], show_progress=False)
    previous = index_directory(repository_id)
    updated = []

    def write(directory: Path) -> None:
        retriever.save(str(directory / "bm25"), show_progress=False)
        (directory / "chunk_ids.json").write_text(json.dumps(chunk_ids))
        updated.append(layered_index_write(directory, sources, previous))

    replace_directory(previous, write)
    return updated[0]


def _chunk_index_load(directory: Path) -> tuple[bm25s.BM25, list[int]]:
    return (bm25s.BM25.load(str(directory / "bm25"), show_progress=False),
            json.loads((directory / "chunk_ids.json").read_text()))


_indexes: VersionedCache[tuple[bm25s.BM25, list[int]]] = VersionedCache()  # repository id -> (BM25, chunk ids)
_match_indexes: VersionedCache[LayeredMatchIndex] = VersionedCache()  # repository id -> its match index
Loaded = TypeVar("Loaded")


def _loaded(cache: VersionedCache[Loaded], repository: Repository, directory: Path,
            load: Callable[[Path], Loaded]) -> Loaded:
    """The repository's index from `cache`, read again from `directory` once a reindex has replaced it."""
    return cache.get(repository.id, (repository.index_version, path_stamp(directory)), lambda: load(directory))


def chunk_search(repository: Repository, query: str, k: int) -> list[tuple[int, float]]:
    """(chunk id, BM25 score) of the chunks most like `query`."""
    directory = index_directory(repository.id)
    if not (directory / "chunk_ids.json").exists():
        return []
    retriever, chunk_ids = _loaded(_indexes, repository, directory, _chunk_index_load)
    tokens = [token for token in code_tokens(query) if token in retriever.vocab_dict]
    if not tokens or not chunk_ids:
        return []
    documents, scores = retriever.retrieve([tokens], k=min(k, len(chunk_ids)), show_progress=False)
    return [(chunk_ids[d], float(s)) for d, s in zip(documents[0], scores[0]) if s > 0]


def repository_continuations(repository: Repository, prefix: str, filepath: str) -> list[Continuation]:
    """Continuations of the longest earlier occurrence of the end of `prefix` in the repository's files
    other than `filepath`; none before the repository has a match index."""
    directory = index_directory(repository.id)
    if not match_index_exists(directory):
        return []
    index = _loaded(_match_indexes, repository, directory, LayeredMatchIndex.load)
    return index.continuations(prefix, exclude_filepath=filepath)
