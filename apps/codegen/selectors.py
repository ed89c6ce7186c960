"""Reads of the codegen app. Who may see a repository is decided here, for the API, the console and
completion context alike: a repository is private to its owner unless shared with the developers;
admins see every one. A repository the caller may not see is not found (404). Also here: the
cross-file context a completion may use, a caller's own completions, the acceptance statistics and
Tabby's health state."""
from __future__ import annotations

import os
import platform

from django.conf import settings
from django.db.models import Avg, Count, Q, QuerySet

from apps.accounts.roles import Role
from apps.codegen.completion import (DEFINITION, SNIPPET, CompletionRequestData, Snippet, nearby_names, rank_context,
                                     snippet_query)
from apps.codegen.git_urls import git_remote_key
from apps.codegen.indexing import chunk_search, repository_continuations
from apps.codegen.matching import Continuation, same_file_continuations
from apps.codegen.models import Chunk, Completion, CompletionEvent, Definition, Repository
from apps.core.errors import ApplicationError, NotFoundError
from apps.core.selectors import model_service_status


def user_is_admin(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.role == Role.ADMIN)


def repository_list_for_user(*, user) -> QuerySet[Repository]:
    """The repositories `user` may read: their own and the shared ones (all of them for an admin)."""
    if user_is_admin(user):
        return Repository.objects.all()
    if not (user and user.is_authenticated):
        return Repository.objects.none()
    return Repository.objects.filter(Q(created_by=user) | Q(shared=True))


def repository_get_for_user(*, user, repository_id, change: bool = False) -> Repository:
    """The repository if `user` may read it (404 otherwise, also for ids that are no number); with
    `change`, only its owner or an admin may go on (403: the repository is visible, so nothing leaks)."""
    try:
        repository = repository_list_for_user(user=user).get(id=int(repository_id))
    except (Repository.DoesNotExist, TypeError, ValueError):
        raise NotFoundError("No repository with this id.", field="repository") from None
    if change and not (user_is_admin(user) or repository.created_by_id == user.id):
        raise ApplicationError(message="Only the repository's owner or an admin may change or delete it.",
                               status=403, code="not_owner", field="repository")
    return repository


def repository_for_completion(*, user, repository_id=None, git_url: str = "") -> Repository | None:
    """The repository a completion request names (by id, else by the git URL the IDE reports) among those
    `user` may read: an unknown or invisible id is a 404; a git URL matching none gives no context. The ssh and https forms of
    a remote are the same repository (`git_remote_key`).
    Where several match the URL, the caller's own comes first."""
    if repository_id is not None:
        return repository_get_for_user(user=user, repository_id=repository_id)
    if not git_url:
        return None
    key = git_remote_key(git_url)
    matches = [repository for repository in repository_list_for_user(user=user).exclude(git_url="").order_by("id")
               if git_remote_key(repository.git_url) == key]
    return next((r for r in matches if r.created_by_id == user.id), None) or next(iter(matches), None)


def repository_snippets(request: CompletionRequestData) -> list[Snippet]:
    """Definitions of the symbols used near the cursor, then chunks like the code before it, from the
    request's repository (already one the caller may read) when it is indexed."""
    repository = request.repository
    if repository is None or repository.status != Repository.Status.READY:
        return []
    names = nearby_names(request.prefix)
    found: list[Snippet] = []
    definitions = (Definition.objects.filter(file__repository=repository, name__in=names[:50])
                   .exclude(file__path=request.filepath).select_related("file"))
    by_name: dict[str, Definition] = {}
    for definition in definitions:
        by_name.setdefault(definition.name, definition)
    for name in names:
        if name in by_name:
            d = by_name[name]
            body = d.signature + ("\n" + d.docstring if d.docstring else "")
            found.append(Snippet(d.file.path, body, DEFINITION))
    hits = chunk_search(repository, snippet_query(request.prefix), k=8)
    chunks = Chunk.objects.in_bulk([chunk_id for chunk_id, _ in hits])
    for chunk_id, score in hits:
        chunk = chunks.get(chunk_id)
        if chunk is not None and chunk.file.path != request.filepath:
            found.append(Snippet(chunk.file.path, chunk.text, SNIPPET, round(score, 3)))
    return found


def context_candidates(request: CompletionRequestData) -> list[Snippet]:
    """Every snippet the context may hold, most important first (`rank_context`); the repository index is
    left out when the client turned retrieval off."""
    return rank_context(request, repository_snippets(request) if request.use_context else [])


def continuation_candidates(request: CompletionRequestData) -> list[Continuation]:
    """What followed the longest earlier occurrences of the text before the cursor: in the request's
    repository (other files than the one edited) and earlier in the file itself, longest match first."""
    if not request.use_repository_candidates:
        return []
    found = same_file_continuations(request.prefix)
    repository = request.repository
    if repository is not None and repository.status == Repository.Status.READY:
        found += repository_continuations(repository, request.prefix, request.filepath)
    return sorted(found, key=lambda c: (-c.match_tokens, -c.count))


def tabby_health() -> dict:
    """Tabby's health state: the checkpoint model_service serves (or why none is), where it runs, this
    machine, and the suite's version in Tabby's `version` shape."""
    service = model_service_status()
    checkpoint = service.detail.get("checkpoint") or {}
    if not service.reachable:
        model = "unavailable (model_service unreachable)"
    else:
        model = checkpoint.get("name") or f"unavailable (model_service {service.detail.get('status', 'starting')})"
    version = settings.SPECTACULAR_SETTINGS["VERSION"]
    return {"model": model, "chat_model": None, "device": service.detail.get("device") or "unknown",
            "arch": platform.machine() or "unknown", "cpu_info": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count() or 1, "cuda_devices": [],
            "version": {"build_date": "", "build_timestamp": "", "git_sha": "", "git_describe": f"v{version}"}}


def completion_get_for_user(*, user, completion_id: str) -> Completion:
    """One of `user`'s own completions (telemetry is accepted for those only)."""
    completion = Completion.objects.filter(id=completion_id, user=user).first()
    if completion is None:
        raise ApplicationError(message="No completion with this id.", code="unknown_completion",
                               field="completion_id")
    return completion


def completion_stats() -> dict:
    """Completions served, shown, accepted (wholly or in part: Tabby's select_kind "line") and dismissed;
    acceptance = accepted / shown; the mean milliseconds from showing to accepting where the IDE said."""
    totals = Completion.objects.aggregate(
        served=Count("id"), empty=Count("id", filter=Q(text="")),
        guard_trimmed=Count("id", filter=Q(guard="trimmed")), guard_rejected=Count("id", filter=Q(guard="rejected")))
    selected = Q(type=CompletionEvent.Type.SELECT)
    events = CompletionEvent.objects.aggregate(
        shown=Count("completion", filter=Q(type=CompletionEvent.Type.VIEW), distinct=True),
        accepted=Count("completion", filter=selected, distinct=True),
        accepted_partly=Count("completion", filter=selected & Q(select_kind=CompletionEvent.SelectKind.LINE),
                              distinct=True),
        dismissed=Count("completion", filter=Q(type=CompletionEvent.Type.DISMISS), distinct=True),
        accept_ms=Avg("elapsed", filter=selected))
    accept_ms = events.pop("accept_ms")
    return {**totals, **events,
            "acceptance_rate": round(events["accepted"] / events["shown"], 3) if events["shown"] else None,
            "mean_accept_ms": round(accept_ms) if accept_ms is not None else None}


# --- training rows: what adapter datasets learn from this app ----------------------------------

def repository_training_rows(*, repository: Repository) -> list[dict]:
    """Fill-in-the-middle line completions from the repository's indexed chunks."""
    return repository_examples(list(Chunk.objects.filter(file__repository=repository).values_list("text", flat=True)))


def repository_examples(chunks: list[str]) -> list[dict]:
    """Fill-in-the-middle line completion from code chunks: one line of each chunk (chosen by its
    content, so the choice is stable) masked between the lines before and after it."""
    import hashlib

    from training.tokenizer import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX

    examples = []
    for chunk in chunks:
        lines = chunk.splitlines(keepends=True)
        candidates = [i for i, line in enumerate(lines) if len(line.strip()) >= 8]
        if len(lines) < 3 or not candidates:
            continue
        masked = candidates[int(hashlib.sha256(chunk.encode()).hexdigest(), 16) % len(candidates)]
        prefix, suffix = "".join(lines[:masked]), "".join(lines[masked + 1:])
        examples.append({"prompt": f"{FIM_PREFIX}{prefix}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}",
                         "completion": lines[masked].rstrip("\n")})
    return examples
