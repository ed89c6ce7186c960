"""Request checks every view relies on, done once."""
from django.http import HttpResponseBadRequest, JsonResponse
from django.utils.deprecation import MiddlewareMixin

NUL = "\x00"


class RejectNulCharactersMiddleware(MiddlewareMixin):
    """A NUL character in a query or form value is a 400: PostgreSQL cannot store one, so it would
    otherwise surface as a 500 in whichever view saves the text (DRF's fields refuse it themselves;
    console forms read request.POST directly).

    The body of a CSRF-exempt view is left to it: DRF's views (their fields refuse NUL) and views that
    install their own bounded upload handlers must be the first to read it, as the CSRF check would.
    """

    def process_view(self, request, view_func, view_args, view_kwargs):
        values = [*request.GET.values()]
        if not getattr(view_func, "csrf_exempt", False):
            values += request.POST.values()
        if not any(NUL in value for value in values if isinstance(value, str)):
            return None
        message = "Text may not contain NUL (\\x00) characters."
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": message, "code": "nul_character"}, status=400)
        return HttpResponseBadRequest(message)
