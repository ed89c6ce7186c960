"""Console pages of the code-completion area: repositories, playground, acceptance stats."""
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.permissions import area_required
from apps.accounts.roles import Area
from apps.codegen import services
from apps.codegen.languages import LANGUAGES
from apps.codegen.models import Repository

codegen_page = area_required(Area.CODEGEN)


@codegen_page
def overview(request):
    return render(request, "frontend/codegen/overview.html", {
        "repositories": Repository.objects.all(), "stats": services.completion_stats(),
        "languages": sorted(LANGUAGES)})


@codegen_page
def repository_progress(request):
    """The repository table alone, polled by HTMX while indexing runs."""
    return render(request, "frontend/codegen/_repositories.html", {"repositories": Repository.objects.all()})


@codegen_page
@require_POST
def repository_register(request):
    archive = request.FILES.get("archive")
    try:
        services.repository_register(
            name=request.POST.get("name", "").strip()[:200] or "repository", path=request.POST.get("path", "").strip(),
            archive=archive.read() if archive else None, archive_name=archive.name if archive else "",
            git_url=request.POST.get("git_url", "").strip()[:500], user=request.user)
        messages.success(request, "Repository registered; indexing runs in the worker.")
    except ValueError as error:
        messages.error(request, str(error))
    return redirect("frontend:codegen")


@codegen_page
@require_POST
def repository_reindex(request, repository_id: int):
    services.repository_reindex(repository=get_object_or_404(Repository, id=repository_id))
    return redirect("frontend:codegen")


@codegen_page
def playground(request):
    return render(request, "frontend/codegen/playground.html", {
        "languages": sorted(LANGUAGES), "repositories": Repository.objects.filter(status=Repository.Status.READY)})
