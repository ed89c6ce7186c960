from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from apps.accounts.roles import Area


class HasArea(BasePermission):
    """Allows a DRF view to users whose role may use the view's `area` attribute."""

    message = "Your role may not use this part of the suite."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.may_use(view.area))


class SchemaAccess(BasePermission):
    """The OpenAPI schema and its docs page map every route: signed-in users only, unless API_SCHEMA_PUBLIC."""

    message = "Sign in to read the API schema."

    def has_permission(self, request, view) -> bool:
        return settings.API_SCHEMA_PUBLIC or bool(request.user and request.user.is_authenticated)


def area_required(area: Area):
    """Page decorator: log-in required, then 403 unless the user's role may use `area`."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.may_use(area):
                raise PermissionDenied("Your role may not use this part of the suite.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
