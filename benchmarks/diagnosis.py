"""Diagnosis model quality on DDXPlus, against a logistic-regression and a naive Bayes baseline.

    .venv/bin/python benchmarks/diagnosis.py        (about 5 minutes on 2 cores)

5-fold cross-validation over ../shared/datasets/ddxplus/patients_dev.csv (2,000 patients). For each
method: top-1/3/5 accuracy of the pathology, differential precision/recall/F1 against
DIFFERENTIAL_DIAGNOSIS (DDXPlus's DDP/DDR/DDF1, the reference being every condition it lists),
expected calibration error (10 bins) and latency per case. The suite's predicted differential is its
differential head's open conditions (threshold chosen on the training fold's held-out patients); a
baseline's is every condition at probability >= DIFFERENTIAL_THRESHOLD.
Interactive mode (the suite's model): start from INITIAL_EVIDENCE, ask the model's next question (one
per evidence code; the simulated patient answers with its tokens for that code, or "none"), until
`should_stop` or MAX_QUESTIONS; top-1 accuracy and DDF1 against the number of questions asked and at
stop. "before" holds the previous model's figures. DIAGNOSIS_FOLDS=1 runs one fold (a quick look).
Results: benchmarks/results/diagnosis.json.

    .venv/bin/python benchmarks/diagnosis.py --federated        (about 3 minutes a fold on 2 cores)

Federated against central training on the same data, side by side: per fold the training patients are
split into FEDERATED_SITES sites with Dirichlet case mixes (apps.medical.federated.split_sites), the
federated model is trained across them with Flower (each site its own process) and the central one on
all of them at once (DiagnosisEngine.train); both are scored on the fold's test patients as above. It
also reports what each site sent (rounds, arrays, bytes). Written under "federated" in the same file,
the other figures kept.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from apps.medical.diagnosis import (ConditionInfo, DiagnosisEngine, differential_scores,  # noqa: E402
                                    expected_calibration_error, read_patients, top_k_accuracy)
from apps.medical.features import EvidenceSpec, split_token  # noqa: E402

DDXPLUS = REPO.parent / "shared" / "datasets" / "ddxplus"
RESULTS = REPO / "benchmarks" / "results" / "diagnosis.json"
FOLDS = 5
DIFFERENTIAL_THRESHOLD = 0.05
MAX_QUESTIONS = 20
INTERACTIVE_PER_FOLD = 100
CURVE = (0, 1, 2, 3, 5, 10, 15, 20)
BEFORE = {  # this benchmark at commit ff4d391: the pathology head alone (no answer model), the differential head at C 1
    "suite_model": {"top1": 0.982, "top3": 0.999, "top5": 0.999, "ddp": 0.7668, "ddr": 0.8349, "ddf1": 0.799,
                    "ece": 0.0111},
    "interactive": {"top1_after_questions": {"0": 0.252, "1": 0.258, "2": 0.494, "3": 0.648, "5": 0.744,
                                             "10": 0.854, "15": 0.876, "20": 0.886},
                    "top1_at_stop": 0.886, "ddf1_at_stop": 0.5798, "mean_questions": 7.186, "max_questions": 20},
}


def knowledge_base():
    evidences = json.loads((DDXPLUS / "release_evidences.json").read_text())
    conditions = json.loads((DDXPLUS / "release_conditions.json").read_text())
    specs = [EvidenceSpec(code, e["data_type"], tuple(e["possible-values"]), e["code_question"], e["is_antecedent"])
             for code, e in evidences.items()]
    infos = {c["condition_name"]: ConditionInfo(c["condition_name"], c["icd10-id"], c["severity"],
                                                tuple(c["symptoms"]) + tuple(c["antecedents"]))
             for c in conditions.values()}
    return specs, infos


def cross_validation_folds():
    """(fold index, training patients, test patients) of the development patients, seeded; DIAGNOSIS_FOLDS
    of the FOLDS folds."""
    patients = read_patients(DDXPLUS / "patients_dev.csv")
    order = np.random.default_rng(0).permutation(len(patients))
    folds = np.array_split(order, FOLDS)[:int(os.environ.get("DIAGNOSIS_FOLDS", FOLDS))]
    for index, test_indices in enumerate(folds):
        held = set(test_indices.tolist())
        yield index, [patients[i] for i in order if i not in held], [patients[i] for i in test_indices]


def evaluate(probabilities: np.ndarray, classes: list[str], patients, seconds: float,
             predicted: list[set[str]] | None = None) -> dict:
    """Top-k and calibration of `probabilities`; DDP/DDR/DDF1 of the `predicted` differentials (by
    default every condition at probability >= DIFFERENTIAL_THRESHOLD)."""
    labels = np.array([classes.index(p.pathology) if p.pathology in classes else -1 for p in patients])
    if predicted is None:
        predicted = [{classes[i] for i in np.flatnonzero(row >= DIFFERENTIAL_THRESHOLD)} for row in probabilities]
    truth = [{name for name, _ in p.differential} for p in patients]
    return {**top_k_accuracy(probabilities, labels), **differential_scores(predicted, truth),
            "ece": expected_calibration_error(probabilities, labels),
            "latency_ms_per_case": round(seconds * 1000 / len(patients), 3)}


def engine_evaluation(engine: DiagnosisEngine, patients) -> dict:
    """`evaluate` of the engine's differential for every patient (all conditions, with its open set), all
    findings known (`complete`: a finding not in the record is absent, as the baselines take it)."""
    began = time.perf_counter()
    scored = [{r["name"]: r for r in engine.differential(p.age, p.sex, p.evidence, top=len(engine.classes),
                                                         complete=True)}
              for p in patients]
    seconds = time.perf_counter() - began
    probabilities = np.array([[r[name]["probability"] for name in engine.classes] for r in scored])
    open_sets = [{name for name, r in s.items() if r["in_differential"]} for s in scored]
    return evaluate(probabilities, engine.classes, patients, seconds, open_sets)


def baselines(engine: DiagnosisEngine, train, test) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import BernoulliNB

    features = engine.features
    X_train = np.stack([features.vector(p.age, p.sex, p.evidence) for p in train])
    X_test = np.stack([features.vector(p.age, p.sex, p.evidence) for p in test])
    y_train = [p.pathology for p in train]
    results = {}
    for name, model in (("logistic_regression", LogisticRegression(max_iter=2000)),
                        ("naive_bayes", BernoulliNB(binarize=0.0))):
        model.fit(X_train, y_train)
        started = time.perf_counter()
        probabilities = np.stack([model.predict_proba(x[None])[0] for x in X_test])
        results[name] = evaluate(probabilities, list(model.classes_), test, time.perf_counter() - started)
    return results


def answer(patient, code: str) -> list[str]:
    """The simulated patient's answer to the question about `code`: its tokens for it ([] is "none")."""
    return [token for token in patient.evidence if split_token(token)[0] == code]


def interview(engine: DiagnosisEngine, patient) -> tuple[list[tuple[str, set[str]]], int]:
    """Ask until `should_stop` or MAX_QUESTIONS; (top condition, open differential) after each count of
    questions asked, and the count at stop."""
    evidence, negatives, asked, trace = list(answer(patient, patient.initial_evidence.split("_@_")[0]) or
                                             [patient.initial_evidence]), [], 0, []
    while True:
        differential = engine.differential(patient.age, patient.sex, evidence, negatives=tuple(negatives),
                                           top=len(engine.classes))
        trace.append((differential[0]["name"], {row["name"] for row in differential if row["in_differential"]}))
        questions = engine.next_questions(patient.age, patient.sex, evidence, negatives=tuple(negatives), top=1)
        if asked >= MAX_QUESTIONS or engine.should_stop(differential, questions):
            return trace, asked
        tokens = answer(patient, questions[0]["evidence"])
        if tokens:
            evidence += tokens
        else:
            negatives.append(questions[0]["evidence"])
        asked += 1


def interactive(engine: DiagnosisEngine, patients) -> dict:
    correct_at, ddf1_at = {k: [] for k in CURVE}, {k: [] for k in CURVE}
    asked_counts, correct_at_stop, stop_sets = [], [], []
    truth = [{name for name, _ in p.differential} for p in patients]
    for patient, reference in zip(patients, truth):
        trace, asked = interview(engine, patient)
        for k in CURVE:  # after stopping, the answer stays what it was
            top, open_set = trace[min(k, asked)]
            correct_at[k].append(top == patient.pathology)
            ddf1_at[k].append(differential_scores([open_set], [reference])["ddf1"])
        asked_counts.append(asked)
        correct_at_stop.append(trace[-1][0] == patient.pathology)
        stop_sets.append(trace[-1][1])
    return {"patients": len(patients),
            "top1_after_questions": {str(k): round(float(np.mean(v)), 4) for k, v in correct_at.items()},
            "ddf1_after_questions": {str(k): round(float(np.mean(v)), 4) for k, v in ddf1_at.items()},
            "top1_at_stop": round(float(np.mean(correct_at_stop)), 4),
            "ddf1_at_stop": differential_scores(stop_sets, truth)["ddf1"],
            "mean_questions": round(float(np.mean(asked_counts)), 2), "max_questions": MAX_QUESTIONS}


def mean_of(rows: list[dict]) -> dict:
    """The folds' results averaged key by key (patients summed)."""
    first = rows[0]
    return {key: sum(r[key] for r in rows) if key == "patients" else mean_of([r[key] for r in rows])
            if isinstance(value, dict) else round(float(np.mean([r[key] for r in rows])), 4)
            for key, value in first.items()}


FEDERATED_SITES = 3


def federated_part() -> dict:
    """Federated and central top-1/DDF1 on the same folds, and what the sites sent."""
    import tempfile

    from apps.medical.federated import FederatedConfig, federated_train, split_sites

    specs, infos = knowledge_base()
    rows, sent = [], []
    for index, train, test in cross_validation_folds():
        config = FederatedConfig(sites=FEDERATED_SITES, seed=index)
        sites = split_sites(train, sites=config.sites, alpha=config.alpha, seed=config.seed)
        began = time.perf_counter()
        central, _ = DiagnosisEngine.train(train, specs, infos)
        central_s = time.perf_counter() - began
        with tempfile.TemporaryDirectory() as work:
            result = federated_train(sites, specs, infos, work=Path(work), config=config)
        row = {}
        for method, engine in (("central", central), ("federated", result.engine)):
            row[method] = engine_evaluation(engine, test)
        row["central"]["training_s"] = round(central_s, 1)
        row["federated"]["training_s"] = result.metrics["federated"]["seconds"]
        rows.append(row)
        sent.append({"fold": index + 1, "site_patients": [len(s) for s in sites],
                     "pathologies_per_site": [len(m) for m in result.metrics["federated"]["case_mix"]],
                     "rounds": result.metrics["federated"]["rounds"],
                     "update_bytes": result.metrics["federated"]["update_bytes"],
                     "received": result.metrics["federated"]["received"]})
        print(f"fold {index + 1}: central top-1 {row['central']['top1']} DDF1 {row['central']['ddf1']}; federated "
              f"top-1 {row['federated']['top1']} DDF1 {row['federated']['ddf1']} in {sent[-1]['rounds']} rounds",
              flush=True)
    summary = {method: {metric: round(float(np.mean([r[method][metric] for r in rows])), 4)
                        for metric in rows[0][method]} for method in ("central", "federated")}
    return {"sites": FEDERATED_SITES, "folds": len(rows), "alpha": FederatedConfig().alpha, **summary,
            "top1_gap": round(summary["central"]["top1"] - summary["federated"]["top1"], 4),
            "goal": "federated top-1 within 0.01 of central", "per_fold_sent": sent}


def main() -> int:
    if "--federated" in sys.argv[1:]:
        started = time.perf_counter()
        report = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"benchmark": "diagnosis"}
        report["federated"] = {**federated_part(), "seconds": round(time.perf_counter() - started, 1)}
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")
        part = report["federated"]
        print(f"central: top-1 {part['central']['top1']}, DDF1 {part['central']['ddf1']}; federated ({part['sites']} "
              f"sites): top-1 {part['federated']['top1']}, DDF1 {part['federated']['ddf1']}; gap {part['top1_gap']}")
        print(f"wrote {RESULTS.relative_to(REPO)} in {part['seconds']} s")
        return 0
    started = time.perf_counter()
    specs, infos = knowledge_base()
    per_fold, interactive_rows = [], []
    for index, train, test in cross_validation_folds():
        engine, _ = DiagnosisEngine.train(train, specs, infos)
        row = {"suite_model": engine_evaluation(engine, test), **baselines(engine, train, test)}
        per_fold.append(row)
        interactive_rows.append(interactive(engine, test[:INTERACTIVE_PER_FOLD]))
        print(f"fold {index + 1}/{FOLDS}: suite top-1 {row['suite_model']['top1']}, LR {row['logistic_regression']['top1']}, "
              f"NB {row['naive_bayes']['top1']}", flush=True)
    methods = per_fold[0].keys()
    summary = {method: {metric: round(float(np.mean([fold[method][metric] for fold in per_fold])), 4)
                        for metric in per_fold[0][method]} for method in methods}
    report = {"benchmark": "diagnosis", "data": "DDXPlus patients_dev.csv (2,000 patients, 49 pathologies)",
              "folds": FOLDS, "differential_threshold": DIFFERENTIAL_THRESHOLD, "methods": summary,
              "interactive": mean_of(interactive_rows), "before": BEFORE,
              "seconds": round(time.perf_counter() - started, 1)}
    if RESULTS.exists() and "federated" in json.loads(RESULTS.read_text()):  # written by --federated: kept
        report["federated"] = json.loads(RESULTS.read_text())["federated"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for method, row in summary.items():
        print(f"{method}: top-1 {row['top1']}, top-3 {row['top3']}, top-5 {row['top5']}, DDF1 {row['ddf1']}, "
              f"ECE {row['ece']}, {row['latency_ms_per_case']} ms/case")
    print(f"interactive: top-1 {report['interactive']['top1_after_questions']} after n questions; at stop "
          f"{report['interactive']['top1_at_stop']} (DDF1 {report['interactive']['ddf1_at_stop']}) with "
          f"{report['interactive']['mean_questions']} questions on average")
    print(f"wrote {RESULTS.relative_to(REPO)} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
