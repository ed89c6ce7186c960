"""Writes of diagnosis results: a case's result stored with its narrative, and the audited
stateless scoring and explanation of a presentation."""
from __future__ import annotations

from django.db import transaction

from apps.core.errors import ApplicationError
from apps.medical.models import Case, CaseResult
from apps.medical.selectors import DISCLAIMER, active_engine, diagnosis_result
from apps.medical.services.audit import audit_event_create
from apps.medical.services.narratives import diagnosis_narrative

TOP_AUDITED = 3  # the leading conditions an audit event names


def diagnosis_compute(*, case: Case, user) -> CaseResult:
    """The case's result, computed from its evidence and stored with the narrative the clinician reads."""
    model, engine = active_engine()
    result = diagnosis_result(model=model, engine=engine, age=case.age, sex=case.sex, evidence=case.evidence,
                              negatives=case.negatives)
    result["narrative"] = diagnosis_narrative(result=result, user=user, case=case)  # may wait for the model
    with transaction.atomic():
        case_result = CaseResult.objects.create(case=case, model=model, evidence=case.evidence, result=result)
        audit_event_create(actor=user, action="diagnosis.compute", case=case, model_version=model.version,
                           top=[row["name"] for row in result["conditions"][:TOP_AUDITED]],
                           urgency=result["urgency"]["level"])
    return case_result


def diagnosis_score(*, user, age: int, sex: str, evidence: list[str]) -> dict:
    """The computed result of a presentation that is not stored as a case (the scoring is audited)."""
    model, engine = active_engine()
    evidence = engine.features.validate(evidence)
    result = diagnosis_result(model=model, engine=engine, age=age, sex=sex, evidence=evidence)
    audit_event_create(actor=user, action="api.diagnosis", model_version=model.version, evidence=evidence,
                       top=[row["name"] for row in result["conditions"][:TOP_AUDITED]])
    return result


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
