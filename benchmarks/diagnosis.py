"""Diagnosis model quality on DDXPlus, against a logistic-regression and a naive Bayes baseline.

    .venv/bin/python benchmarks/diagnosis.py        (about 5 minutes on 2 cores)

5-fold cross-validation over ../shared/datasets/ddxplus/patients_dev.csv (2,000 patients). For each
method: top-1/3/5 accuracy of the pathology, differential precision/recall/F1 against
DIFFERENTIAL_DIAGNOSIS (DDXPlus's DDP/DDR/DDF1; the predicted differential is every condition at
probability >= DIFFERENTIAL_THRESHOLD), expected calibration error (10 bins) and latency per case.
Interactive mode (the suite's model): start from INITIAL_EVIDENCE, ask the model's next question,
answer it from the patient's evidence, until `should_stop` or MAX_QUESTIONS; top-1 accuracy against
the number of questions asked. Results: benchmarks/results/diagnosis.json.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from apps.medical.diagnosis import (ConditionInfo, DiagnosisEngine, differential_scores,  # noqa: E402
                                    expected_calibration_error, read_patients, top_k_accuracy)
from apps.medical.features import EvidenceSpec  # noqa: E402

DDXPLUS = REPO.parent / "shared" / "datasets" / "ddxplus"
RESULTS = REPO / "benchmarks" / "results" / "diagnosis.json"
FOLDS = 5
DIFFERENTIAL_THRESHOLD = 0.05
MAX_QUESTIONS = 20
INTERACTIVE_PER_FOLD = 100
CURVE = (0, 1, 2, 3, 5, 10, 15, 20)


def knowledge_base():
    evidences = json.loads((DDXPLUS / "release_evidences.json").read_text())
    conditions = json.loads((DDXPLUS / "release_conditions.json").read_text())
    specs = [EvidenceSpec(code, e["data_type"], tuple(e["possible-values"]), e["code_question"], e["is_antecedent"])
             for code, e in evidences.items()]
    infos = {c["condition_name"]: ConditionInfo(c["condition_name"], c["icd10-id"], c["severity"],
                                                tuple(c["symptoms"]) + tuple(c["antecedents"]))
             for c in conditions.values()}
    return specs, infos


def evaluate(probabilities: np.ndarray, classes: list[str], patients, seconds: float) -> dict:
    labels = np.array([classes.index(p.pathology) if p.pathology in classes else -1 for p in patients])
    predicted = [{classes[i] for i in np.flatnonzero(row >= DIFFERENTIAL_THRESHOLD)} for row in probabilities]
    truth = [{name for name, _ in p.differential} for p in patients]
    return {**top_k_accuracy(probabilities, labels), **differential_scores(predicted, truth),
            "ece": expected_calibration_error(probabilities, labels),
            "latency_ms_per_case": round(seconds * 1000 / len(patients), 3)}


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


def interactive(engine: DiagnosisEngine, patients) -> dict:
    correct_at = {k: 0 for k in CURVE}
    asked_counts, correct_at_stop = [], 0
    for patient in patients:
        present = set(patient.evidence)
        codes = {token.split("_@_")[0]: token for token in patient.evidence}
        evidence, negatives, asked = [patient.initial_evidence], set(), 0
        while True:
            differential = engine.differential(patient.age, patient.sex, evidence, negatives=tuple(negatives))
            top = differential[0]["name"]
            if asked in correct_at:
                correct_at[asked] += top == patient.pathology
            questions = engine.next_questions(patient.age, patient.sex, evidence, negatives=tuple(negatives))
            if asked >= MAX_QUESTIONS or engine.should_stop(differential, questions):
                break
            code = questions[0]["evidence"]
            if code in present or code in codes:
                evidence.append(codes.get(code, code))
            else:
                negatives.add(code)
            asked += 1
        for k in CURVE:  # after stopping, the answer stays what it was
            if k > asked:
                correct_at[k] += top == patient.pathology
        asked_counts.append(asked)
        correct_at_stop += top == patient.pathology
    n = len(patients)
    return {"patients": n, "top1_after_questions": {str(k): round(v / n, 4) for k, v in correct_at.items()},
            "top1_at_stop": round(correct_at_stop / n, 4), "mean_questions": round(float(np.mean(asked_counts)), 2),
            "max_questions": MAX_QUESTIONS}


def main() -> int:
    started = time.perf_counter()
    specs, infos = knowledge_base()
    patients = read_patients(DDXPLUS / "patients_dev.csv")
    order = np.random.default_rng(0).permutation(len(patients))
    folds = np.array_split(order, FOLDS)
    per_fold, interactive_rows = [], []
    for index, test_indices in enumerate(folds):
        train = [patients[i] for i in order if i not in set(test_indices)]
        test = [patients[i] for i in test_indices]
        engine, _ = DiagnosisEngine.train(train, specs, infos)
        began = time.perf_counter()
        probabilities = np.stack([[row["probability"] for row in sorted(
            engine.differential(p.age, p.sex, p.evidence, top=len(engine.classes)), key=lambda r: engine.classes.index(r["name"]))]
            for p in test])
        row = {"suite_model": evaluate(probabilities, engine.classes, test, time.perf_counter() - began),
               **baselines(engine, train, test)}
        per_fold.append(row)
        interactive_rows.append(interactive(engine, test[:INTERACTIVE_PER_FOLD]))
        print(f"fold {index + 1}/{FOLDS}: suite top-1 {row['suite_model']['top1']}, LR {row['logistic_regression']['top1']}, "
              f"NB {row['naive_bayes']['top1']}", flush=True)
    methods = per_fold[0].keys()
    summary = {method: {metric: round(float(np.mean([fold[method][metric] for fold in per_fold])), 4)
                        for metric in per_fold[0][method]} for method in methods}
    curve = {k: round(float(np.mean([r["top1_after_questions"][k] for r in interactive_rows])), 4)
             for k in interactive_rows[0]["top1_after_questions"]}
    report = {"benchmark": "diagnosis", "data": "DDXPlus patients_dev.csv (2,000 patients, 49 pathologies)",
              "folds": FOLDS, "differential_threshold": DIFFERENTIAL_THRESHOLD, "methods": summary,
              "interactive": {"patients": sum(r["patients"] for r in interactive_rows), "top1_after_questions": curve,
                              "top1_at_stop": round(float(np.mean([r["top1_at_stop"] for r in interactive_rows])), 4),
                              "mean_questions": round(float(np.mean([r["mean_questions"] for r in interactive_rows])), 2),
                              "max_questions": MAX_QUESTIONS},
              "seconds": round(time.perf_counter() - started, 1)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for method, row in summary.items():
        print(f"{method}: top-1 {row['top1']}, top-3 {row['top3']}, top-5 {row['top5']}, DDF1 {row['ddf1']}, "
              f"ECE {row['ece']}, {row['latency_ms_per_case']} ms/case")
    print(f"interactive: top-1 {report['interactive']['top1_after_questions']} after n questions; at stop "
          f"{report['interactive']['top1_at_stop']} with {report['interactive']['mean_questions']} questions on average")
    print(f"wrote {RESULTS.relative_to(REPO)} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
