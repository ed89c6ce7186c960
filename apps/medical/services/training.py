"""Writes of the knowledge base and the diagnosis models: import, train, gate, activate.

The activation gate, for central and federated training alike: a model is activated when no model is
active, or when its held-out top-1 is at least the active model's less GATE_TOP1_TOLERANCE (the issue's
"within 0.01 of central training"); otherwise it is kept, inactive, with the gate's reason in its
metrics (an admin may still activate it, from the admin site or `train_diagnosis --activate`, which is
audited). Activation itself is `diagnosis_model_activate`."""
from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from apps.core.index_dirs import replace_file
from apps.medical.diagnosis import DiagnosisEngine, read_patients
from apps.medical.models import Condition, DiagnosisModel, Evidence
from apps.medical.selectors import condition_infos, evidence_specs
from apps.medical.services.audit import audit_event_create

GATE_TOP1_TOLERANCE = 0.01  # a model whose held-out top-1 is more than this below the active one's is refused


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


def diagnosis_model_train(*, patients_path: Path, source: str, user=None, activate: bool = False) -> DiagnosisModel:
    """Train on patients in the DDXPlus CSV format; the artefact is versioned with its data hash and metrics,
    and goes through the activation gate (`diagnosis_model_gate`). `activate`: an admin's decision to
    serve it even if the gate refused it (the gate's verdict is recorded either way)."""
    patients = read_patients(patients_path)
    engine, metrics = DiagnosisEngine.train(patients, evidence_specs(source=source), condition_infos(source=source))
    with transaction.atomic():
        model = diagnosis_model_register(engine=engine, metrics=metrics, source=source, user=user,
                                         data_hash=hashlib.sha256(patients_path.read_bytes()).hexdigest())
        gate = diagnosis_model_gate(model=model, user=user)
        if activate and not gate["passed"]:
            diagnosis_model_activate(model=model, user=user)
    return model


def diagnosis_model_register(*, engine, metrics: dict, data_hash: str, source: str, user=None,
                             audit: dict | None = None) -> DiagnosisModel:
    """Save a trained engine under the next version, with its metrics and data hash; not active. The audit
    record says `audit` (default: the metrics)."""
    engine.urgent_findings = tuple(settings.MEDICAL_URGENT_FINDINGS)
    version = (DiagnosisModel.objects.aggregate(Max("version"))["version__max"] or 0) + 1
    artefact = settings.SUITE_DATA_DIR / "medical" / "models" / f"v{version}.joblib"
    replace_file(artefact, engine.save)  # a process loading the previous file of this name never reads half of it
    with transaction.atomic():
        model = DiagnosisModel.objects.create(version=version, source=source, artefact=str(artefact),
                                              patients=metrics["patients"], data_hash=data_hash, metrics=metrics,
                                              trained_by=user)
        audit_event_create(actor=user, action="model.train", model_version=version, **(audit or {"metrics": metrics}))
    return model


@transaction.atomic
def diagnosis_model_activate(*, model: DiagnosisModel, user=None) -> DiagnosisModel:
    DiagnosisModel.objects.filter(active=True).exclude(id=model.id).update(active=False)
    model.active = True
    model.save(update_fields=["active"])
    audit_event_create(actor=user, action="model.activate", model_version=model.version)
    return model


@transaction.atomic
def diagnosis_model_gate(*, model: DiagnosisModel, user=None) -> dict:
    """Activate `model` (diagnosis_model_activate) when no model is active or its held-out top-1 is at
    least the active model's less GATE_TOP1_TOLERANCE; else keep it inactive. The gate's verdict is
    stored in the model's metrics and the audit log, and returned. Central and federated training both
    come through here."""
    active = DiagnosisModel.objects.select_for_update().filter(active=True).exclude(id=model.id).first()
    top1 = model.metrics.get("top1")
    if active is None:
        gate = {"passed": True, "compared_with": None, "reason": "no model was active"}
    else:
        floor = round(active.metrics.get("top1", 0.0) - GATE_TOP1_TOLERANCE, 4)
        passed = top1 is not None and top1 >= floor
        gate = {"passed": passed, "compared_with": active.version, "top1": top1,
                "active_top1": active.metrics.get("top1"),
                "reason": (f"held-out top-1 {top1} is at least {floor} (v{active.version}'s less "
                           f"{GATE_TOP1_TOLERANCE})" if passed else
                           f"held-out top-1 {top1} is below {floor} (v{active.version}'s less {GATE_TOP1_TOLERANCE})")}
    model.metrics = {**model.metrics, "gate": gate}
    model.save(update_fields=["metrics"])
    audit_event_create(actor=user, action="model.gate", model_version=model.version, gate=gate)
    if gate["passed"]:
        diagnosis_model_activate(model=model, user=user)
    return gate
