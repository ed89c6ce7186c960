from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts.models import ApiToken, User


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


def user_for_api_token(*, secret: str) -> User | None:
    """The active user owning `secret`, recording the use; None for an unknown token."""
    token = ApiToken.objects.select_related("user").filter(digest=ApiToken.digest_of(secret)).first()
    if token is None or not token.user.is_active:
        return None
    ApiToken.objects.filter(id=token.id).update(last_used_at=timezone.now())
    return token.user


def user_list() -> QuerySet[User]:
    return User.objects.order_by("username")
