"""Console pages of the adapters area (admins): datasets, jobs with live progress, adapters."""
import dataclasses
import functools

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.permissions import area_required
from apps.accounts.roles import Area
from apps.adapters import selectors, services
from apps.adapters.models import Domain
from apps.core.errors import ApplicationError, NotFoundError
from frontend.uploads import upload_limited
from training.adapter_config import AdapterConfig

PAGE_ROWS = 50


def adapters_page(view):
    """An admin page of the area; an id the selectors do not find is the console's 404."""
    @area_required(Area.ADAPTERS)
    @functools.wraps(view)
    def page(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except NotFoundError as error:
            raise Http404(str(error)) from None
    return page


def adapters_action(change):
    """A POST of the area's page that goes back to it when done (its outcome is a message there)."""
    @adapters_page
    @require_POST
    @functools.wraps(change)
    def action(request, *args, **kwargs):
        change(request, *args, **kwargs)
        return redirect("frontend:adapters")
    return action


@adapters_page
def overview(request):
    return render(request, "frontend/adapters/overview.html", {
        "datasets": selectors.dataset_list()[:PAGE_ROWS], "jobs": selectors.job_list()[:PAGE_ROWS],
        "adapters": selectors.adapter_list(), "domains": Domain.choices,
        "sources": selectors.dataset_source_choices(user=request.user),
        "defaults": dataclasses.asdict(AdapterConfig())})


def _as_id(value: str, name: str) -> int:
    """A posted id; anything but a number names no object: a 404, never a 500."""
    if not (value.isdecimal() and len(value) <= 18):
        raise Http404(f"no {name} {value[:40]!r}")
    return int(value)


@adapters_page
def jobs_panel(request):
    """The job table alone, polled by HTMX while jobs run."""
    return render(request, "frontend/adapters/_jobs.html", {"jobs": selectors.job_list()[:PAGE_ROWS]})


@upload_limited(setting="ADAPTER_DATASET_MAX_BYTES", field="file", back="frontend:adapters")
@adapters_action
def dataset_upload(request):
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a JSONL file.")
        return
    try:
        dataset = services.dataset_upload(name=request.POST.get("name", "").strip()[:200] or upload.name,
                                          domain=request.POST.get("domain") or "customer_service", filename=upload.name,
                                          file=upload, user=request.user)
        report = dataset.report
        rejected = len(report["rejected"])
        messages.success(request, f"Dataset {dataset.name}: {report['train']} training and {report['validation']} "
                                  f"validation examples, {rejected} line{'' if rejected == 1 else 's'} rejected.")
    except (ValueError, ApplicationError) as error:
        messages.error(request, f"Dataset refused: {error}")


@adapters_action
def dataset_build(request):
    """`source` is "knowledge_base:ID", "repository:ID", "suggestions" or "medical_cases"."""
    source, _, object_id = request.POST.get("source", "").partition(":")
    try:
        dataset = services.dataset_build(source=source, object_id=_as_id(object_id, source) if object_id else None,
                                         user=request.user)
        messages.success(request, f"Dataset {dataset.name}: {dataset.report['train']} training and "
                                  f"{dataset.report['validation']} validation examples.")
    except ApplicationError as error:
        messages.error(request, f"Dataset not built: {error}")


@adapters_action
def job_start(request):
    dataset = selectors.dataset_get(dataset_id=_as_id(request.POST.get("dataset", ""), "dataset"))
    try:
        config = services.job_config(values={
            "lr": float(request.POST["lr"]), "epochs": int(request.POST["epochs"]),
            "batch_sequences": int(request.POST["batch_sequences"]), "rank": int(request.POST["rank"]),
            "routed_experts": request.POST.get("routed_experts") == "on"})
        services.job_start(dataset=dataset, adapter_name=request.POST.get("adapter_name", "").strip(), config=config,
                           user=request.user)
    except (KeyError, ValueError, ApplicationError) as error:
        messages.error(request, f"Job not started: {error}")


@adapters_action
def job_cancel(request, job_id: int):
    services.job_cancel(job=selectors.job_get(job_id=job_id))


@adapters_action
def adapter_promote(request, adapter_id: int):
    try:
        services.adapter_promote(adapter=selectors.adapter_get(adapter_id=adapter_id), user=request.user,
                                 override=request.POST.get("override") == "on")
        messages.success(request, "Adapter promoted: model_service serves it now.")
    except ApplicationError as error:
        messages.error(request, str(error))


@adapters_action
def adapter_retire(request, adapter_id: int):
    services.adapter_retire(adapter=selectors.adapter_get(adapter_id=adapter_id))
