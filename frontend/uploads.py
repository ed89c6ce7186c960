"""Console views that take a file: its size limit is in place before the body is read."""
from functools import wraps

from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from apps.core.errors import TooLargeError
from apps.core.limits import uploads_bound


def upload_limited(*, setting: str, field: str, back: str):
    """Cap the view's uploads at `settings.<setting>` bytes while they arrive. Django's CSRF check reads the
    body, so it is made here, after the limit is set (the view is exempt from the middleware's check, which
    the decorators above it carry up). An upload over the limit is a message on the page `back` names."""

    def decorator(view):
        protected = csrf_protect(view)

        @csrf_exempt
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            uploads_bound(request, setting=setting, field=field)
            try:
                return protected(request, *args, **kwargs)
            except TooLargeError as error:
                messages.error(request, str(error))
                return redirect(back, **kwargs)

        return wrapper

    return decorator
