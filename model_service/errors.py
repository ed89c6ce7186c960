"""Errors, typed once; model_service.api.errors maps them to the OpenAI error shape."""


class ServiceError(Exception):
    status = 500
    type = "internal_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(ServiceError):
    status = 400
    type = "invalid_request_error"


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"


class ModelNotFound(ServiceError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class Unauthorized(ServiceError):
    """No valid API key (answered by model_service.api.middleware.ApiKeyMiddleware)."""

    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class RetryLater(ServiceError):
    """A refusal that says when to come back: `retry_after` seconds (the Retry-After header; None: no header)."""

    def __init__(self, message: str, *, retry_after: int | None):
        super().__init__(message)
        self.retry_after = retry_after


class Overloaded(RetryLater):
    """More requests wait than the queue limit allows."""

    status = 429
    type = "rate_limit_error"
    code = "queue_full"


class NotReady(RetryLater):
    """The checkpoint is still loading (or failed to): come back later."""

    status = 503
    type = "service_unavailable"
    code = "model_loading"

    def __init__(self, message: str, *, retry_after: int | None = 5):
        super().__init__(message, retry_after=retry_after)


class RequestTooLarge(ServiceError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"
