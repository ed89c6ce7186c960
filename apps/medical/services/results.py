"""Writes of diagnosis results: a case's result stored with its narrative, and the audited
stateless scoring and explanation of a presentation."""
from __future__ import annotations

from django.db import transaction

from apps.core.errors import ApplicationError
from apps.medical.models import Case, CaseResult
from apps.medical.features import EvidenceError, split_token
from apps.medical.selectors import DISCLAIMER, active_engine, diagnosis_result, note_findings
from apps.medical.services.audit import audit_event_create
from apps.medical.services.narratives import diagnosis_narrative

TOP_AUDITED = 3  # the leading conditions an audit event names


def diagnosis_compute(*, case: Case, user) -> CaseResult:
    """The case's result, computed from its evidence and stored with the narrative the clinician reads."""
    model, engine = active_engine()
    result = diagnosis_result(model=model, engine=engine, age=case.age, sex=case.sex, evidence=case.evidence,
                              negatives=case.negatives, unknown=case.unknown)
    result["narrative"] = diagnosis_narrative(result=result, user=user, case=case)  # may wait for the model
    with transaction.atomic():
        case_result = CaseResult.objects.create(case=case, model=model, evidence=case.evidence, result=result)
        audit_event_create(actor=user, action="diagnosis.compute", case=case, model_version=model.version,
                           top=[row["name"] for row in result["conditions"][:TOP_AUDITED]],
                           urgency=result["urgency"]["level"])
    return case_result


def presentation_answers(*, engine, evidence: list[dict]) -> dict[str, list[str]]:
    """The API's answers split for the engine: `evidence` (present tokens), `negatives` (absent codes or
    value tokens) and `unknown` (codes). Each item is {"id", "choice_id", "field"}; a bad id is a 422
    naming its field ("evidence[2].id"). A present id is a full token; absent and unknown may name a
    whole question ("E_55": no pain anywhere / don't know where)."""
    answers: dict[str, list[str]] = {"evidence": [], "negatives": [], "unknown": []}
    for item in evidence:
        code, value = split_token(item["id"])
        try:
            if item["choice_id"] == "present" or value is not None:
                engine.features.validate([item["id"]])
            elif code not in engine.features.specs:
                raise EvidenceError(f"unknown evidence {code!r}")
        except EvidenceError as error:
            raise EvidenceError(error.message, field=item["field"]) from None
        kind = {"present": "evidence", "absent": "negatives", "unknown": "unknown"}[item["choice_id"]]
        answer = item["id"] if value is not None and kind != "unknown" else code
        if answer not in answers[kind]:
            answers[kind].append(answer)
    return answers


def diagnosis_score(*, user, age: int, sex: str, evidence: list[dict], action: str = "api.diagnosis") -> dict:
    """The computed result of a presentation that is not stored as a case (the scoring is audited as
    `action`: api.diagnosis, or api.interview for the next question)."""
    model, engine = active_engine()
    answers = presentation_answers(engine=engine, evidence=evidence)
    result = diagnosis_result(model=model, engine=engine, age=age, sex=sex, **answers)
    audit_event_create(actor=user, action=action, model_version=model.version, **answers,
                       top=[row["name"] for row in result["conditions"][:TOP_AUDITED]])
    return result


def note_findings_propose(*, user, note: str) -> list[dict]:
    """The findings a note names, proposed for the clinician to confirm. The note is read, not stored;
    the audit records only how many findings were proposed."""
    proposals = note_findings(note=note)
    audit_event_create(actor=user, action="api.note_findings", proposed=len(proposals))
    return proposals


def diagnosis_explain(*, user, age: int, sex: str, evidence: list[str], condition: str) -> dict:
    """The findings for and against `condition` in a presentation (audited); a 422 for an unknown condition."""
    model, engine = active_engine()
    try:
        explanation = engine.explain(age, sex, engine.features.validate(evidence), condition)
    except KeyError:
        raise ApplicationError(message=f"condition: unknown condition {condition!r}.", status=422,
                               code="invalid", field="condition") from None
    audit_event_create(actor=user, action="api.explain", model_version=model.version, condition=condition)
    return {**explanation, "model_version": model.version, "disclaimer": DISCLAIMER}
