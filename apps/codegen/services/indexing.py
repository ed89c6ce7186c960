"""The indexing service: every supported file of a repository parsed with tree-sitter into definitions,
imports and chunks; files whose content hash did not change are skipped; then the BM25 index over the
chunks is rebuilt and the match index over the files updated for those that changed
(apps/codegen/indexing.py), and `Repository.index_version` moves on."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.roles import Role
from apps.codegen import parsing
from apps.codegen.indexing import MAX_FILE_BYTES, build_chunk_index, source_files, uploads_root
from apps.codegen.languages import language_for_path
from apps.codegen.matching import MAX_SOURCE_CHARS
from apps.codegen.models import Chunk, Definition, Repository, SourceFile
from apps.core.jobs import job_claim

logger = logging.getLogger(__name__)
MAX_SKIPPED_REPORTED = 100  # skipped files named on the repository (the count is in the task's result)
PROGRESS_EVERY = 25  # files between progress updates
FOLDER_NOT_ALLOWED = ("This repository names a folder on the server, which only an admin may register; "
                      "upload it as an archive instead.")


def folder_allowed(repository: Repository) -> bool:
    """A developer's repository is read only from where their upload was unpacked; other folders were registered
    by an admin (under CODEGEN_REPOSITORY_ROOTS) or by an operator's command. Checked again at every (re)index,
    so that a folder registered before these rules is never read again."""
    owner = repository.created_by
    if owner is None or owner.role == Role.ADMIN:
        return True
    return Path(repository.path).resolve().is_relative_to(uploads_root().resolve())


def _claim(repository_id: int) -> Repository | None:
    """Mark the repository as indexing unless a live job already does (None then, or when it is gone)."""
    claim = job_claim(model=Repository, pk=repository_id, status_field="status", running=Repository.Status.INDEXING,
                      heartbeat_field="updated_at", stale_after_s=settings.JOBS_REQUEUE_AFTER_S, updates={"error": ""})
    return claim.row


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
        parsed = unchanged = lines = matched_chars = 0
        sources: list[tuple[str, str]] = []  # what the match index reads, within MAX_SOURCE_CHARS
        for done, (relative, path) in enumerate(files, start=1):
            with open(path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES)  # a file grown since it was listed stays bounded
            digest = hashlib.sha256(data).hexdigest()
            source = data.decode("utf-8", "replace")
            lines += source.count("\n") + 1
            if matched_chars + len(source) <= MAX_SOURCE_CHARS:
                sources.append((relative, source))
                matched_chars += len(source)
            if known.pop(relative, None) == digest:
                unchanged += 1
            else:
                _store_file(repository, relative, language_for_path(relative).name, source, digest)
                parsed += 1
            if done % PROGRESS_EVERY == 0:
                Repository.objects.filter(id=repository.id).update(files_done=done)
        SourceFile.objects.filter(repository=repository, path__in=list(known)).delete()  # files gone from disk
        match_index = build_chunk_index(repository.id, sources)
        Repository.objects.filter(id=repository.id).update(
            status=Repository.Status.READY, files_done=len(files), lines=lines, indexed_at=timezone.now(),
            index_version=F("index_version") + 1, skipped=skipped[:MAX_SKIPPED_REPORTED])
        return {"status": "ready", "files": len(files), "parsed": parsed, "unchanged": unchanged,
                "removed": len(known), "lines": lines, "skipped": len(skipped), "match_index": match_index}
    except Exception as error:
        logger.exception("indexing repository %s failed", repository_id)
        Repository.objects.filter(id=repository_id).update(status=Repository.Status.FAILED, error=str(error)[:2000])
        return {"status": "failed", "error": str(error)}

