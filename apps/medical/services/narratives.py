"""The diagnosis narrative: the computed summary, reworded by the model only when it is configured
on (MEDICAL_NARRATIVE_MODEL) and only when the rewording passes the suite's fact guard."""
from __future__ import annotations

from django.conf import settings

from apps.core.fact_check import introduces_facts
from apps.core.model_client import ModelServiceError, adapter_or_base, get_client
from apps.medical.models import Case
from apps.medical.narrative import narrative, narrative_messages
from apps.medical.selectors import condition_names
from apps.medical.services.audit import audit_event_create

NARRATIVE_TIMEOUT_S = 20
NARRATIVE_MAX_TOKENS = 200


def _model_wording(summary: str) -> tuple[str, str]:
    """The model's rewording of `summary` (only ever that summary, never the note) and the model that
    wrote it; ("", "") when model_service is unavailable."""
    try:
        client = get_client(connect_retries=0, timeout=NARRATIVE_TIMEOUT_S)
        adapter = adapter_or_base(client, settings.MEDICAL_ADAPTER)
        text = client.chat(messages=narrative_messages(summary), max_tokens=NARRATIVE_MAX_TOKENS, temperature=0.2,
                           model=adapter).text.strip()
    except ModelServiceError:
        return "", ""
    return text, adapter or "base model"


def diagnosis_narrative(*, result: dict, user, case: Case | None = None) -> str:
    """What the clinician reads as the summary of a computed `result`.

    The deterministic summary (`narrative.narrative`), unless MEDICAL_NARRATIVE_MODEL is on and the
    model's rewording holds no number and names no condition the summary does not (the fact guard
    customer service uses, with every known condition as a term). Each time the model is asked, an
    audit event records which text was used: "model", "rejected" (the guard failed) or "unavailable"."""
    summary = narrative(result)
    if not settings.MEDICAL_NARRATIVE_MODEL:
        return summary
    worded, model = _model_wording(summary)
    if not worded:
        wording = "unavailable"
    elif introduces_facts(worded, summary, terms=condition_names()):
        wording = "rejected"
    else:
        wording = "model"
    audit_event_create(actor=user, action="diagnosis.narrative", case=case, model_version=result["model_version"],
                       wording=wording, model=model)
    return worded if wording == "model" else summary
