import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import ApiToken, User
from apps.accounts.roles import Role
from apps.core.errors import ApplicationError

DEMO_USERS = {
    Role.SUPPORT_AGENT: "support",
    Role.DEVELOPER: "developer",
    Role.CLINICIAN: "clinician",
    Role.ADMIN: "admin",
}


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    secret: str  # shown to the user once, never stored


@transaction.atomic
def user_create(*, username: str, password: str, role: Role, email: str = "") -> User:
    user = User(username=username, email=email, role=role, is_staff=role == Role.ADMIN,
                is_superuser=role == Role.ADMIN)
    user.set_password(password)
    user.full_clean()
    user.save()
    return user


@transaction.atomic
def demo_users_create() -> dict[str, str]:
    """Create one demo user per role that does not exist yet.

    Returns {username: password} for the users created now, so the caller can print the
    passwords once; existing users keep their passwords.
    """
    created = {}
    for role, username in DEMO_USERS.items():
        if User.objects.filter(username=username).exists():
            continue
        password = secrets.token_urlsafe(9)
        user_create(username=username, password=password, role=role)
        created[username] = password
    return created


@transaction.atomic
def api_token_create(*, user: User, name: str, scope: ApiToken.Scope = ApiToken.Scope.COMPLETION,
                     expires_in_days: int | None = None) -> CreatedToken:
    """A new token for `user`; an IDE (completion) token for API_TOKEN_DEFAULT_DAYS unless chosen otherwise."""
    days = settings.API_TOKEN_DEFAULT_DAYS if expires_in_days is None else expires_in_days
    if not 1 <= days <= settings.API_TOKEN_MAX_DAYS:
        raise ApplicationError(message=f"A token lasts from 1 to {settings.API_TOKEN_MAX_DAYS} days.",
                               field="expires_in_days")
    if scope not in ApiToken.Scope.values:
        raise ApplicationError(message=f"Unknown scope {scope!r}; choose one of: {', '.join(ApiToken.Scope.values)}.",
                               field="scope")
    secret = ApiToken.new_secret()
    token = ApiToken.objects.create(
        user=user, name=name, digest=ApiToken.digest_of(secret), hint=secret[: len(ApiToken.PREFIX) + 4],
        scope=scope, expires_at=timezone.now() + timedelta(days=days),
    )
    return CreatedToken(token=token, secret=secret)


TOKEN_LAST_USE_RESOLUTION = timedelta(minutes=1)  # the tokens page shows the last use to the minute


def api_token_mark_used(*, token: ApiToken) -> None:
    """Record that `token` was just used (shown on the tokens page, to spot forgotten tokens), at most once
    per TOKEN_LAST_USE_RESOLUTION: an IDE sends a request at every keystroke, and a write per request would
    cost each of them a query (on SQLite, a write lock) for a time the page shows only to the minute."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < TOKEN_LAST_USE_RESOLUTION:
        return
    ApiToken.objects.filter(id=token.id).update(last_used_at=now)
    token.last_used_at = now


@transaction.atomic
def api_token_delete(*, user: User, token_id: int) -> bool:
    deleted, _ = ApiToken.objects.filter(user=user, id=token_id).delete()
    return deleted > 0
