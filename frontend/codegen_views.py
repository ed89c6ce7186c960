"""Console pages of the code-completion area: repositories, playground, acceptance stats.

Every repository shown or acted on comes from apps/codegen/selectors.py, as in the API.
"""
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.permissions import area_required
from apps.accounts.roles import Area
from apps.codegen import selectors, services
from apps.codegen.languages import LANGUAGES
from apps.codegen.models import Repository
from apps.core.errors import ApplicationError, NotFoundError
from frontend.uploads import upload_limited

codegen_page = area_required(Area.CODEGEN)


def _repositories(request):
    return selectors.repository_list_for_user(user=request.user).select_related("created_by")


@codegen_page
def overview(request):
    return render(request, "frontend/codegen/overview.html", {
        "repositories": _repositories(request), "stats": selectors.completion_stats(),
        "languages": sorted(LANGUAGES), "may_register_folders": selectors.user_is_admin(request.user)})


@codegen_page
def repository_progress(request):
    """The repository table alone, polled by HTMX while indexing runs."""
    return render(request, "frontend/codegen/_repositories.html", {"repositories": _repositories(request)})


@upload_limited(setting="CODEGEN_ARCHIVE_MAX_BYTES", field="archive", back="frontend:codegen")
@codegen_page
@require_POST
def repository_register(request):
    archive = request.FILES.get("archive")
    common = {"name": request.POST.get("name", "").strip()[:200] or "repository",
              "git_url": request.POST.get("git_url", "").strip()[:500], "shared": bool(request.POST.get("shared")),
              "user": request.user}
    try:
        if archive is not None:
            services.repository_register_archive(archive=archive, archive_name=archive.name, **common)
        else:
            services.repository_register_folder(path=request.POST.get("path", "").strip()[:1000], **common)
        messages.success(request, "Repository registered; indexing runs in the worker.")
    except ApplicationError as error:
        messages.error(request, str(error))
    return redirect("frontend:codegen")


@codegen_page
@require_POST
def repository_reindex(request, repository_id: int):
    try:
        repository = selectors.repository_get_for_user(user=request.user, repository_id=repository_id)
    except NotFoundError:
        raise Http404("No repository with this id.") from None
    services.repository_reindex(repository=repository)
    return redirect("frontend:codegen")


@codegen_page
def playground(request):
    return render(request, "frontend/codegen/playground.html", {
        "languages": sorted(LANGUAGES), "repositories": _repositories(request).filter(status=Repository.Status.READY)})
