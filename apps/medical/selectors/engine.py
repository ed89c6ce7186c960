"""Reads of the diagnosis engine: the active model, and the computed result of a presentation."""
from __future__ import annotations

from pathlib import Path

from apps.core.caches import VersionedCache, path_stamp
from apps.core.errors import ApplicationError
from apps.medical.diagnosis import DiagnosisEngine
from apps.medical.features import SEPARATOR, split_token
from apps.medical.models import DiagnosisModel, Evidence

DISCLAIMER = ("Decision support, not a diagnosis: the probabilities come from a statistical model and must be "
              "checked by a clinician.")
EXPLAINED_CONDITIONS = 3
_engines: VersionedCache[DiagnosisEngine] = VersionedCache(max_entries=4)  # model id -> its loaded engine


class NoActiveModel(ApplicationError):
    """No diagnosis model is trained and active yet (the API answers 503: the service is not ready)."""

    def __init__(self):
        super().__init__(message="No diagnosis model is active yet; an admin must train one with "
                                 "`manage.py train_diagnosis`.", status=503, code="no_model")


def active_engine() -> tuple[DiagnosisModel, DiagnosisEngine]:
    """The active model and its engine, loaded once per process; raises NoActiveModel."""
    model = DiagnosisModel.objects.filter(active=True).first()
    if model is None:
        raise NoActiveModel()
    artefact = Path(model.artefact)  # its version number alone is reused by a rebuilt database
    version = (model.artefact, model.data_hash, path_stamp(artefact))
    return model, _engines.get(model.pk, version, lambda: DiagnosisEngine.load(artefact))


def choice_token(code: str, choice) -> str:
    """The token a choice of a question records ("E_55", "V_101" → "E_55_@_V_101")."""
    return f"{code}{SEPARATOR}{choice}"


def _labels(tokens: list[str]) -> dict[str, str]:
    codes = {split_token(token)[0] for token in tokens}
    evidences = {e.code: e for e in Evidence.objects.filter(code__in=codes)}
    labels = {}
    for token in tokens:
        code, value = split_token(token)
        evidence = evidences.get(code)
        if evidence is None:
            labels[token] = token
        elif value is None:
            labels[token] = evidence.question_en
        else:
            labels[token] = f"{evidence.question_en} — {evidence.value_label(value)}"
    return labels


def diagnosis_result(*, model: DiagnosisModel, engine: DiagnosisEngine, age: int, sex: str, evidence: list[str],
                     negatives: list[str] = (), unknown: list[str] = ()) -> dict:
    """The computed result: differential, urgency, next questions, explanations, in one JSON-ready dict.
    `labels` names every token it mentions, the next questions' choices included."""
    differential = engine.differential(age, sex, evidence, negatives=tuple(negatives), unknown=tuple(unknown))
    asked = list(evidence) + list(negatives) + list(unknown)
    questions = engine.next_questions(age, sex, evidence, negatives=tuple(negatives), unknown=tuple(unknown))
    explanations = {row["name"]: engine.explain(age, sex, evidence, row["name"])
                    for row in differential[:EXPLAINED_CONDITIONS]}
    tokens = set(asked) | {q["evidence"] for q in questions}
    tokens |= {choice_token(q["evidence"], c) for q in questions for c in q.get("choices", ())}
    for explanation in explanations.values():
        tokens |= {item["evidence"] for item in explanation["for"] + explanation["against"]}
        tokens |= set(explanation["not_asked"])
    return {"model_version": model.version, "disclaimer": DISCLAIMER, "conditions": differential,
            "urgency": engine.urgency(differential, evidence), "next_questions": questions,
            "should_stop": engine.should_stop(differential, questions), "explanations": explanations,
            "labels": _labels(sorted(tokens))}
