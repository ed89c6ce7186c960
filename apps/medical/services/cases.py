"""Writes of cases: create, answer, share, unshare, and the audited export of their summaries."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from apps.accounts.roles import Role
from apps.core.errors import ApplicationError, NotFoundError
from apps.medical.deidentify import deidentify
from apps.medical.features import EvidenceError, split_token
from apps.medical.models import AuditEvent, Case, CaseResult, CaseShare
from apps.medical.narrative import narrative
from apps.medical.selectors import active_engine
from apps.medical.services.audit import audit_event_create

NOTE_MAX_CHARS = 5000  # a case's free-text note (the API refuses a longer one, the console form cuts it)


@transaction.atomic
def case_create(*, clinician, age: int, sex: str, evidence: list, note: str = "") -> Case:
    """A case with its answers checked against the active model's knowledge base and its note de-identified.
    `evidence`: present tokens, or the API's answers ({"id", "choice_id": present | absent | unknown,
    "field"}, services.results.presentation_answers), kept apart as present, absent and unknown."""
    from apps.medical.services.results import presentation_answers  # results imports the selectors this reads

    _, engine = active_engine()
    answers = presentation_answers(engine=engine, evidence=[
        item if isinstance(item, dict) else {"id": item, "choice_id": "present", "field": f"evidence[{i}]"}
        for i, item in enumerate(evidence)])
    case = Case.objects.create(clinician=clinician, age=age, sex=sex,
                               evidence=engine.features.validate(answers["evidence"]),
                               negatives=answers["negatives"], unknown=answers["unknown"],
                               note=deidentify(note.replace("\x00", "")))  # PostgreSQL text holds no NUL
    audit_event_create(actor=clinician, action="case.create", case=case, evidence=case.evidence,
                       **({"negatives": case.negatives} if case.negatives else {}),
                       **({"unknown": case.unknown} if case.unknown else {}))
    return case


@transaction.atomic
def case_answer(*, case: Case, evidence: str, answer: str, clinician) -> Case:
    """Record the answer to a suggested question: "yes", "no", "unknown" (don't know), or a value token
    for non-binary findings. A code's new answer replaces its earlier "no" or "don't know" (and "no" or
    "don't know" replaces its earlier present tokens), so each code is present, absent, unknown or unasked."""
    _, engine = active_engine()
    code, _ = split_token(evidence)
    if code not in engine.features.specs:
        raise EvidenceError(f"unknown evidence {code!r}")
    negatives = [c for c in case.negatives if split_token(c)[0] != code]
    unknown = [c for c in case.unknown if c != code]
    if answer in ("no", "unknown"):
        case.evidence = [t for t in case.evidence if split_token(t)[0] != code]
        (negatives if answer == "no" else unknown).append(code)
    else:
        token = code if answer == "yes" else evidence
        case.evidence = engine.features.validate([*case.evidence, token])
    case.negatives, case.unknown = sorted(negatives), sorted(unknown)
    case.save(update_fields=["evidence", "negatives", "unknown", "updated_at"])
    audit_event_create(actor=clinician, action="case.answer", case=case, evidence=evidence, answer=answer)
    return case


def _require_creator(*, case: Case, user) -> None:
    """Sharing is the creator's decision: those it was shared with (or an admin) may see, not share."""
    if case.clinician_id != user.id:
        raise ApplicationError(message="Only the clinician who created the case may change who it is shared with.",
                               status=403, code="not_case_creator")


def _username(username: str) -> str:
    """A username as typed, checked before it reaches a query (no NUL, which PostgreSQL refuses)."""
    username = username.strip()
    if not username or len(username) > 150 or not username.isprintable():
        raise ApplicationError(message="username: give the clinician's username.", status=422, code="invalid",
                               field="username")
    return username


@transaction.atomic
def case_share(*, case: Case, by, username: str) -> CaseShare:
    """Let another clinician read, answer and report `case`; sharing twice changes nothing."""
    _require_creator(case=case, user=by)
    username = _username(username)
    clinician = get_user_model().objects.filter(username=username, is_active=True, role=Role.CLINICIAN).first()
    if clinician is None:
        raise ApplicationError(message=f"username: no clinician is called {username!r}.", status=422,
                               code="invalid", field="username")
    if clinician.id == case.clinician_id:
        raise ApplicationError(message="username: the case is yours already.", status=422, code="invalid",
                               field="username")
    share, created = CaseShare.objects.get_or_create(case=case, clinician=clinician, defaults={"shared_by": by})
    if created:
        audit_event_create(actor=by, action="case.share", case=case, clinician=clinician.username)
    return share


@transaction.atomic
def case_unshare(*, case: Case, by, username: str) -> None:
    _require_creator(case=case, user=by)
    username = _username(username)
    removed, _ = CaseShare.objects.filter(case=case, clinician__username=username).delete()
    if not removed:
        raise NotFoundError(f"username: the case is not shared with {username!r}.", field="username")
    audit_event_create(actor=by, action="case.unshare", case=case, clinician=username)


@transaction.atomic
def case_summaries_export(*, user, purpose: str) -> list[str]:
    """The computed summary of every case's latest result (never its note), for training data.

    Reading every case is reading patient data: one audit event per case names the reader and the
    purpose, as for any other read."""
    latest = {}
    for result in CaseResult.objects.order_by("-created_at"):
        latest.setdefault(result.case_id, result)
    AuditEvent.objects.bulk_create([AuditEvent(actor=user, action="case.export", case_id=case_id,
                                               model_version=result.result.get("model_version"),
                                               details={"purpose": purpose}) for case_id, result in latest.items()])
    return [narrative(result.result) for result in latest.values()]
