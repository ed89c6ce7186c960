"""Writes of the codegen app: repositories and completion telemetry."""
from __future__ import annotations

import shutil
from pathlib import Path

from django.db import transaction
from django.db.models import Count, Q

from apps.codegen.indexing import repositories_root, unpack_archive
from apps.codegen.models import Completion, CompletionEvent, Repository


def _schedule_index(repository: Repository) -> None:
    from apps.codegen.tasks import repository_index_task

    transaction.on_commit(lambda: repository_index_task.delay(repository.id), robust=True)


@transaction.atomic
def repository_register(*, name: str, path: str = "", archive: bytes | None = None, archive_name: str = "",
                        git_url: str = "", user=None) -> Repository:
    """Register a local folder, or an uploaded archive (unpacked under the suite's data folder), and index it."""
    name = name.strip()
    if Repository.objects.filter(name=name).exists():
        raise ValueError(f"a repository named {name!r} exists")
    if archive is None:
        folder = Path(path).expanduser()
        if not folder.is_absolute() or not folder.is_dir():
            raise ValueError(f"{path!r} is not an absolute path to a folder on the server")
        repository = Repository.objects.create(name=name, path=str(folder.resolve()), git_url=git_url,
                                               created_by=user)
    else:
        repository = Repository.objects.create(name=name, path="", git_url=git_url, created_by=user)
        target = repositories_root() / "repos" / f"repo_{repository.id}"
        try:
            unpack_archive(archive, archive_name.lower(), target)
        except (ValueError, OSError) as error:
            shutil.rmtree(target, ignore_errors=True)
            raise ValueError(f"the archive could not be unpacked: {error}") from error
        repository.path = str(target)
        repository.save(update_fields=["path"])
    _schedule_index(repository)
    return repository


@transaction.atomic
def repository_reindex(*, repository: Repository) -> Repository:
    repository.status = Repository.Status.PENDING
    repository.save(update_fields=["status", "updated_at"])
    _schedule_index(repository)
    return repository


@transaction.atomic
def repository_delete(*, repository: Repository) -> None:
    uploaded = repositories_root() / "repos" / f"repo_{repository.id}"
    repository.delete()
    transaction.on_commit(lambda: shutil.rmtree(uploaded, ignore_errors=True))


@transaction.atomic
def completion_event_record(*, completion: Completion, event_type: str, choice_index: int = 0) -> CompletionEvent:
    return CompletionEvent.objects.create(completion=completion, type=event_type, choice_index=choice_index)


def completion_stats() -> dict:
    """Completions served, shown, accepted and dismissed; acceptance = accepted / shown."""
    totals = Completion.objects.aggregate(
        served=Count("id"), empty=Count("id", filter=Q(text="")),
        guard_trimmed=Count("id", filter=Q(guard="trimmed")), guard_rejected=Count("id", filter=Q(guard="rejected")))
    events = CompletionEvent.objects.aggregate(
        shown=Count("completion", filter=Q(type=CompletionEvent.Type.VIEW), distinct=True),
        accepted=Count("completion", filter=Q(type=CompletionEvent.Type.SELECT), distinct=True),
        dismissed=Count("completion", filter=Q(type=CompletionEvent.Type.DISMISS), distinct=True))
    return {**totals, **events,
            "acceptance_rate": round(events["accepted"] / events["shown"], 3) if events["shown"] else None}
