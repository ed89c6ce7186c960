"""Dify's external knowledge API contract: its error shape and codes, its Bearer authentication with
this suite's API tokens, and its `metadata_condition` as a tag filter.

Dify registers an "external knowledge API" by a base URL and an API key, and sends
`POST {base URL}/retrieval` with `Authorization: Bearer {key}`; any non-200 answer is shown to its user,
with `{"error_code", "error_msg"}` as the body by convention. The codes below are Dify's documented ones,
except INVALID_REQUEST, which is this suite's (Dify documents none for a malformed request).
"""
from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, serializers

from apps.accounts.authentication import BearerTokenAuthentication
from apps.core.errors import ApplicationError, NotFoundError
from apps.customer_service.tag_filters import OPERATORS, TagCondition, TagFilter

INVALID_AUTHORIZATION_HEADER = 1001
AUTHORIZATION_FAILED = 1002
KNOWLEDGE_DOES_NOT_EXIST = 2001
INVALID_REQUEST = 3001  # this suite's: a body Dify's contract does not allow, or a filter it does not support
FILTERABLE_METADATA = "tags"


class DifyError(ApplicationError):
    """An error in Dify's shape; the exception handler answers `as_json()` with `status`."""

    def __init__(self, error_code: int, message: str, status: int):
        super().__init__(message=message, status=status, code=str(error_code))
        self.error_code = error_code

    def as_json(self) -> dict:
        return {"error_code": self.error_code, "error_msg": self.message}


def dify_error_for(exc: Exception) -> Exception:
    """The Dify error an exception raised while answering a retrieval request stands for; anything that
    is not a client's error is returned unchanged (and stays a 5xx)."""
    if isinstance(exc, DifyError):
        return exc
    if isinstance(exc, NotFoundError):
        return DifyError(KNOWLEDGE_DOES_NOT_EXIST, "The knowledge does not exist.", 404)
    if isinstance(exc, exceptions.ValidationError):
        return DifyError(INVALID_REQUEST, _first_error(exc.detail), 400)
    if isinstance(exc, exceptions.APIException):
        return DifyError(INVALID_REQUEST, str(exc.detail), exc.status_code)
    if isinstance(exc, ApplicationError):
        return DifyError(INVALID_REQUEST, exc.message, exc.status)
    return exc


def _first_error(detail, path: str = "") -> str:
    """The first validation message, prefixed by where it is ("retrieval_setting.top_k: ...")."""
    if isinstance(detail, dict):
        key, value = next(iter(detail.items()))
        return _first_error(value, f"{path}.{key}" if path else str(key))
    if isinstance(detail, list) and detail:
        return _first_error(detail[0], path)
    return f"{path}: {detail}" if path and path != "non_field_errors" else str(detail)


class DifyBearerAuthentication(authentication.BaseAuthentication):
    """The suite's Bearer tokens (BearerTokenAuthentication decides), refused in Dify's codes: no or a
    malformed header is 1001, an unknown, expired or out-of-scope token 1002."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if len(header) != 2 or header[0] != BearerTokenAuthentication.keyword:
            raise DifyError(INVALID_AUTHORIZATION_HEADER,
                            "Invalid Authorization header format. Expected 'Bearer <api-key>' format.", 403)
        try:
            return BearerTokenAuthentication().authenticate(request)
        except (exceptions.AuthenticationFailed, exceptions.PermissionDenied) as refused:
            raise DifyError(AUTHORIZATION_FAILED, f"Authorization failed: {refused.detail}", 403) from refused

    def authenticate_header(self, request) -> str:
        return BearerTokenAuthentication.keyword


class DifyBearerScheme(OpenApiAuthenticationExtension):
    target_class = DifyBearerAuthentication
    name = "difyBearerAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {"type": "http", "scheme": "bearer",
                "description": "An API token with the retrieval (or full API) scope."}


def tag_filter_from_condition(condition: dict | None) -> TagFilter | None:
    """Dify's validated `metadata_condition` as a tag filter; None when it filters nothing. Conditions
    may name only `tags`; a 400 (INVALID_REQUEST) names any other metadata or operator."""
    if not condition or not condition["conditions"]:
        return None
    tag_conditions = tuple(_tag_condition(item) for item in condition["conditions"])
    return TagFilter(tag_conditions, match_all=condition["logical_operator"] == "and")


def _tag_condition(item: dict) -> TagCondition:
    names = item["name"] if isinstance(item["name"], list) else [item["name"]]
    unsupported = [name for name in names if name != FILTERABLE_METADATA]
    if unsupported or not names:
        raise DifyError(INVALID_REQUEST, f"Filtering by metadata {unsupported or names!r} is not supported; "
                                         f"only {FILTERABLE_METADATA!r} is.", 400)
    operator = item["comparison_operator"]
    if operator not in OPERATORS:
        raise DifyError(INVALID_REQUEST, f"The comparison operator {operator!r} is not supported for tags; use "
                                         f"one of: {', '.join(OPERATORS)}.", 400)
    return TagCondition(operator, _tag_values(operator, item.get("value")))


def _tag_values(operator: str, value) -> tuple[str, ...]:
    """The tags a condition compares with: one string or a list of strings (none for empty / not empty)."""
    if operator in ("empty", "not empty"):
        return ()
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(tag, str) and tag for tag in values):
        raise DifyError(INVALID_REQUEST, f"The {operator!r} condition on tags needs a tag or a list of tags as "
                                         f"its value.", 400)
    return tuple(values)


class ConditionSerializer(serializers.Serializer):
    name = serializers.JSONField(help_text="a metadata name, or a list of them: only `tags` is filterable")
    comparison_operator = serializers.CharField(max_length=20, help_text="contains, not contains, in, not in, "
                                                                         "empty, not empty")
    value = serializers.JSONField(required=False, allow_null=True, help_text="a tag, or a list of tags")


class MetadataConditionSerializer(serializers.Serializer):
    logical_operator = serializers.ChoiceField(choices=["and", "or"], default="and")
    conditions = ConditionSerializer(many=True, max_length=20)


class DifyErrorSerializer(serializers.Serializer):
    error_code = serializers.IntegerField()
    error_msg = serializers.CharField()


ERROR_RESPONSES = {status: DifyErrorSerializer for status in (400, 403, 404, 415)}  # for the OpenAPI schema
