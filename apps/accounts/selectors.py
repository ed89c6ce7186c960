from django.db.models import QuerySet

from apps.accounts.models import ApiToken, User


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


def api_token_get_by_secret(*, secret: str) -> ApiToken | None:
    """The token whose secret is `secret`, if its user is active (expired tokens too: the caller says why)."""
    return ApiToken.objects.select_related("user").filter(digest=ApiToken.digest_of(secret),
                                                         user__is_active=True).first()


def user_list() -> QuerySet[User]:
    return User.objects.order_by("username")
