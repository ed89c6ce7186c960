"""Console pages of the adapters area (admins): datasets, jobs with live progress, adapters."""
import dataclasses

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.permissions import area_required
from apps.accounts.roles import Area
from apps.adapters import services
from apps.adapters.models import Adapter, AdapterDataset, AdapterJob, Domain
from apps.core.errors import ApplicationError
from apps.core.model_client import ModelServiceError
from training.adapters import AdapterConfig

adapters_page = area_required(Area.ADAPTERS)


@adapters_page
def overview(request):
    return render(request, "frontend/adapters/overview.html", {
        "datasets": AdapterDataset.objects.all()[:50], "jobs": AdapterJob.objects.all()[:50],
        "adapters": Adapter.objects.all(), "domains": Domain.choices, "sources": _dataset_sources(),
        "defaults": dataclasses.asdict(AdapterConfig())})


def _dataset_sources() -> list[tuple[str, str]]:
    """(value, label) of the suite's data an admin can build a dataset from."""
    from apps.codegen.models import Repository
    from apps.customer_service.models import KnowledgeBase

    return [*((f"knowledge_base:{kb.id}", f"Knowledge base: {kb.name}") for kb in KnowledgeBase.objects.all()),
            ("suggestions", "Accepted and edited suggestions"),
            *((f"repository:{repo.id}", f"Repository (code, fill-in-the-middle): {repo.name}")
              for repo in Repository.objects.all()),
            ("medical_cases", "Medical cases (computed summaries)")]


def _as_id(value: str, name: str) -> int:
    """A posted id; anything but a number names no object: a 404, never a 500."""
    if not (value.isdecimal() and len(value) <= 18):
        raise Http404(f"no {name} {value[:40]!r}")
    return int(value)


@adapters_page
def jobs_panel(request):
    """The job table alone, polled by HTMX while jobs run."""
    return render(request, "frontend/adapters/_jobs.html", {"jobs": AdapterJob.objects.all()[:50]})


@adapters_page
@require_POST
def dataset_upload(request):
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a JSONL file.")
        return redirect("frontend:adapters")
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
    return redirect("frontend:adapters")


@adapters_page
@require_POST
def dataset_build(request):
    """`source` is "knowledge_base:ID", "repository:ID", "suggestions" or "medical_cases"."""
    source, _, object_id = request.POST.get("source", "").partition(":")
    try:
        dataset = services.dataset_build(source=source, object_id=_as_id(object_id, source) if object_id else None,
                                         user=request.user)
        messages.success(request, f"Dataset {dataset.name}: {dataset.report['train']} training and "
                                  f"{dataset.report['validation']} validation examples.")
    except (ValueError, ObjectDoesNotExist, ApplicationError) as error:
        messages.error(request, f"Dataset not built: {error}")
    return redirect("frontend:adapters")


@adapters_page
@require_POST
def job_start(request):
    dataset = get_object_or_404(AdapterDataset, id=_as_id(request.POST.get("dataset", ""), "dataset"))
    try:
        config = AdapterConfig(lr=float(request.POST["lr"]), epochs=int(request.POST["epochs"]),
                               batch_sequences=int(request.POST["batch_sequences"]), rank=int(request.POST["rank"]),
                               micro_batch=min(8, int(request.POST["batch_sequences"])),
                               routed_experts=request.POST.get("routed_experts") == "on")
        services.job_start(dataset=dataset, adapter_name=request.POST.get("adapter_name", "").strip(), config=config,
                           user=request.user)
    except (KeyError, ValueError, ApplicationError) as error:
        messages.error(request, f"Job not started: {error}")
    return redirect("frontend:adapters")


@adapters_page
@require_POST
def job_cancel(request, job_id: int):
    services.job_cancel(job=get_object_or_404(AdapterJob, id=job_id))
    return redirect("frontend:adapters")


@adapters_page
@require_POST
def adapter_promote(request, adapter_id: int):
    try:
        services.adapter_promote(adapter=get_object_or_404(Adapter, id=adapter_id), user=request.user,
                                 override=request.POST.get("override") == "on")
        messages.success(request, "Adapter promoted: model_service serves it now.")
    except services.GateRefused as refused:
        messages.error(request, f"Promotion refused: {refused}. Tick 'override' to promote anyway (it is logged).")
    except ModelServiceError as error:
        messages.error(request, f"model_service could not load the adapter: {error}")
    return redirect("frontend:adapters")


@adapters_page
@require_POST
def adapter_retire(request, adapter_id: int):
    services.adapter_retire(adapter=get_object_or_404(Adapter, id=adapter_id))
    return redirect("frontend:adapters")
