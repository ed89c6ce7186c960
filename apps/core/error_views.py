"""Django's last-resort error pages, in JSON under /api/ (an API client never gets an HTML page).

DRF's exception handler covers errors raised inside API views; these cover what happens outside
them: an unknown URL, a request Django itself refuses (too large, bad host), an unhandled error.
"""
from django.http import JsonResponse
from django.views import defaults

API_PREFIX = "/api/"


def _json(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def bad_request(request, exception):
    if request.path.startswith(API_PREFIX):
        return _json(400, "bad_request", "The request could not be read (too large, malformed or not allowed).")
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if request.path.startswith(API_PREFIX):
        return _json(403, "permission_denied", "You may not do this.")
    return defaults.permission_denied(request, exception)


def not_found(request, exception):
    if request.path.startswith(API_PREFIX):
        return _json(404, "not_found", f"No API route {request.path}.")
    return defaults.page_not_found(request, exception)


def server_error(request):
    if request.path.startswith(API_PREFIX):
        return _json(500, "server_error", "The server failed to answer; the error has been logged.")
    return defaults.server_error(request)
