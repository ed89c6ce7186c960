"""Repository writes: registration (an uploaded archive, or a folder on the server), sharing, reindexing,
deletion. Each (re)index is queued for the worker once the transaction commits."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import transaction

from apps.codegen.archives import unpack_archive
from apps.codegen.indexing import uploaded_folder
from apps.codegen.models import Repository
from apps.codegen.selectors import user_is_admin
from apps.core.errors import ApplicationError
from apps.core.limits import read_bounded


def _schedule_index(repository: Repository) -> None:
    from apps.codegen.tasks import repository_index_task

    transaction.on_commit(lambda: repository_index_task.delay(repository.id), robust=True)


def _repository_create(*, name: str, git_url: str, shared: bool, user) -> Repository:
    name = name.strip()
    if Repository.objects.filter(name=name, created_by=user).exists():
        raise ApplicationError(message=f"You have a repository named {name!r} already.", code="name_taken",
                               field="name")
    return Repository.objects.create(name=name, path="", git_url=git_url, shared=shared, created_by=user)


def _allowed_folder(path: str) -> Path:
    """`path` resolved, if it is a folder under one of CODEGEN_REPOSITORY_ROOTS. One message for every refusal,
    so that the answer never tells whether an arbitrary path exists."""
    refusal = ApplicationError(
        message=f"{path!r} is not a folder under the repository roots this server allows (CODEGEN_REPOSITORY_ROOTS).",
        code="path_not_allowed", field="path")
    candidate = Path(path)  # no expanduser: `~root` is no absolute path
    if not candidate.is_absolute():
        raise refusal
    folder = candidate.resolve()
    roots = [Path(root).resolve() for root in settings.CODEGEN_REPOSITORY_ROOTS]
    if not any(folder == root or root in folder.parents for root in roots) or not folder.is_dir():
        raise refusal
    return folder


@transaction.atomic
def repository_register_folder(*, name: str, path: str, git_url: str = "", shared: bool = False,
                               user) -> Repository:
    """Register a folder on the server and index it: an admin's action, for folders under the allowed roots."""
    if not user_is_admin(user):
        raise ApplicationError(message="Only an admin may register a folder on the server; upload an archive "
                                       "(.zip, .tar.gz) instead.", status=403, code="admin_only", field="path")
    folder = _allowed_folder(path)
    repository = _repository_create(name=name, git_url=git_url, shared=shared, user=user)
    repository.path = str(folder)
    repository.save(update_fields=["path"])
    _schedule_index(repository)
    return repository


@transaction.atomic
def repository_register_trusted_folder(*, name: str, folder: Path, shared: bool = True) -> Repository:
    """Register a folder the operator chose on the server (management commands such as the demo's): no role
    or root check, so never reachable from a request."""
    repository = _repository_create(name=name, git_url="", shared=shared, user=None)
    repository.path = str(folder.resolve())
    repository.save(update_fields=["path"])
    _schedule_index(repository)
    return repository


@transaction.atomic
def repository_register_archive(*, name: str, archive: IO[bytes], archive_name: str, git_url: str = "",
                                shared: bool = False, user) -> Repository:
    """Register an uploaded .zip/.tar(.gz), read and unpacked within the CODEGEN_ARCHIVE_* limits under the
    suite's data folder, and index it."""
    data = read_bounded(archive, max_bytes=settings.CODEGEN_ARCHIVE_MAX_BYTES, field="archive")
    repository = _repository_create(name=name, git_url=git_url, shared=shared, user=user)
    target = uploaded_folder(repository.id)
    shutil.rmtree(target, ignore_errors=True)  # left over from an earlier database that used the same id
    unpack_archive(data, archive_name, target)
    repository.path = str(target)
    repository.save(update_fields=["path"])
    _schedule_index(repository)
    return repository


@transaction.atomic
def repository_update(*, repository: Repository, shared: bool) -> Repository:
    repository.shared = shared
    repository.save(update_fields=["shared"])
    return repository


@transaction.atomic
def repository_reindex(*, repository: Repository) -> Repository:
    repository.status = Repository.Status.PENDING
    repository.save(update_fields=["status", "updated_at"])
    _schedule_index(repository)
    return repository


@transaction.atomic
def repository_delete(*, repository: Repository) -> None:
    uploaded = uploaded_folder(repository.id)
    repository.delete()
    transaction.on_commit(lambda: shutil.rmtree(uploaded, ignore_errors=True))
