"""What a locked-out log-in sees (django-axes calls this through AXES_LOCKOUT_CALLABLE)."""
from axes.helpers import get_cool_off
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def login_lockout_response(request: HttpRequest, original_response: HttpResponse | None,
                           credentials: dict | None) -> HttpResponse:
    """The log-in page saying the account is locked and for how long, with status 429.

    Used for the console's and the Django admin's log-in alike.
    """
    minutes = round(get_cool_off(request).total_seconds() / 60)
    return render(request, "frontend/login.html",
                  {"locked_out_minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT}, status=429)
