"""De-identification of free text before it is stored, logged or sent to model_service.

Presidio's analyzer finds the identifiers (the recognizers are in `apps.medical.phi_recognizers`)
and its anonymizer replaces each with a typed placeholder (`[NAME]`, `[MRN]`, `[DATE]`, ...), so a
note stays readable. What goes follows HIPAA Safe Harbor: names, record numbers and other ids,
contact details, IP addresses, dates, ages over 89 and every place smaller than a state (street,
city, ZIP); ages up to 89 and bare years stay, because the differential needs them.

Presidio, spaCy and the gazetteers load on the first call (about two seconds in a web process, which
has imported torch already), once per process, so importing this module costs nothing.
"""
from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine, RecognizerResult
    from presidio_anonymizer import AnonymizerEngine

PLACEHOLDERS = {
    "PERSON": "[NAME]", "MRN": "[MRN]", "SSN": "[SSN]", "ID": "[ID]", "PHONE": "[PHONE]",
    "EMAIL": "[EMAIL]", "URL": "[URL]", "IP": "[IP]", "DATE": "[DATE]", "AGE": "[AGE]",
    "ADDRESS": "[ADDRESS]", "CITY": "[CITY]", "ZIP": "[ZIP]",
}
SCORE_THRESHOLD = 0.4  # bare numbers (a 5-digit ZIP, a 10-digit phone) start below it and need a context word
_load_lock = threading.Lock()


def deidentify(text: str) -> str:
    """The text with every identifier replaced by its typed placeholder ([NAME], [MRN], [DATE], ...)."""
    if not text:
        return text
    anonymizer, operators = _anonymizer()
    return anonymizer.anonymize(text=text, analyzer_results=phi_results(text), operators=operators).text


def phi_results(text: str) -> list[RecognizerResult]:
    """The identifiers found in text, non-overlapping, in order (the benchmark scores these)."""
    found = _merged(_analyzer().analyze(text=text, language="en", score_threshold=SCORE_THRESHOLD))
    kept: list[RecognizerResult] = []
    for result in sorted(found, key=lambda r: (-r.score, r.start - r.end)):  # surest, then longest first
        if all(result.end <= other.start or result.start >= other.end for other in kept):
            kept.append(result)
    return sorted(kept, key=lambda r: r.start)


def _merged(results: list[RecognizerResult]) -> list[RecognizerResult]:
    """Overlapping results of one type become their union ("Laura" and "Laura Wu": "Laura Wu")."""
    merged: list[RecognizerResult] = []
    for result in sorted(results, key=lambda r: (r.entity_type, r.start)):
        last = merged[-1] if merged else None
        if last and last.entity_type == result.entity_type and result.start < last.end:
            last.end, last.score = max(last.end, result.end), max(last.score, result.score)
        else:
            merged.append(result)
    return merged


@functools.cache
def _analyzer() -> AnalyzerEngine:
    with _load_lock:
        from apps.medical.phi_recognizers import analyzer_engine
        return analyzer_engine()


@functools.cache
def _anonymizer() -> tuple[AnonymizerEngine, dict]:
    with _load_lock:
        from presidio_anonymizer import AnonymizerEngine
        from presidio_anonymizer.entities import OperatorConfig
    operators = {entity: OperatorConfig("replace", {"new_value": placeholder})
                 for entity, placeholder in PLACEHOLDERS.items()}
    return AnonymizerEngine(), operators

