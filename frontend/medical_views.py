"""Console pages of the diagnosis-assist area: the clinician's form, the result, the handover report,
sharing, and an admin's audited access to another clinician's case (break-glass).

Every case page finds its case through `case_get_for_user`, as the API does; a case the user may
not see is a 404. Under break-glass the stated reason travels with each request (`reason`), so every
page the admin opens is audited with it. Admins also run federated training from here (the jobs of
services.federated, the page refreshing while one runs)."""
import dataclasses
import math
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import BadRequest
from django.db.models import prefetch_related_objects
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.permissions import area_required
from apps.accounts.roles import Area
from apps.core.errors import ApplicationError, NotFoundError
from apps.medical import selectors, services
from apps.medical.models import Case, FederatedJob
from apps.medical.services.federated import CONFIG_LIMITS, federated_config

medical_page = area_required(Area.MEDICAL)


def _answers_posted(request) -> list:
    """The form's findings: present tokens (`evidence`) and, from accepted note proposals, findings the
    note denies (`absent`, as the API's absent answers)."""
    return [*request.POST.getlist("evidence"),
            *({"id": token, "choice_id": "absent", "field": "absent"} for token in request.POST.getlist("absent"))]


@medical_page
def case_form(request):
    """The new-case form. "Read the note" (`action=propose`) shows the findings the note names as chips to
    accept (checked, they are submitted with the case) or reject, the form's other entries kept."""
    try:
        model, _ = selectors.active_engine()
    except selectors.NoActiveModel:
        return render(request, "frontend/medical/form.html", {"no_model": True})
    options = selectors.evidence_options(source=model.source)
    cases = selectors.case_list_for_user(user=request.user).select_related("clinician")[:20]
    if request.method == "POST" and request.POST.get("action") == "propose":
        note = request.POST.get("note", "")[:services.NOTE_MAX_CHARS]
        labels = dict(options)
        picked = [(token, labels.get(token, token)) for token in dict.fromkeys(request.POST.getlist("evidence"))]
        proposals = [proposal for proposal in services.note_findings_propose(user=request.user, note=note)
                     if proposal["token"] not in {token for token, _ in picked}]
        return render(request, "frontend/medical/form.html", {
            "options": options, "model": model, "cases": cases, "proposals": proposals, "picked": picked,
            "note": note, "age": request.POST.get("age", ""), "sex": request.POST.get("sex", "F")})
    if request.method == "POST":
        try:
            age = int(request.POST.get("age", ""))
            if not 0 <= age <= 120:
                raise ValueError
        except ValueError:
            messages.error(request, "Age must be a whole number from 0 to 120.")
            return redirect("frontend:medical")
        try:
            case = services.case_create(clinician=request.user, age=age, sex=request.POST.get("sex") or "F",
                                        evidence=_answers_posted(request),
                                        note=request.POST.get("note", "")[:services.NOTE_MAX_CHARS])
        except ApplicationError as error:
            messages.error(request, f"Finding not understood: {error}")
            return redirect("frontend:medical")
        services.diagnosis_compute(case=case, user=request.user)
        return redirect("frontend:medical_case", case_id=case.id)
    return render(request, "frontend/medical/form.html", {"options": options, "model": model, "cases": cases})


def _reason(request) -> str:
    return request.POST.get("reason") or request.GET.get("reason", "")


def _case(request, case_id: int) -> Case:
    """The case through the one visibility selector; one the user may not see is a plain 404."""
    try:
        return selectors.case_get_for_user(user=request.user, case_id=case_id, reason=_reason(request))
    except NotFoundError:
        raise Http404("No such case.") from None
    except ApplicationError as error:  # a break-glass reason that is too long
        raise BadRequest(str(error)) from None


def _result_context(request, case: Case) -> dict:
    result = selectors.case_result_latest(case=case)
    is_creator = case.clinician_id == request.user.id
    break_glass = not is_creator and not case.shares.filter(clinician=request.user).exists()
    return {"case": case, "result": result.result if result else None, "model_version": result.model.version
            if result else None, "narrative": selectors.result_narrative(result.result) if result else "",
            "is_creator": is_creator, "shares": case.shares.select_related("clinician"),
            "reason": _reason(request).strip() if break_glass else "",
            "reason_query": urlencode({"reason": _reason(request).strip()}) if break_glass else ""}


@medical_page
def case_detail(request, case_id: int):
    case = _case(request, case_id)
    services.audit_event_create(actor=request.user, action="case.view", case=case)
    return render(request, "frontend/medical/case.html", _result_context(request, case))


@medical_page
@require_POST
def case_answer(request, case_id: int):
    """Answer a suggested question; the result is recomputed and the panel swapped in place (HTMX)."""
    case = _case(request, case_id)
    try:
        services.case_answer(case=case, evidence=request.POST.get("evidence", ""), answer=request.POST.get("answer", ""),
                             clinician=request.user)
    except ApplicationError as error:
        messages.error(request, str(error))
    services.diagnosis_compute(case=case, user=request.user)
    template = "frontend/medical/_result.html" if request.headers.get("HX-Request") else "frontend/medical/case.html"
    return render(request, template, _result_context(request, case))


@medical_page
def case_report(request, case_id: int):
    """A printable handover report of the case and its latest result."""
    case = _case(request, case_id)
    services.audit_event_create(actor=request.user, action="case.report", case=case)
    return render(request, "frontend/medical/report.html", _result_context(request, case))


@medical_page
@require_POST
def case_share(request, case_id: int):
    """The case's creator shares it with another clinician, or stops sharing it (`unshare`)."""
    case = _case(request, case_id)
    username = request.POST.get("username", "").strip()
    try:
        if request.POST.get("unshare"):
            services.case_unshare(case=case, by=request.user, username=username)
            messages.success(request, f"Case {case.id} is no longer shared with {username}.")
        else:
            services.case_share(case=case, by=request.user, username=username)
            messages.success(request, f"Case {case.id} is shared with {username}.")
    except ApplicationError as error:
        messages.error(request, str(error))
    return redirect("frontend:medical_case", case_id=case.id)


@area_required(Area.USERS)
@require_POST
def case_break_glass(request):
    """An admin opens another clinician's case by stating why; the case page audits it with the reason."""
    case_id, reason = request.POST.get("case", "").strip(), request.POST.get("reason", "").strip()
    if not (case_id.isascii() and case_id.isdigit()) or not reason:
        messages.error(request, "Give the case number and the reason for opening it.")
        return redirect("frontend:medical")
    return redirect(reverse("frontend:medical_case", kwargs={"case_id": int(case_id)}) + "?" +
                    urlencode({"reason": reason}))


@area_required(Area.USERS)
def audit_log(request):
    """Admins read the audit log; nothing here can change it."""
    return render(request, "frontend/medical/audit.html",
                  {"events": selectors.audit_event_list()})


# --- federated training (admins) ------------------------------------------------------------------
FEDERATED_FIELDS = {"source": "Knowledge base", "patients_file": "Patients file", "config.sites": "Sites",
                    "config.iterations": "Iterations", "config.alpha": "Case-mix alpha",
                    "config.seed": "Seed"}  # the form's labels, by the field an ApplicationError names
federated_page = area_required(Area.ADAPTERS)  # the admins' training area, as the API's


def _federated_context() -> dict:
    jobs = selectors.federated_job_list()
    prefetch_related_objects(jobs, "created_by")
    for job in jobs:
        federated = job.metrics.get("federated", {})
        received = federated.get("received", {})
        job.site_rows = [{"site": f"site-{index}", "patients": received.get(f"site-{index}", {}).get("patients"),
                          "metrics_sent": received.get(f"site-{index}", {}).get("metrics_sent"), **sent}
                         for index, sent in enumerate(federated.get("sent", []), start=1)]
    active = (FederatedJob.Status.QUEUED, FederatedJob.Status.RUNNING)
    return {"jobs": jobs, "federated_active": any(job.status in active for job in jobs)}


@federated_page
def federated_jobs(request):
    """Federated training: the form that queues a run (the API's inputs and defaults) and the job table."""
    defaults = {name: value for name, value in dataclasses.asdict(federated_config(values={})).items()
                if name in CONFIG_LIMITS}
    return render(request, "frontend/medical/federated.html", {
        **_federated_context(), "defaults": defaults, "limits": CONFIG_LIMITS,
        "patients_files": selectors.federated_patients_files(), "knowledge_bases": selectors.knowledge_base_sources()})


@federated_page
def federated_jobs_panel(request):
    """The job table alone, polled by HTMX while a job is queued or running. Once none is, the whole page
    is reloaded (HX-Refresh): the start button comes back and the gate may have changed the active model."""
    context = _federated_context()
    response = render(request, "frontend/medical/_federated_jobs.html", context)
    if not context["federated_active"]:
        response["HX-Refresh"] = "true"
    return response


def _federated_config_posted(request) -> dict:
    """The settings the form names; a blank one is left out (its default, as the API's). Text that is no
    number is NaN, which the service refuses as out of bounds naming the field, so the bounds are the service's."""
    values = {}
    for name in CONFIG_LIMITS:
        text = request.POST.get(name, "").strip()
        if not text:
            continue
        try:
            number = float(text[:40])
        except ValueError:
            number = math.nan
        values[name] = int(number) if number.is_integer() else number
    return values


@federated_page
@require_POST
def federated_job_start(request):
    """Queue a federated run; a refusal (another job queued or running, an input out of bounds) is a
    message on the page that names the field at fault."""
    source = request.POST.get("source", "").strip() or "ddxplus"
    try:
        job = services.federated_job_start(source=source, patients_file=request.POST.get("patients_file", "").strip(),
                                           config=_federated_config_posted(request), user=request.user)
    except services.FederatedJobBusy as error:
        messages.error(request, f"Federated run not started: {error}; wait for it to finish.")
    except ApplicationError as error:
        label = FEDERATED_FIELDS.get(error.field, error.field)
        messages.error(request, f"Federated run not started — {label}: {error}" if label else
                       f"Federated run not started: {error}")
    else:
        messages.success(request, f"Federated job {job.id} queued: the page follows its progress.")
    return redirect("frontend:medical_federated")
