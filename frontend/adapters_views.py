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
from training.adapter_config import LARGE_DATASET, LARGE_DATASET_EXAMPLES, AdapterConfig

PAGE_ROWS = 50
CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 160, 40, 3  # the loss curve's inline SVG
BAR_WIDTH = 120  # the gate's comparison bars: a metric of 1.0 fills this


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


def _loss_chart(curve: list) -> dict | None:
    """Geometry of a job's loss curve (GET /api/adapters/v1/jobs/<id>/loss serves the same points), drawn
    in the template as inline SVG: x the step from the first to the last recorded, y the loss from the
    curve's lowest (bottom) to its highest (top). None until two steps are recorded."""
    if len(curve) < 2:
        return None
    steps, losses = [step for step, _ in curve], [loss for _, loss in curve]
    low, high = min(losses), max(losses)
    width, height = CHART_WIDTH - 2 * CHART_PAD, CHART_HEIGHT - 2 * CHART_PAD
    line = " ".join(f"{CHART_PAD + width * (step - steps[0]) / (steps[-1] - steps[0]):.1f},"
                    f"{CHART_PAD + height * ((high - loss) / (high - low) if high > low else 0.5):.1f}"
                    for step, loss in curve)
    return {"line": line, "width": CHART_WIDTH, "height": CHART_HEIGHT, "first": losses[0], "last": losses[-1],
            "low": low, "high": high, "steps": steps[-1]}


def _with_charts(jobs):
    jobs = list(jobs)
    for job in jobs:
        job.loss_chart = _loss_chart(job.loss_curve)
    return jobs


def _gate_bars(adapter) -> list[dict]:
    """The gate's domain metric per side (base, current, new) as bar lengths (metrics run from 0 to 1)."""
    scores = adapter.domain_scores
    return [{"side": side, "value": scores[side], "width": round(BAR_WIDTH * max(0.0, min(1.0, scores[side])), 1),
             "y": 2 + 12 * index} for index, side in enumerate(("base", "current", "new")) if scores[side] is not None]


@adapters_page
def overview(request):
    adapters = list(selectors.adapter_list())
    for adapter in adapters:
        adapter.gate_bars = _gate_bars(adapter)
    return render(request, "frontend/adapters/overview.html", {
        "datasets": selectors.dataset_list()[:PAGE_ROWS], "jobs": _with_charts(selectors.job_list()[:PAGE_ROWS]),
        "adapters": adapters, "domains": Domain.choices, "bar_width": BAR_WIDTH,
        "sources": selectors.dataset_source_choices(user=request.user),
        "defaults": dataclasses.asdict(AdapterConfig()), "large": dataclasses.asdict(LARGE_DATASET),
        "large_from": f"{LARGE_DATASET_EXAMPLES:,}"})


def _as_id(value: str, name: str) -> int:
    """A posted id; anything but a number names no object: a 404, never a 500."""
    if not (value.isdecimal() and len(value) <= 18):
        raise Http404(f"no {name} {value[:40]!r}")
    return int(value)


@adapters_page
def jobs_panel(request):
    """The job table alone, polled by HTMX while jobs run."""
    return render(request, "frontend/adapters/_jobs.html", {"jobs": _with_charts(selectors.job_list()[:PAGE_ROWS])})


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
