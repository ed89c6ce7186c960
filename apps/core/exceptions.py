"""One place that maps errors to API responses: `{"detail": ...}` with a 4xx/5xx status."""
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from apps.core.errors import ApplicationError
from apps.core.model_client import ModelServiceError, ModelServiceOverloaded, ModelServiceUnavailable


def api_exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response(exc.as_json(), status=exc.status)
    if isinstance(exc, ModelServiceOverloaded):
        return Response({"detail": "The model service is busy; try again shortly."},
                        status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": str(int(exc.retry_after))})
    if isinstance(exc, ModelServiceUnavailable):
        return Response({"detail": f"The model service is unavailable: {exc}"},
                        status=status.HTTP_503_SERVICE_UNAVAILABLE)
    if isinstance(exc, ModelServiceError):  # it refused or failed the request this suite built
        return Response({"detail": f"The model service could not answer: {exc}"}, status=status.HTTP_502_BAD_GATEWAY)
    return exception_handler(exc, context)
