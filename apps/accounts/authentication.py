from rest_framework import authentication, exceptions

from apps.accounts.models import ApiToken
from apps.accounts.selectors import api_token_get_by_secret
from apps.accounts.services import api_token_mark_used


def view_token_scope(view) -> ApiToken.Scope | None:
    """The scope a token needs to call `view`: its `token_scope` attribute, the full API by default.

    `token_scope = None` marks a view no token may call (token management needs the console session).
    """
    return getattr(view, "token_scope", ApiToken.Scope.API)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>` with a token from the console or `create_api_token`.

    The one place tokens are checked: unknown, revoked or expired tokens are a 401; a token used
    outside its scope (an IDE token on anything but completions, any token on token management) a 403.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0] != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        token = api_token_get_by_secret(secret=header[1])
        if token is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API token.")
        if token.is_expired():
            raise exceptions.AuthenticationFailed(
                f"This API token expired on {token.expires_at:%Y-%m-%d}; create a new one on the console's "
                "API tokens page.")
        view_scope = view_token_scope(request.parser_context.get("view"))
        if not token.allows(view_scope):
            raise exceptions.PermissionDenied(
                "API tokens may not manage tokens; use the console." if view_scope is None else
                f"This token's scope ({token.scope}) does not cover this API; create a token with the "
                f"'{view_scope}' scope.")
        api_token_mark_used(token=token)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword
