"""Reads of the codegen app. Who may see a repository is decided here, for the API, the console and
completion context alike: a repository is private to its owner unless shared with the developers;
admins see every one. A repository the caller may not see is not found (404)."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.accounts.roles import Role
from apps.codegen.models import Repository
from apps.core.errors import ApplicationError, NotFoundError


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
    `user` may read: an unknown or invisible id is a 404; a git URL matching none gives no context.
    Where several match the URL, the caller's own comes first."""
    if repository_id is not None:
        return repository_get_for_user(user=user, repository_id=repository_id)
    if not git_url:
        return None
    matches = repository_list_for_user(user=user).filter(git_url=git_url)
    return matches.filter(created_by=user).first() or matches.first()
