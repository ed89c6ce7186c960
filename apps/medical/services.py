"""Writes of the medical app: knowledge base import, model training and activation, cases, results, audit."""
from __future__ import annotations

import hashlib
import random
import threading
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max

from apps.accounts.roles import Role
from apps.core.errors import ApplicationError, NotFoundError
from apps.medical.deidentify import deidentify
from apps.medical.diagnosis import ConditionInfo, DiagnosisEngine, read_patients
from apps.medical.features import EvidenceError, EvidenceSpec, FeatureSpace, split_token
from apps.medical.models import AuditEvent, Case, CaseResult, CaseShare, Condition, DiagnosisModel, Evidence

DISCLAIMER = ("Decision support, not a diagnosis: the probabilities come from a statistical model and must be "
              "checked by a clinician.")
EXPLAINED_CONDITIONS = 3
_engines: dict[tuple, DiagnosisEngine] = {}
_engines_lock = threading.Lock()


class NoActiveModel(ApplicationError):
    """No diagnosis model is trained and active yet (the API answers 503: the service is not ready)."""

    def __init__(self):
        super().__init__(message="No diagnosis model is active yet; an admin must train one with "
                                 "`manage.py train_diagnosis`.", status=503, code="no_model")


def audit(*, actor, action: str, case: Case | None = None, model_version: int | None = None, **details) -> AuditEvent:
    return AuditEvent.objects.create(actor=actor, action=action, case=case, model_version=model_version,
                                     details=details)


# --- knowledge base ----------------------------------------------------------------------------

@transaction.atomic
def knowledge_base_import(*, evidences: dict, conditions: dict, source: str) -> tuple[int, int]:
    """Upsert DDXPlus-schema evidences and conditions (as in release_evidences.json / release_conditions.json)."""
    for code, item in evidences.items():
        meanings = {str(k): v for k, v in (item.get("value_meaning") or {}).items()}
        Evidence.objects.update_or_create(code=code, defaults={
            "parent_code": item.get("code_question") or code, "question_en": item.get("question_en", ""),
            "question_fr": item.get("question_fr", ""), "data_type": item["data_type"],
            "is_antecedent": bool(item.get("is_antecedent")), "default_value": item.get("default_value"),
            "possible_values": list(item.get("possible-values") or []), "value_meanings": meanings, "source": source})
    for item in conditions.values():
        Condition.objects.update_or_create(name=item["condition_name"], defaults={
            "name_fr": item.get("cond-name-fr", ""), "icd10": item.get("icd10-id", ""),
            "severity": int(item["severity"]), "symptoms": list(item.get("symptoms") or {}),
            "antecedents": list(item.get("antecedents") or {}), "source": source})
    return len(evidences), len(conditions)


def evidence_specs(source: str) -> list[EvidenceSpec]:
    return [EvidenceSpec(e.code, e.data_type, tuple(e.possible_values), e.parent_code, e.is_antecedent)
            for e in Evidence.objects.filter(source=source)]


def condition_infos(source: str) -> dict[str, ConditionInfo]:
    return {c.name: ConditionInfo(c.name, c.icd10, c.severity, tuple(c.symptoms) + tuple(c.antecedents))
            for c in Condition.objects.filter(source=source)}


# --- models ------------------------------------------------------------------------------------

def diagnosis_model_train(*, patients_path: Path, source: str, user=None, activate: bool = False) -> DiagnosisModel:
    """Train on patients in the DDXPlus CSV format; the artefact is versioned with its data hash and metrics."""
    patients = read_patients(patients_path)
    engine, metrics = DiagnosisEngine.train(patients, evidence_specs(source), condition_infos(source))
    engine.urgent_findings = tuple(settings.MEDICAL_URGENT_FINDINGS)
    version = (DiagnosisModel.objects.aggregate(Max("version"))["version__max"] or 0) + 1
    artefact = settings.SUITE_DATA_DIR / "medical" / "models" / f"v{version}.joblib"
    engine.save(artefact)
    with transaction.atomic():
        model = DiagnosisModel.objects.create(
            version=version, source=source, artefact=str(artefact), patients=metrics["patients"],
            data_hash=hashlib.sha256(patients_path.read_bytes()).hexdigest(), metrics=metrics, trained_by=user)
        audit(actor=user, action="model.train", model_version=version, metrics=metrics)
        if activate or not DiagnosisModel.objects.filter(active=True).exists():
            diagnosis_model_activate(model=model, user=user)
    return model


@transaction.atomic
def diagnosis_model_activate(*, model: DiagnosisModel, user=None) -> DiagnosisModel:
    DiagnosisModel.objects.filter(active=True).exclude(id=model.id).update(active=False)
    model.active = True
    model.save(update_fields=["active"])
    audit(actor=user, action="model.activate", model_version=model.version)
    return model


def active_engine() -> tuple[DiagnosisModel, DiagnosisEngine]:
    model = DiagnosisModel.objects.filter(active=True).first()
    if model is None:
        raise NoActiveModel()
    key = (model.pk, model.artefact, model.data_hash)  # a version number alone is reused by a new database
    with _engines_lock:
        if key not in _engines:
            _engines[key] = DiagnosisEngine.load(Path(model.artefact))
        return model, _engines[key]


# --- cases -------------------------------------------------------------------------------------

def _validated(engine: DiagnosisEngine, evidence: list[str]) -> list[str]:
    return engine.features.validate(evidence)


@transaction.atomic
def case_create(*, clinician, age: int, sex: str, evidence: list[str], note: str = "") -> Case:
    _, engine = active_engine()
    case = Case.objects.create(clinician=clinician, age=age, sex=sex, evidence=_validated(engine, evidence),
                               note=deidentify(note.replace("\x00", "")))  # PostgreSQL text holds no NUL
    audit(actor=clinician, action="case.create", case=case, evidence=case.evidence)
    return case


@transaction.atomic
def case_answer(*, case: Case, evidence: str, answer: str, clinician) -> Case:
    """Record the answer to a suggested question: "yes", "no", or a value token for non-binary findings."""
    _, engine = active_engine()
    code, _ = split_token(evidence)
    if answer == "no":
        if code not in engine.features.specs:
            raise EvidenceError(f"unknown evidence {code!r}")
        case.negatives = sorted(set(case.negatives) | {code})
    else:
        token = code if answer == "yes" else evidence
        case.evidence = _validated(engine, [*case.evidence, token])
    case.save(update_fields=["evidence", "negatives", "updated_at"])
    audit(actor=clinician, action="case.answer", case=case, evidence=evidence, answer=answer)
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
        audit(actor=by, action="case.share", case=case, clinician=clinician.username)
    return share


@transaction.atomic
def case_unshare(*, case: Case, by, username: str) -> None:
    _require_creator(case=case, user=by)
    username = _username(username)
    removed, _ = CaseShare.objects.filter(case=case, clinician__username=username).delete()
    if not removed:
        raise NotFoundError(f"username: the case is not shared with {username!r}.", field="username")
    audit(actor=by, action="case.unshare", case=case, clinician=username)


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
                     negatives: list[str] = ()) -> dict:
    """The computed result: differential, urgency, next questions, explanations, in one JSON-ready dict."""
    differential = engine.differential(age, sex, evidence, negatives=tuple(negatives))
    asked = list(evidence) + list(negatives)
    questions = engine.next_questions(age, sex, evidence, negatives=tuple(negatives))
    explanations = {row["name"]: engine.explain(age, sex, evidence, row["name"])
                    for row in differential[:EXPLAINED_CONDITIONS]}
    tokens = set(asked) | {q["evidence"] for q in questions}
    for explanation in explanations.values():
        tokens |= {item["evidence"] for item in explanation["for"] + explanation["against"]}
        tokens |= set(explanation["not_asked"])
    return {"model_version": model.version, "disclaimer": DISCLAIMER, "conditions": differential,
            "urgency": engine.urgency(differential, evidence), "next_questions": questions,
            "should_stop": engine.should_stop(differential, questions), "explanations": explanations,
            "labels": _labels(sorted(tokens))}


@transaction.atomic
def diagnosis_compute(*, case: Case, user) -> CaseResult:
    model, engine = active_engine()
    result = diagnosis_result(model=model, engine=engine, age=case.age, sex=case.sex, evidence=case.evidence,
                              negatives=case.negatives)
    case_result = CaseResult.objects.create(case=case, model=model, evidence=case.evidence, result=result)
    audit(actor=user, action="diagnosis.compute", case=case, model_version=model.version,
          top=[row["name"] for row in result["conditions"][:3]], urgency=result["urgency"]["level"])
    return case_result


def narrative_messages(computed: str) -> list[dict[str, str]]:
    """The prompt the model rewords a computed summary from (adapter datasets of cases use it too)."""
    return [{"role": "system", "content": "Reword this summary for a clinician. Do not add anything."},
            {"role": "user", "content": computed}]


def narrative(result: dict) -> str:
    """A plain restatement of the computed result; the model only ever rewords this (when enabled)."""
    top = ", ".join(f"{row['name']} ({row['probability']:.0%})" for row in result["conditions"][:3])
    urgency = result["urgency"]
    text = f"Computed differential: {top}. Urgency: {urgency['level']}"
    text += f" ({'; '.join(urgency['reasons'])})." if urgency["reasons"] else "."
    if result["next_questions"]:
        question = result["labels"].get(result["next_questions"][0]["evidence"], result["next_questions"][0]["evidence"])
        text += f" Most useful next question: {question}"
    return text + " This summary restates the model's computed result; it is not a diagnosis."


# --- demo data ---------------------------------------------------------------------------------

def demo_patients_write(path: Path, *, count: int = 1500, seed: int = 0) -> Path:
    """Synthetic patients from the demo knowledge base, in the DDXPlus CSV format.

    Each patient has one condition; each of its typical findings is present with probability 0.75
    (0.4 for antecedents), plus the odd unrelated symptom; categorical answers are drawn from the
    evidence's values. Demo data only: the real model is trained on DDXPlus."""
    import csv

    rng = random.Random(seed)
    conditions = list(Condition.objects.filter(source="demo"))
    evidences = {e.code: e for e in Evidence.objects.filter(source="demo")}
    symptoms = [code for code, e in evidences.items() if not e.is_antecedent and e.data_type == "B"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["AGE", "DIFFERENTIAL_DIAGNOSIS", "SEX", "PATHOLOGY", "EVIDENCES", "INITIAL_EVIDENCE"])
        for _ in range(count):
            condition = rng.choice(conditions)
            tokens = []
            for code in condition.symptoms + condition.antecedents:
                evidence = evidences[code]
                if rng.random() >= (0.4 if evidence.is_antecedent else 0.75):
                    continue
                if evidence.data_type == "B":
                    tokens.append(code)
                else:
                    values = [v for v in evidence.possible_values if v != evidence.default_value] or \
                        evidence.possible_values
                    tokens.append(f"{code}_@_{rng.choice(values)}")
            if rng.random() < 0.3:
                tokens.append(rng.choice(symptoms))
            tokens = list(dict.fromkeys(tokens)) or [rng.choice(condition.symptoms)]
            initial = next((t for t in tokens if evidences[split_token(t)[0]].data_type == "B"), tokens[0])
            writer.writerow([rng.randint(18, 85), repr([[condition.name, 1.0]]), rng.choice("MF"), condition.name,
                             repr(tokens), initial])
    return path


def feature_space(source: str) -> FeatureSpace:
    return FeatureSpace(evidence_specs(source))
