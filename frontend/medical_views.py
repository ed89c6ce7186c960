"""Console pages of the diagnosis-assist area: the clinician's form, the result, the handover report."""
from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.permissions import area_required
from apps.accounts.roles import Area
from apps.core.model_client import ModelServiceError, adapter_or_base, get_client
from apps.medical import services
from apps.medical.features import EvidenceError
from apps.medical.models import AuditEvent, Case, Evidence

medical_page = area_required(Area.MEDICAL)


def _options(source: str) -> list[tuple[str, str]]:
    """(token, label) for every finding and value the clinician may pick, for the autocomplete."""
    options = []
    for evidence in Evidence.objects.filter(source=source):
        if evidence.data_type == "B":
            options.append((evidence.code, evidence.question_en))
        else:
            options += [(f"{evidence.code}_@_{value}", f"{evidence.question_en} — {evidence.value_label(value)}")
                        for value in evidence.possible_values]
    return options


@medical_page
def case_form(request):
    try:
        model, _ = services.active_engine()
    except services.NoActiveModel:
        return render(request, "frontend/medical/form.html", {"no_model": True})
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
                                        evidence=request.POST.getlist("evidence"), note=request.POST.get("note", "")[:5000])
        except EvidenceError as error:
            messages.error(request, f"Finding not understood: {error}")
            return redirect("frontend:medical")
        services.diagnosis_compute(case=case, user=request.user)
        return redirect("frontend:medical_case", case_id=case.id)
    cases = Case.objects.filter(clinician=request.user)[:20]
    return render(request, "frontend/medical/form.html", {"options": _options(model.source), "model": model,
                                                           "cases": cases})


def _result_context(request, case: Case) -> dict:
    result = case.results.first()
    context = {"case": case, "result": result.result if result else None, "model_version": result.model.version
               if result else None, "narrative": services.narrative(result.result) if result else ""}
    if result and settings.MEDICAL_NARRATIVE_MODEL:
        context["narrative"] = _model_narrative(context["narrative"]) or context["narrative"]
    return context


def _model_narrative(computed: str) -> str:
    """The model's rewording of the computed summary (only ever that summary, never the note)."""
    try:
        client = get_client(connect_retries=0, timeout=20)
        return client.chat(messages=services.narrative_messages(computed), max_tokens=200, temperature=0.2,
                           model=adapter_or_base(client, settings.MEDICAL_ADAPTER)).text.strip()
    except ModelServiceError:
        return ""


@medical_page
def case_detail(request, case_id: int):
    case = get_object_or_404(Case, id=case_id)
    services.audit(actor=request.user, action="case.view", case=case)
    return render(request, "frontend/medical/case.html", _result_context(request, case))


@medical_page
@require_POST
def case_answer(request, case_id: int):
    """Answer a suggested question; the result is recomputed and the panel swapped in place (HTMX)."""
    case = get_object_or_404(Case, id=case_id)
    try:
        services.case_answer(case=case, evidence=request.POST.get("evidence", ""), answer=request.POST.get("answer", ""),
                             clinician=request.user)
    except EvidenceError as error:
        messages.error(request, str(error))
    services.diagnosis_compute(case=case, user=request.user)
    template = "frontend/medical/_result.html" if request.headers.get("HX-Request") else "frontend/medical/case.html"
    return render(request, template, _result_context(request, case))


@medical_page
def case_report(request, case_id: int):
    """A printable handover report of the case and its latest result."""
    case = get_object_or_404(Case, id=case_id)
    services.audit(actor=request.user, action="case.report", case=case)
    return render(request, "frontend/medical/report.html", _result_context(request, case))


@area_required(Area.USERS)
def audit_log(request):
    """Admins read the audit log; nothing here can change it."""
    return render(request, "frontend/medical/audit.html",
                  {"events": AuditEvent.objects.select_related("actor", "case")[:500]})
