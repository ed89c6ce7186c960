"""Repository indexing: every supported file parsed with tree-sitter into definitions, imports and
chunks; files whose content hash did not change are skipped; a BM25 index over the chunks.

Only files that resolve inside the repository's folder are read (a symbolic link out of it is
skipped and named in `Repository.skipped`), and the number and bytes of files are bounded.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
import threading
from pathlib import Path

import bm25s
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.roles import Role
from apps.codegen import parsing
from apps.codegen.languages import language_for_path
from apps.codegen.models import Chunk, Definition, Repository, SourceFile

logger = logging.getLogger(__name__)
MAX_FILE_BYTES = 1_000_000
SKIPPED_DIRECTORIES = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", "build", "dist",
                       "target", "vendor", ".tox", ".mypy_cache", ".pytest_cache"}
MAX_SKIPPED_REPORTED = 100  # skipped files named on the repository (the count is in the task's result)
PROGRESS_EVERY = 25  # files between progress updates
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def code_tokens(text: str) -> list[str]:
    """Identifiers, also split at underscores and camelCase humps: `parseConfig` → parseconfig, parse, config."""
    tokens = []
    for identifier in IDENTIFIER.findall(text):
        tokens.append(identifier.lower())
        parts = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", identifier.replace("_", " "))
        if len(parts) > 1:
            tokens.extend(part.lower() for part in parts)
    return tokens


def repositories_root() -> Path:
    return settings.SUITE_DATA_DIR / "codegen"


def index_directory(repository_id: int) -> Path:
    return repositories_root() / "indexes" / f"repo_{repository_id}"


FOLDER_NOT_ALLOWED = ("This repository names a folder on the server, which only an admin may register; "
                      "upload it as an archive instead.")


def folder_allowed(repository: Repository) -> bool:
    """A developer's repository is read only from where their upload was unpacked; other folders were registered
    by an admin (under CODEGEN_REPOSITORY_ROOTS) or by an operator's command. Checked again at every (re)index,
    so that a folder registered before these rules is never read again."""
    owner = repository.created_by
    if owner is None or owner.role == Role.ADMIN:
        return True
    return Path(repository.path).resolve().is_relative_to((repositories_root() / "repos").resolve())


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


def _claim(repository_id: int) -> Repository | None:
    with transaction.atomic():
        repository = Repository.objects.select_for_update().filter(id=repository_id).first()
        if repository is None or repository.status == Repository.Status.INDEXING and \
                repository.updated_at > timezone.now() - timezone.timedelta(minutes=30):
            return None
        repository.status = Repository.Status.INDEXING
        repository.error = ""
        repository.save(update_fields=["status", "error", "updated_at"])
        return repository


@transaction.atomic
def _store_file(repository: Repository, relative: str, language: str, source: str, digest: str) -> None:
    SourceFile.objects.filter(repository=repository, path=relative).delete()
    record = SourceFile.objects.create(repository=repository, path=relative, language=language, content_hash=digest,
                                       lines=source.count("\n") + 1, imports=parsing.imports(language, source))
    Definition.objects.bulk_create([
        Definition(file=record, name=d.name[:300], kind=d.kind, signature=d.signature, docstring=d.docstring,
                   start_line=d.start_line, end_line=d.end_line, text=d.text)
        for d in parsing.definitions(language, source)])
    Chunk.objects.bulk_create([Chunk(file=record, start_line=c.start_line, end_line=c.end_line, text=c.text)
                               for c in parsing.chunks(source)])


def repository_index(*, repository_id: int) -> dict:
    """(Re)index a repository; only files whose content changed are parsed again. Idempotent."""
    repository = _claim(repository_id)
    if repository is None:
        return {"status": "busy-or-gone"}
    try:
        if not folder_allowed(repository):
            raise PermissionError(FOLDER_NOT_ALLOWED)
        root = Path(repository.path)
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is not a folder")
        files, skipped = source_files(root)
        known = dict(SourceFile.objects.filter(repository=repository).values_list("path", "content_hash"))
        Repository.objects.filter(id=repository.id).update(files_total=len(files), files_done=0)
        parsed = unchanged = lines = 0
        for done, (relative, path) in enumerate(files, start=1):
            with open(path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES)  # a file grown since it was listed stays bounded
            digest = hashlib.sha256(data).hexdigest()
            source = data.decode("utf-8", "replace")
            lines += source.count("\n") + 1
            if known.pop(relative, None) == digest:
                unchanged += 1
            else:
                _store_file(repository, relative, language_for_path(relative).name, source, digest)
                parsed += 1
            if done % PROGRESS_EVERY == 0:
                Repository.objects.filter(id=repository.id).update(files_done=done)
        SourceFile.objects.filter(repository=repository, path__in=list(known)).delete()  # files gone from disk
        build_chunk_index(repository.id)
        Repository.objects.filter(id=repository.id).update(
            status=Repository.Status.READY, files_done=len(files), lines=lines, indexed_at=timezone.now(),
            index_version=F("index_version") + 1, skipped=skipped[:MAX_SKIPPED_REPORTED])
        return {"status": "ready", "files": len(files), "parsed": parsed, "unchanged": unchanged,
                "removed": len(known), "lines": lines, "skipped": len(skipped)}
    except Exception as error:
        logger.exception("indexing repository %s failed", repository_id)
        Repository.objects.filter(id=repository_id).update(status=Repository.Status.FAILED, error=str(error)[:2000])
        return {"status": "failed", "error": str(error)}


def build_chunk_index(repository_id: int) -> None:
    """BM25 over the repository's chunks, saved with the chunk ids it returns."""
    chunk_ids, texts = [], []
    for chunk_id, text in Chunk.objects.filter(file__repository_id=repository_id).values_list("id", "text"):
        chunk_ids.append(chunk_id)
        texts.append(code_tokens(text) or ["_"])
    directory = index_directory(repository_id)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    retriever = bm25s.BM25()
    retriever.index(texts or [["_"]], show_progress=False)
    retriever.save(str(directory / "bm25"), show_progress=False)
    (directory / "chunk_ids.json").write_text(json.dumps(chunk_ids))


_indexes: dict[int, tuple[int, bm25s.BM25, list[int]]] = {}
_indexes_lock = threading.Lock()


def chunk_search(repository: Repository, query: str, k: int) -> list[tuple[int, float]]:
    """(chunk id, BM25 score) of the chunks most like `query`."""
    directory = index_directory(repository.id)
    if not (directory / "chunk_ids.json").exists():
        return []
    with _indexes_lock:
        cached = _indexes.get(repository.id)
        if cached is None or cached[0] != repository.index_version:
            retriever = bm25s.BM25.load(str(directory / "bm25"), show_progress=False)
            cached = (repository.index_version, retriever, json.loads((directory / "chunk_ids.json").read_text()))
            _indexes[repository.id] = cached
    _, retriever, chunk_ids = cached
    tokens = [token for token in code_tokens(query) if token in retriever.vocab_dict]
    if not tokens or not chunk_ids:
        return []
    documents, scores = retriever.retrieve([tokens], k=min(k, len(chunk_ids)), show_progress=False)
    return [(chunk_ids[d], float(s)) for d, s in zip(documents[0], scores[0]) if s > 0]
