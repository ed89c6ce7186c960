"""Every error leaves model_service in the OpenAI shape: {"error": {message, type, param, code}}."""
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from model_service.errors import ServiceError

logger = logging.getLogger(__name__)


def _openai_error(message: str, kind: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_body(error: Exception) -> dict:
    if isinstance(error, ServiceError):
        return _openai_error(error.message, error.type, error.param, error.code)
    return _openai_error("internal error while generating", "internal_error")


def error_response(error: ServiceError) -> JSONResponse:
    retry_after = getattr(error, "retry_after", None)  # 429 and 503: when to come back
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(error_body(error), status_code=error.status, headers=headers)


UNION_MEMBER_TAGS = {"str", "int", "float", "bool", "list", "dict", "none"}


def _field_path(location) -> list[str]:
    """The field part of a pydantic error location, without the union-member tags it adds
    ("str", "list[int]", "function-after[...]"), which name types, not parameters."""
    path = []
    for part in location:
        if isinstance(part, str) and ("[" in part or part in UNION_MEMBER_TAGS):
            continue
        if part != "body":
            path.append(str(part))
    return path


def _validation_message(error: RequestValidationError) -> tuple[str, str | None]:
    errors = error.errors()
    # Of a union's errors, our own checks (value_error) say most about what is wrong, then the deepest.
    first = next((e for e in errors if e.get("type") == "value_error"), None) or max(
        errors, key=lambda e: len(_field_path(e.get("loc", ()))))
    if first.get("type") == "json_invalid":
        return "The request body is not valid JSON.", None
    param = ".".join(_field_path(first.get("loc", ()))) or None
    if first.get("type") == "missing":
        return f"Missing required parameter: {param}.", param
    if first.get("type") == "extra_forbidden":  # OpenAI's own words for a parameter it does not define
        return f"Unrecognized request argument supplied: {param}.", param
    if param is None:
        return f"Invalid request body: {first.get('msg')}.", None
    return f"Invalid value for {param}: {first.get('msg')}.", param


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, error: ServiceError):
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        message, param = _validation_message(error)
        return JSONResponse(_openai_error(message, "invalid_request_error", param), status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        kind = "not_found_error" if error.status_code == 404 else "invalid_request_error"
        return JSONResponse(_openai_error(str(error.detail), kind), status_code=error.status_code)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception):
        logger.exception("unexpected error on %s", request.url.path)
        return JSONResponse(error_body(error), status_code=500)
