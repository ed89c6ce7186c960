"""How the OpenAPI schema describes API tokens (drf-spectacular loads this from AccountsConfig.ready)."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {"type": "http", "scheme": "bearer",
                "description": "An API token from the console's API tokens page; it acts within its scope "
                               "(completion: code completion only; retrieval: the Dify knowledge "
                               "retrieval API only; api: the user's APIs except tokens)."}
