"""Reads of cases. Who may see a case is decided here, once, for the API and the console.

A case is visible to the clinician who created it and to those they shared it with. An admin may
open anyone's case only by stating a reason ("break-glass"): each such access is audited with the
admin, the case and the reason. Everyone else, and an admin without a reason, is told the case
does not exist (a 404), exactly as for an id that was never used.
"""
from django.db.models import Q, QuerySet

from apps.accounts.roles import Role
from apps.core.errors import ApplicationError, NotFoundError
from apps.medical import fhir
from apps.medical.deidentify import deidentify
from apps.medical.features import split_token
from apps.medical.models import AuditEvent, Case, CaseResult, Evidence
from apps.medical.narrative import narrative, narrative_messages

MAX_ID = 2**63 - 1  # the largest BigAutoField value; a larger id would be a database error, not a 404
MAX_REASON_CHARS = 500
BREAK_GLASS = "case.break_glass"


def case_list_for_user(*, user) -> QuerySet[Case]:
    """The cases `user` created or that were shared with them (never others', even for an admin)."""
    return Case.objects.filter(Q(clinician=user) | Q(shares__clinician=user)).distinct()


def _case_id(case_id) -> int:
    """A case number is ASCII digits within the id column's range; anything else matches no case."""
    text = str(case_id)
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_ID:
        raise NotFoundError("No such case.", field="case")
    return int(text)


def case_get_for_user(*, user, case_id, reason: str = "") -> Case:
    """The case, if `user` may see it; raises NotFoundError otherwise (unknown and hidden alike).

    An admin who gives a `reason` gets anyone's case, and the access is recorded in the audit log
    (the reason de-identified, like every free text the log holds) before the case is returned, so
    no caller can forget to record it."""
    found = Case.objects.select_related("clinician").filter(id=_case_id(case_id)).first()
    if found is None:
        raise NotFoundError("No such case.", field="case")
    if found.clinician_id == user.id or found.shares.filter(clinician=user).exists():
        return found
    reason = (reason or "").strip()
    if user.role != Role.ADMIN or not reason:
        raise NotFoundError("No such case.", field="case")
    if len(reason) > MAX_REASON_CHARS or not reason.isprintable():
        raise ApplicationError(message=f"reason: one line of at most {MAX_REASON_CHARS} printable characters.",
                               status=422, code="invalid", field="reason")
    AuditEvent.objects.create(actor=user, action=BREAK_GLASS, case=found, details={"reason": deidentify(reason)})
    return found


def case_result_latest(*, case: Case) -> CaseResult | None:
    return case.results.select_related("model").first()


def result_narrative(result: dict) -> str:
    """The summary shown with a stored result: the narrative stored with it, or, for a result stored
    before narratives were, its computed summary."""
    return result.get("narrative") or narrative(result)


def case_detail(*, case: Case) -> dict:
    """A case as the API shows it: the presentation, who it is shared with, the latest result and its narrative."""
    latest = case_result_latest(case=case)
    return {"case": case.id, "clinician": case.clinician.username,
            "shared_with": [share.clinician.username for share in case.shares.select_related("clinician")],
            "age": case.age, "sex": case.sex, "evidence": case.evidence, "negatives": case.negatives,
            "unknown": case.unknown, "note": case.note, "result": latest.result if latest else None,
            "narrative": result_narrative(latest.result) if latest else None}


def audit_event_list(*, limit: int = 500) -> QuerySet[AuditEvent]:
    """The most recent audit events, newest first, for an admin to read."""
    return AuditEvent.objects.select_related("actor", "case")[:limit]


# --- training rows: what adapter datasets learn from this app ----------------------------------

def case_summary_training_rows(*, user, purpose: str) -> list[dict]:
    """The latest computed summary of every case (never its note) in the prompt this app sends the
    model for rewording, answered with the summary itself, so an adapter learns to keep every computed
    fact. Reading every case is audited like any read: one event per case names `user` and `purpose`."""
    from apps.medical.services import case_summaries_export  # services import this module

    return [{"messages": [*narrative_messages(summary), {"role": "assistant", "content": summary}]}
            for summary in case_summaries_export(user=user, purpose=purpose)]


def case_fhir_bundle(*, case: Case) -> dict:
    """The case as a FHIR R4 collection Bundle (apps.medical.fhir): its findings, and the differential
    of its latest result (none before one is computed)."""
    latest = case_result_latest(case=case)
    result = latest.result if latest else {}
    codes = {split_token(token)[0] for token in [*case.evidence, *case.negatives, *case.unknown]}
    questions = dict(Evidence.objects.filter(code__in=codes).values_list("code", "question_en"))
    stamp = (latest.created_at if latest else case.updated_at).isoformat()
    return fhir.case_bundle(case_id=case.id, sex=case.sex, evidence=case.evidence, negatives=case.negatives,
                            unknown=case.unknown, conditions=result.get("conditions", []), labels=result.get("labels", {}),
                            questions=questions, timestamp=stamp)
