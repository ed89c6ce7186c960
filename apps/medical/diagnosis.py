"""The differential model: multinomial logistic regression over evidence features, calibrated by
temperature scaling on held-out patients, with red flags, next questions and per-condition explanations.

Pure Python/NumPy (no Django): trained by apps.medical.services, loaded by apps.medical.selectors, benchmarked as is.
"""
from __future__ import annotations

import ast
import csv
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression

from apps.medical.features import EvidenceSpec, FeatureSpace, split_token

HELD_OUT = 0.2  # share of patients kept for calibration and metrics
RED_FLAG_PROBABILITY = {1: 0.10, 2: 0.15}  # severity -> probability that raises urgency
STOP_CONFIDENCE = 0.9  # the differential is settled when its top condition reaches this
MIN_INFORMATION_GAIN = 0.01  # bits: below this no question is worth asking
MAX_CANDIDATE_CONDITIONS = 10  # next questions come from the findings of the leading conditions


@dataclass(frozen=True)
class ConditionInfo:
    name: str
    icd10: str
    severity: int
    findings: tuple[str, ...]  # the evidence codes typical of it (symptoms and antecedents)


@dataclass(frozen=True)
class Patient:
    age: int
    sex: str
    evidence: list[str]
    pathology: str
    differential: list[tuple[str, float]] = field(default_factory=list)
    initial_evidence: str = ""


def read_patients(path: Path) -> list[Patient]:
    """Patients in the official DDXPlus CSV format (AGE,DIFFERENTIAL_DIAGNOSIS,SEX,PATHOLOGY,EVIDENCES,...)."""
    patients = []
    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            patients.append(Patient(
                int(row["AGE"]), row["SEX"], [str(t) for t in ast.literal_eval(row["EVIDENCES"])], row["PATHOLOGY"],
                [(name, float(p)) for name, p in ast.literal_eval(row.get("DIFFERENTIAL_DIAGNOSIS") or "[]")],
                row.get("INITIAL_EVIDENCE", "")))
    return patients


def entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1.0)
    return -(p * np.log2(p)).sum(axis=-1)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


@dataclass
class DiagnosisEngine:
    features: FeatureSpace
    classes: list[str]  # condition names, in the model's column order
    coef: np.ndarray  # (conditions, features)
    intercept: np.ndarray  # (conditions,)
    temperature: float
    finding_rates: np.ndarray  # (conditions, features): P(feature present | condition), smoothed
    conditions: dict[str, ConditionInfo]
    urgent_findings: tuple[str, ...] = ()  # evidence codes that always raise urgency

    # --- training ----------------------------------------------------------------------------
    @classmethod
    def train(cls, patients: list[Patient], specs: list[EvidenceSpec], conditions: dict[str, ConditionInfo], *,
              seed: int = 0, regularisation: float = 1.0) -> tuple[DiagnosisEngine, dict]:
        space = FeatureSpace(specs)
        usable = [p for p in patients if p.pathology in conditions]
        X = np.stack([space.vector(p.age, p.sex, p.evidence) for p in usable])
        names = sorted({p.pathology for p in usable})
        y = np.array([names.index(p.pathology) for p in usable])
        order = np.random.default_rng(seed).permutation(len(usable))
        split = int(len(order) * (1 - HELD_OUT))
        fit, held = order[:split], order[split:]
        model = LogisticRegression(C=regularisation, max_iter=2000).fit(X[fit], y[fit])
        classes = [names[i] for i in model.classes_]
        held = np.array([i for i in held if y[i] in set(model.classes_)])  # a rare condition may miss the fit split
        logits = X[held] @ model.coef_.T + model.intercept_
        held_y = np.array([classes.index(names[i]) for i in y[held]])
        temperature = float(minimize_scalar(
            lambda t: -np.log(softmax(logits / t)[np.arange(len(held_y)), held_y] + 1e-12).mean(),
            bounds=(0.05, 20.0), method="bounded").x)
        rates = np.stack([(X[fit][y[fit] == names.index(name)] > 0).mean(axis=0) * 0.98 + 0.01 if
                          (y[fit] == names.index(name)).any() else np.full(X.shape[1], 0.01) for name in classes])
        engine = cls(space, classes, model.coef_, model.intercept_, temperature, rates,
                     {name: conditions[name] for name in classes})
        probabilities = softmax(logits / temperature)
        metrics = {"patients": len(usable), "skipped_unknown_pathology": len(patients) - len(usable),
                   "held_out": len(held), "temperature": round(temperature, 3),
                   **top_k_accuracy(probabilities, held_y), "ece": expected_calibration_error(probabilities, held_y),
                   "ece_before_calibration": expected_calibration_error(softmax(logits), held_y)}
        return engine, metrics

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, path)

    @staticmethod
    def load(path: Path) -> DiagnosisEngine:
        return joblib.load(path)

    # --- scoring -----------------------------------------------------------------------------
    def probabilities(self, X: np.ndarray) -> np.ndarray:
        return softmax((X @ self.coef.T + self.intercept) / self.temperature)

    def posterior(self, age: int, sex: str, evidence: list[str], negatives: tuple[str, ...] = (), *,
                  unknown: tuple[str, ...] = ()) -> np.ndarray:
        """The model's probabilities given the present findings, reweighted by Bayes' rule for each finding
        asked and answered "no" (the model itself cannot tell "absent" from "not asked"). Findings answered
        "don't know" (`unknown`) carry no information and leave the probabilities as they are."""
        p = self.probabilities(self.features.vector(age, sex, evidence)[None])[0]
        for code in negatives:
            column = self.features.index.get(code)
            if column is not None:
                p = p * (1 - self.finding_rates[:, column])
        return p / p.sum()

    def differential(self, age: int, sex: str, evidence: list[str], *, negatives: tuple[str, ...] = (),
                     unknown: tuple[str, ...] = (), top: int = 10) -> list[dict]:
        p = self.posterior(age, sex, evidence, negatives)
        order = np.argsort(-p)[:top]
        return [{"name": self.classes[i], "icd10": self.conditions[self.classes[i]].icd10,
                 "severity": self.conditions[self.classes[i]].severity, "probability": round(float(p[i]), 4)}
                for i in order]

    def urgency(self, differential: list[dict], evidence: list[str]) -> dict:
        """emergency / see a doctor today / routine, with the reasons."""
        reasons, level = [], "routine"
        for row in differential:
            threshold = RED_FLAG_PROBABILITY.get(row["severity"])
            if threshold is not None and row["probability"] >= threshold:
                reasons.append(f"{row['name']} (severity {row['severity']}) at {row['probability']:.0%}")
                level = "emergency" if row["severity"] == 1 or level == "emergency" else "see a doctor today"
        present = self.features.present(evidence)
        for code in self.urgent_findings:
            if code in present:
                level = "emergency"
                reasons.append(f"urgent finding {code}")
        return {"level": level, "reasons": reasons}

    def next_questions(self, age: int, sex: str, evidence: list[str], *, negatives: tuple[str, ...] = (),
                       unknown: tuple[str, ...] = (), top: int = 5) -> list[dict]:
        """Unasked yes/no findings ranked by expected information gain (bits) over the differential;
        findings answered "don't know" (`unknown`) are not asked again."""
        p = self.posterior(age, sex, evidence, negatives)
        asked = self.features.present(evidence) | set(negatives) | set(unknown)
        leading = np.argsort(-p)[:MAX_CANDIDATE_CONDITIONS]
        candidates = []
        for i in leading:
            for code in self.conditions[self.classes[i]].findings:
                spec = self.features.specs.get(code)
                if (spec is None or spec.data_type != "B" or code in asked or code in candidates
                        or (spec.parent_code != code and spec.parent_code not in asked)):
                    continue
                candidates.append(code)
        if not candidates:
            return []
        columns = [self.features.index[code] for code in candidates]
        # The current differential is the prior; each answer reweights it by how often the finding occurs
        # with each condition (Bayes' rule), so "no" answers count as much as "yes" answers.
        p_yes_given_c = self.finding_rates[:, columns].T  # (candidates, conditions)
        joint_yes = p[None, :] * p_yes_given_c
        joint_no = p[None, :] * (1 - p_yes_given_c)
        p_yes = joint_yes.sum(axis=1)
        posterior_yes = joint_yes / p_yes[:, None]
        posterior_no = joint_no / (1 - p_yes)[:, None]
        gain = entropy(p) - (p_yes * entropy(posterior_yes) + (1 - p_yes) * entropy(posterior_no))
        order = np.argsort(-gain)[:top]
        return [{"evidence": candidates[i], "type": "yes_no", "choices": [],
                 "information_gain": round(float(gain[i]), 4), "p_yes": round(float(p_yes[i]), 3)} for i in order]

    def should_stop(self, differential: list[dict], questions: list[dict]) -> bool:
        top = differential[0]["probability"] if differential else 0.0
        return top >= STOP_CONFIDENCE or not questions or questions[0]["information_gain"] < MIN_INFORMATION_GAIN

    def explain(self, age: int, sex: str, evidence: list[str], condition: str) -> dict:
        """Present findings that raise and lower `condition` (against the average condition), and its
        typical findings not yet asked about."""
        if condition not in self.classes:
            raise KeyError(condition)
        i = self.classes.index(condition)
        x = self.features.vector(age, sex, evidence)
        weights = (self.coef[i] - self.coef.mean(axis=0)) / self.temperature
        contributions: dict[str, float] = {}
        for token in evidence:
            code, _ = split_token(token)
            column = self.features.index.get(token, self.features.index.get(code))
            if column is not None:
                contributions[token] = round(float(weights[column] * x[column]), 4)
        raising = sorted((t for t, c in contributions.items() if c > 0), key=lambda t: -contributions[t])
        lowering = sorted((t for t, c in contributions.items() if c < 0), key=lambda t: contributions[t])
        asked = self.features.present(evidence)
        missing = [code for code in self.conditions[condition].findings if code not in asked]
        return {"condition": condition, "for": [{"evidence": t, "weight": contributions[t]} for t in raising],
                "against": [{"evidence": t, "weight": contributions[t]} for t in lowering],
                "not_asked": missing}


def top_k_accuracy(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    ranks = np.argsort(-probabilities, axis=1)
    return {f"top{k}": round(float((ranks[:, :k] == labels[:, None]).any(axis=1).mean()), 4) for k in (1, 3, 5)}


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    error = 0.0
    for lo in np.linspace(0, 1, bins, endpoint=False):
        inside = (confidence > lo) & (confidence <= lo + 1 / bins)
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return round(float(error), 4)


def differential_scores(predicted: list[set[str]], truth: list[set[str]]) -> dict:
    """DDXPlus's differential precision, recall and F1 (DDP, DDR, DDF1), averaged over patients."""
    precision, recall = [], []
    for guess, actual in zip(predicted, truth):
        overlap = len(guess & actual)
        precision.append(overlap / len(guess) if guess else 0.0)
        recall.append(overlap / len(actual) if actual else 0.0)
    p, r = float(np.mean(precision)), float(np.mean(recall))
    return {"ddp": round(p, 4), "ddr": round(r, 4), "ddf1": round(2 * p * r / (p + r) if p + r else 0.0, 4)}
