"""Request checks every view relies on, done once."""
from django.http import HttpResponseBadRequest
from django.utils.deprecation import MiddlewareMixin

NUL = "\x00"


class RejectNulCharactersMiddleware(MiddlewareMixin):
    """A NUL character in a console form or query value is a 400: PostgreSQL cannot store one, so it
    would otherwise surface as a 500 in whichever view saves the text (console views read request.POST
    directly).

    CSRF-exempt views are left alone: DRF's API views (their fields refuse NUL and they answer JSON)
    and views that install their own bounded upload handlers must be the first to read their body.
    """

    def process_view(self, request, view_func, view_args, view_kwargs):
        if getattr(view_func, "csrf_exempt", False):
            return None
        values = [*request.GET.values(), *request.POST.values()]
        if any(NUL in value for value in values if isinstance(value, str)):
            return HttpResponseBadRequest("Text may not contain NUL (\\x00) characters.")
        return None
