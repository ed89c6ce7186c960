"""Reads of the medical knowledge base: evidences and conditions, for training, search and the form."""
from __future__ import annotations

from apps.medical import findings
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


def evidence_search(*, query: str) -> list[dict]:
    """At most 50 questions and values of the active model's knowledge base for `query` in a clinician's
    words ("chest pain" → where the pain is: upper chest), best first, each saying which value matched
    (see apps.medical.findings); an evidence code finds itself, an empty query lists the questions.
    Raises NoActiveModel."""
    model, _ = active_engine()
    query = query.replace("\x00", "").strip()[:EVIDENCE_QUERY_CHARS]  # no NUL reaches the database
    evidences = {e.code: e for e in Evidence.objects.filter(source=model.source)}
    if not query or query.upper() in evidences:
        chosen = [evidences[query.upper()]] if query else list(evidences.values())
        return [_evidence_row(e, token=e.code, matched_value=None, score=1.0)
                for e in chosen[:EVIDENCE_SEARCH_RESULTS]]
    found = findings.finding_index(evidences.values()).search(query, limit=EVIDENCE_SEARCH_RESULTS)
    return [_evidence_row(evidences[row["code"]], token=row["token"], matched_value=row["matched_value"],
                          score=row["score"]) for row in found]


def _evidence_row(evidence: Evidence, **match) -> dict:
    return {"code": evidence.code, "question_en": evidence.question_en, "data_type": evidence.data_type,
            "is_antecedent": evidence.is_antecedent, "possible_values": evidence.possible_values,
            "value_meanings": evidence.value_meanings, **match}


def note_findings(*, note: str) -> list[dict]:
    """The findings a free-text note names in the active model's knowledge base, each present, absent or
    uncertain with its span of the note: proposals for the clinician to confirm. Raises NoActiveModel."""
    model, _ = active_engine()
    return findings.note_findings(Evidence.objects.filter(source=model.source), note.replace("\x00", ""))


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


def knowledge_base_sources() -> list[str]:
    """The knowledge bases imported, by their `source` (demo, ddxplus, ...)."""
    return sorted(Evidence.objects.values_list("source", flat=True).distinct())
