"""Every error leaves model_service in the OpenAI shape: {"error": {message, type, param, code}}."""
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from model_service.errors import ServiceError

logger = logging.getLogger(__name__)


def error_body(error: Exception) -> dict:
    if isinstance(error, ServiceError):
        return {"error": {"message": error.message, "type": error.type, "param": error.param, "code": error.code}}
    return {"error": {"message": "internal error while generating", "type": "internal_error", "param": None,
                      "code": None}}


def error_response(error: ServiceError) -> JSONResponse:
    retry_after = getattr(error, "retry_after", None)  # 429 and 503: when to come back
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(error_body(error), status_code=error.status, headers=headers)


def _validation_message(error: RequestValidationError) -> tuple[str, str | None]:
    first = error.errors()[0]
    if first.get("type") == "json_invalid":
        return "The request body is not valid JSON.", None
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(location) or None
    if first.get("type") == "missing":
        return f"Missing required parameter: {param}.", param
    return f"Invalid value for {param}: {first.get('msg')}.", param


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, error: ServiceError):
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        message, param = _validation_message(error)
        body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}
        return JSONResponse(body, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        kind = "not_found_error" if error.status_code == 404 else "invalid_request_error"
        body = {"error": {"message": str(error.detail), "type": kind, "param": None, "code": None}}
        return JSONResponse(body, status_code=error.status_code)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception):
        logger.exception("unexpected error on %s", request.url.path)
        return JSONResponse(error_body(error), status_code=500)
