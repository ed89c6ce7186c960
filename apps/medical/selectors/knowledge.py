"""Reads of the medical knowledge base: evidences and conditions, for training, search and the form."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.medical.diagnosis import ConditionInfo
from apps.medical.features import EvidenceSpec
from apps.medical.models import Condition, Evidence
from apps.medical.selectors.engine import active_engine

EVIDENCE_SEARCH_RESULTS = 50
EVIDENCE_QUERY_CHARS = 100


def evidence_specs(*, source: str) -> list[EvidenceSpec]:
    return [EvidenceSpec(e.code, e.data_type, tuple(e.possible_values), e.parent_code, e.is_antecedent)
            for e in Evidence.objects.filter(source=source)]


def condition_infos(*, source: str) -> dict[str, ConditionInfo]:
    return {c.name: ConditionInfo(c.name, c.icd10, c.severity, tuple(c.symptoms) + tuple(c.antecedents))
            for c in Condition.objects.filter(source=source)}


def condition_names() -> list[str]:
    """Every condition any knowledge base knows (what a narrative may not name unless the result does)."""
    return list(Condition.objects.values_list("name", flat=True))


def evidence_search(*, query: str) -> QuerySet[Evidence]:
    """At most 50 evidences of the active model's knowledge base whose question holds `query`, or whose
    code it is; raises NoActiveModel."""
    model, _ = active_engine()
    query = query.replace("\x00", "").strip()[:EVIDENCE_QUERY_CHARS]  # no NUL reaches the database
    evidences = Evidence.objects.filter(source=model.source)
    if query:
        evidences = evidences.filter(Q(question_en__icontains=query) | Q(code__iexact=query))
    return evidences[:EVIDENCE_SEARCH_RESULTS]


def evidence_options(*, source: str) -> list[tuple[str, str]]:
    """(token, label) for every finding and value the clinician may pick, for the autocomplete."""
    options = []
    for evidence in Evidence.objects.filter(source=source):
        if evidence.data_type == "B":
            options.append((evidence.code, evidence.question_en))
        else:
            options += [(f"{evidence.code}_@_{value}", f"{evidence.question_en} — {evidence.value_label(value)}")
                        for value in evidence.possible_values]
    return options
