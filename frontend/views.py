"""Console pages. Each area page is guarded on the server by the same role table as the menu."""
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.models import ApiToken
from apps.accounts.permissions import area_required
from apps.accounts.roles import Area
from apps.accounts.selectors import api_token_list, user_list
from apps.accounts.services import api_token_create, api_token_delete
from apps.core.errors import ApplicationError
from apps.core.selectors import model_service_status, worker_status_list


@login_required
def home(request):
    return render(request, "frontend/home.html")


@area_required(Area.API_TOKENS)
def tokens(request):
    return render(request, "frontend/tokens.html", _tokens_context(request))


def _tokens_context(request, **extra) -> dict:
    return {"tokens": api_token_list(user=request.user), "scopes": ApiToken.Scope.choices,
            "default_days": settings.API_TOKEN_DEFAULT_DAYS, "max_days": settings.API_TOKEN_MAX_DAYS, **extra}


@area_required(Area.API_TOKENS)
@require_POST
def token_create(request):
    name = request.POST.get("name", "").strip()[:100]
    if not name:
        messages.error(request, "Give the token a name, for example the machine or IDE that will use it.")
        return redirect("frontend:tokens")
    try:
        created = api_token_create(user=request.user, name=name,
                                   scope=request.POST.get("scope", ApiToken.Scope.COMPLETION),
                                   expires_in_days=_form_days(request.POST.get("expires_in_days", "")))
    except ApplicationError as error:
        messages.error(request, str(error))
        return redirect("frontend:tokens")
    return render(request, "frontend/tokens.html", _tokens_context(request, new_secret=created.secret))


def _form_days(value: str) -> int | None:
    """The token lifetime typed in the form; blank: the default."""
    value = value.strip()
    if not value:
        return None
    if not (value.isdecimal() and len(value) <= 4):
        raise ApplicationError(message="Give the lifetime in whole days.", field="expires_in_days")
    return int(value)


@area_required(Area.API_TOKENS)
@require_POST
def token_delete(request, token_id: int):
    if not api_token_delete(user=request.user, token_id=token_id):
        raise Http404("No such token.")
    messages.success(request, "Token revoked.")
    return redirect("frontend:tokens")


@area_required(Area.USERS)
def users(request):
    return render(request, "frontend/users.html", {"users": user_list()})


@login_required
def status(request):
    return render(request, "frontend/status.html", _status_context())


@login_required
def status_panel(request):
    """The status panel alone, refreshed in place by HTMX."""
    return render(request, "frontend/_status_panel.html", _status_context())


def _status_context() -> dict:
    return {"service": model_service_status(), "workers": worker_status_list()}
