from rest_framework import authentication, exceptions

from apps.accounts.selectors import user_for_api_token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>` with a token from the console or `create_api_token`."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0] != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        user = user_for_api_token(secret=header[1])
        if user is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API token.")
        return user, None

    def authenticate_header(self, request) -> str:
        return self.keyword
