"""Repository indexing: every supported file parsed with tree-sitter into definitions, imports and
chunks; files whose content hash did not change are skipped; a BM25 index over the chunks."""
from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tarfile
import threading
import zipfile
from io import BytesIO
from pathlib import Path

import bm25s
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.codegen import parsing
from apps.codegen.languages import language_for_path
from apps.codegen.models import Chunk, Definition, Repository, SourceFile

logger = logging.getLogger(__name__)
MAX_FILE_BYTES = 1_000_000
SKIPPED_DIRECTORIES = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", "build", "dist",
                       "target", "vendor", ".tox", ".mypy_cache", ".pytest_cache"}
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


def unpack_archive(data: bytes, filename: str, target: Path) -> None:
    """Unpack a .zip or .tar(.gz) upload into `target`, refusing members that would land outside it."""
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()

    def safe(name: str) -> Path:
        destination = (root / name).resolve()
        if root not in destination.parents and destination != root:
            raise ValueError(f"the archive member {name!r} points outside the repository")
        return destination

    if filename.endswith(".zip"):
        with zipfile.ZipFile(BytesIO(data)) as archive:
            for member in archive.infolist():
                safe(member.filename)
            archive.extractall(root)
    elif filename.endswith((".tar", ".tar.gz", ".tgz")):
        with tarfile.open(fileobj=BytesIO(data)) as archive:
            members = [m for m in archive.getmembers() if m.isfile() or m.isdir()]
            for member in members:
                safe(member.name)
            archive.extractall(root, members=members, filter="data")
    else:
        raise ValueError("upload a .zip, .tar or .tar.gz archive")


def source_files(root: Path) -> list[tuple[str, Path]]:
    """(relative path, file) for every file of a supported language, in a stable order."""
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in SKIPPED_DIRECTORIES or part.startswith(".") for part in relative.parts[:-1]):
            continue
        if path.is_file() and language_for_path(path.name) and path.stat().st_size <= MAX_FILE_BYTES:
            found.append((str(relative), path))
    return found


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
        root = Path(repository.path)
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is not a folder")
        files = source_files(root)
        known = dict(SourceFile.objects.filter(repository=repository).values_list("path", "content_hash"))
        Repository.objects.filter(id=repository.id).update(files_total=len(files), files_done=0)
        parsed = unchanged = lines = 0
        for done, (relative, path) in enumerate(files, start=1):
            data = path.read_bytes()
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
            index_version=F("index_version") + 1)
        return {"status": "ready", "files": len(files), "parsed": parsed, "unchanged": unchanged,
                "removed": len(known), "lines": lines}
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
