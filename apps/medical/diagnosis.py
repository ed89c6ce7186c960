"""The differential model: two multinomial logistic regressions over evidence features and a naive-Bayes
answer model, calibrated by temperature scaling on held-out patients, with red flags, next questions and
per-condition explanations.

The pathology head answers "which condition is it" (trained on PATHOLOGY: its top-1 and calibration),
blended with the answer model (P(answer | condition) per question, the knowledge base's findings of each
condition; the blend weight chosen on held-out patients); the answer model tells "answered no" from
"not asked", so a partial interview is scored on what was answered;
the differential head answers "which conditions stay open" (trained on DDXPlus's DIFFERENTIAL_DIAGNOSIS
soft distribution mixed with the pathology), so a clinician sees a differential, not a single label.

Pure Python/NumPy (no Django): trained by apps.medical.services, loaded by apps.medical.selectors, benchmarked as is.
"""
from __future__ import annotations

import ast
import csv
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
from scipy import sparse
from scipy.optimize import minimize, minimize_scalar
from sklearn.linear_model import LogisticRegression

from apps.medical.features import SEPARATOR, EvidenceSpec, FeatureSpace, split_token

HELD_OUT = 0.2  # share of patients kept for calibration and metrics
RED_FLAG_PROBABILITY = {1: 0.10, 2: 0.15}  # severity -> probability that raises urgency
STOP_CONFIDENCE = 0.9  # the differential is settled when its top condition reaches this
MIN_INFORMATION_GAIN = 0.01  # bits: below this no question is worth asking
DIFFERENTIAL_THRESHOLD = 0.05  # differential-head probability from which a condition stays open (untrained)
THRESHOLD_GRID = (0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.07, 0.1)  # candidates, chosen by held-out DDF1
PATHOLOGY_SHARE = 0.0  # weight of the one-hot pathology in the differential head's soft targets (measured:
# 0.0 and 0.1 give the same DDF1; the pathology head already answers "which one")
UNSUPPORTED_FACTOR = 0.05  # a condition no present finding raises and some lower (explain) is scaled by this
DIFFERENTIAL_REGULARISATION_FACTORS = (1.0, 3.0)  # the differential head's C as multiples of the pathology head's,
# chosen by held-out DDF1 (5-fold CV on DDXPlus, C fixed: DDF1 0.778 at 0.3, 0.798 at 1, 0.805 at 3, 0.804 at 10)
AGE_EDGES = (1, 5, 15, 30, 45, 60, 75)  # the differential head's age bands (DDXPlus's differentials move with age)
SEVERITY_WEIGHT = {1: 3.0, 2: 2.0, 3: 1.5, 4: 1.0, 5: 1.0}  # entropy weight: ruling out the dangerous first
ANSWER_SMOOTHING = 0.01  # the answer model's pseudo-count (measured in 5-fold CV on DDXPlus, answer model alone:
# top-1 0.9925 at 0.01, 0.9915 at 0.03, 0.9905 at 0.1, 0.977 at 0.3)
OUTSIDE_KNOWLEDGE = 1e-4  # likelihood factor of a present finding its condition's knowledge base does not list
BLEND_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # the pathology head's weight against the answer model: candidates,
# chosen by held-out cross-entropy (1.0: the head alone, as an engine trained without an answer model)



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


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def fit_softmax(X: np.ndarray, targets: np.ndarray, *, regularisation: float = 1.0,
                start: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression on soft targets (rows summing to 1): cross-entropy summed over
    patients plus an L2 penalty of 1/(2C) on the weights, as scikit-learn's LogisticRegression(C) does
    for hard labels; L-BFGS on the exact gradient, X sparse (a patient has ~20 of ~900 features)."""
    n_classes, n_features = targets.shape[1], X.shape[1]
    X = sparse.csr_matrix(X)
    X_t = X.T.tocsr()

    def loss_and_gradient(flat):
        W = flat[:n_classes * n_features].reshape(n_classes, n_features)
        b = flat[n_classes * n_features:]
        logits = np.asarray(X @ W.T) + b
        log_p = logits - logits.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        residual = np.exp(log_p) - targets
        loss = -(targets * log_p).sum() + 0.5 / regularisation * (W * W).sum()
        gradient = np.concatenate([(np.asarray(X_t @ residual).T + W / regularisation).ravel(), residual.sum(axis=0)])
        return loss, gradient

    start = np.zeros(n_classes * (n_features + 1)) if start is None else np.concatenate([start[0].ravel(), start[1]])
    result = minimize(loss_and_gradient, start, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return result.x[:n_classes * n_features].reshape(n_classes, n_features), result.x[n_classes * n_features:]


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising held-out cross-entropy against (soft or one-hot) targets."""
    return float(minimize_scalar(
        lambda t: -(targets * np.log(softmax(logits / t) + 1e-12)).sum(axis=1).mean(),
        bounds=(0.05, 20.0), method="bounded").x)


def soft_targets(patients: list[Patient], classes: list[str]) -> np.ndarray:
    """DDXPlus's reference differential mixed with the one-hot pathology (PATHOLOGY_SHARE); a patient
    without a differential (the demo's synthetic ones) gets its pathology alone."""
    targets = np.zeros((len(patients), len(classes)))
    for row, patient in enumerate(patients):
        for name, probability in patient.differential:
            if name in classes:
                targets[row, classes.index(name)] += probability
        total = targets[row].sum()
        share = PATHOLOGY_SHARE if total > 0 else 1.0
        targets[row] = targets[row] / total * (1 - share) if total > 0 else targets[row]
        if patient.pathology in classes:  # a rare condition may miss the fit split (its rows go unused)
            targets[row, classes.index(patient.pathology)] += share
    return targets


def answer_counts(labels: np.ndarray, n_classes: int, space: FeatureSpace,
                  tokens: list[list[str]]) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """Per evidence code: its answer tokens and how many patients of each condition gave each answer,
    (answers + 1) x conditions, the last row "none" (the code absent). A yes/no finding's one answer is
    its code; a multi-choice finding's value rows count each value among the answers."""
    counts = {}
    for code, spec in space.specs.items():
        values = (code,) if spec.data_type == "B" else tuple(f"{code}{SEPARATOR}{v}" for v in spec.possible_values)
        seen = np.zeros((len(values) + 1, n_classes))
        position = {token: i for i, token in enumerate(values)}
        for patient_tokens, label in zip(tokens, labels):
            answers = [position[t] for t in patient_tokens if t in position]
            seen[answers, label] += 1
            if not answers:
                seen[-1, label] += 1
        counts[code] = (values, seen)
    return counts


def answer_rates(labels: np.ndarray, n_classes: int, space: FeatureSpace,
                 tokens: list[list[str]]) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """Per evidence code: its answer tokens and P(answer | condition), (answers + 1) x conditions, the
    last row "none" (the code absent), Laplace-smoothed (answer_counts)."""
    patients = np.bincount(labels, minlength=n_classes).astype(float)
    return {code: (values, (seen + 0.5) / (patients + 1.0))
            for code, (values, seen) in answer_counts(labels, n_classes, space, tokens).items()}


@dataclass
class AnswerModel:
    """Naive Bayes over the answers to the knowledge base's questions: log P(answers | condition) is a sum
    over answer slots (a yes/no question: yes, none; a choice or scale: each value, none; a multi-choice:
    each value given, each value not given), so it is one matrix product. Built from answer counts alone
    (what federated sites send too). A question not asked adds nothing: "no" and "not asked" differ."""

    slots: dict[str, tuple[str, tuple[str, ...], int]]  # code -> (data type, value tokens, first slot)
    log_rates: np.ndarray  # (conditions, slots): log P(slot | condition)
    log_prior: np.ndarray  # (conditions,): log P(condition)

    @classmethod
    def build(cls, space: FeatureSpace, counts: dict[str, tuple[tuple[str, ...], np.ndarray]],
              patients: np.ndarray, findings: list[tuple[str, ...]]) -> AnswerModel:
        """`counts` as answer_counts gives them, `patients` per condition, `findings` each condition's
        knowledge-base evidence codes (a present finding outside them is OUTSIDE_KNOWLEDGE as likely)."""
        a, slots, columns = ANSWER_SMOOTHING, cls.layout(space), []
        for code, (values, seen) in counts.items():
            if slots[code][0] == "M":  # each value given or not
                given = (seen[:-1] + a) / (patients + 2 * a)
                block = np.log(np.vstack([given, 1 - given]))
            else:
                block = np.log((seen + a) / (patients + a * len(seen)))
            outside = np.array([bool(f) and code not in f for f in findings])
            block[:len(values), outside] += np.log(OUTSIDE_KNOWLEDGE)  # the rows of a present answer
            columns.append(block)
        log_prior = np.log((patients + 1.0) / (patients.sum() + len(patients)))
        return cls(slots, np.vstack(columns).T, log_prior)

    @staticmethod
    def layout(space: FeatureSpace) -> dict[str, tuple[str, tuple[str, ...], int]]:
        """The slots of a knowledge base's questions, in its order (as answer_counts lists them)."""
        slots, start = {}, 0
        for code, spec in space.specs.items():
            values = (code,) if spec.data_type == "B" else tuple(f"{code}{SEPARATOR}{v}" for v in spec.possible_values)
            slots[code] = (spec.data_type, values, start)
            start += 2 * len(values) if spec.data_type == "M" else len(values) + 1
        return slots

    def indicators(self, evidence: list[str], negatives=(), unknown=(), *, complete: bool = False) -> np.ndarray:
        """The answer slots a presentation fills: present tokens, codes answered "no" (or a value token
        answered "not this value"); with `complete`, every code not present counts as "none" (all findings
        known). Codes answered "don't know" fill none."""
        kind, values, start = list(self.slots.values())[-1] if self.slots else ("B", (), 0)
        z = np.zeros(start + (2 * len(values) if kind == "M" else len(values) + 1) if self.slots else 0)
        present: dict[str, set[str]] = {}
        for token in evidence:
            present.setdefault(split_token(token)[0], set()).add(token)
        absent_values = {t for t in negatives if split_token(t)[1] is not None}
        absent_codes = {t for t in negatives if split_token(t)[1] is None}
        skip = set(unknown)
        for code, (kind, values, start) in self.slots.items():
            if code in skip:
                continue
            given = present.get(code)
            if given:
                if kind == "M":
                    z[[start + i if t in given else start + len(values) + i for i, t in enumerate(values)]] = 1
                else:
                    z[start + next(i for i, t in enumerate(values) if t in given)] = 1
            elif code in absent_codes or complete:
                if kind == "M":
                    z[start + len(values):start + 2 * len(values)] = 1
                else:
                    z[start + len(values)] = 1
            elif kind == "M":
                z[[start + len(values) + i for i, t in enumerate(values) if t in absent_values]] = 1
        return z

    def token_slot(self, token: str, present: bool) -> int | None:
        """The slot of a present token, or of a code or value token answered "no"."""
        code, value = split_token(token)
        if code not in self.slots:
            return None
        kind, values, start = self.slots[code]
        if value is None:
            return start if present else start + len(values)
        if token not in values:
            return None
        i = values.index(token)
        if kind == "M":
            return start + i if present else start + len(values) + i
        return start + i if present else None


def weighted_entropy(p: np.ndarray, weights: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1.0)
    return -(weights * p * np.log2(p)).sum(axis=-1)


@dataclass
class DiagnosisEngine:
    features: FeatureSpace
    classes: list[str]  # condition names, in the model's column order
    coef: np.ndarray  # (conditions, features): the pathology head
    intercept: np.ndarray  # (conditions,)
    temperature: float
    finding_rates: np.ndarray  # (conditions, features): P(feature present | condition), smoothed
    conditions: dict[str, ConditionInfo]
    urgent_findings: tuple[str, ...] = ()  # evidence codes that always raise urgency
    differential_coef: np.ndarray | None = None  # (conditions, features): the differential head
    differential_intercept: np.ndarray | None = None
    differential_temperature: float = 1.0
    answers: dict | None = None  # code -> (answer tokens, P(answer | condition)); see answer_rates
    default_tokens: tuple[str, ...] = ()  # DDXPlus's "not applicable" values, filled in for unasked codes
    differential_threshold: float = DIFFERENTIAL_THRESHOLD
    answer_model: AnswerModel | None = None  # blended into the pathology head's logits (see `blend`)
    blend: float = 1.0  # the pathology head's weight against the answer model (1: the head alone)

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
        model = LogisticRegression(C=regularisation, max_iter=2000).fit(sparse.csr_matrix(X[fit]), y[fit])
        classes = [names[i] for i in model.classes_]
        held = np.array([i for i in held if y[i] in set(model.classes_)])  # a rare condition may miss the fit split
        logits = X[held] @ model.coef_.T + model.intercept_
        held_y = np.array([classes.index(names[i]) for i in y[held]])
        fit_y = np.array([classes.index(names[i]) for i in y[fit]])
        rates = np.stack([(X[fit][fit_y == c] > 0).mean(axis=0) * 0.98 + 0.01 if (fit_y == c).any()
                          else np.full(X.shape[1], 0.01) for c in range(len(classes))])
        targets = soft_targets(usable, classes)
        X_banded = with_age_bands(X)
        candidates = []
        for factor in DIFFERENTIAL_REGULARISATION_FACTORS:  # chosen by held-out DDF1
            d_coef, d_intercept = fit_softmax(X_banded[fit], targets[fit], regularisation=regularisation * factor,
                                              start=candidates[-1][2:4] if candidates else None)  # the previous C's
            d_temperature = fit_temperature(X_banded[held] @ d_coef.T + d_intercept, targets[held])
            threshold, held_ddf1 = best_threshold(softmax((X_banded[held] @ d_coef.T + d_intercept) / d_temperature),
                                                  targets[held], classes)
            candidates.append((held_ddf1, -factor, d_coef, d_intercept, d_temperature, threshold))
        held_ddf1, factor, d_coef, d_intercept, d_temperature, threshold = max(candidates, key=lambda c: c[:2])
        tokens = [usable[i].evidence for i in fit]
        answer_model = AnswerModel.build(space, answer_counts(fit_y, len(classes), space, tokens),
                                         np.bincount(fit_y, minlength=len(classes)).astype(float),
                                         [conditions[name].findings for name in classes])
        held_slots = np.stack([answer_model.indicators(usable[i].evidence, complete=True) for i in held])
        blend, temperature = choose_blend(logits, held_slots @ answer_model.log_rates.T + answer_model.log_prior,
                                          np.eye(len(classes))[held_y])
        logits = blend * logits + (1 - blend) * (held_slots @ answer_model.log_rates.T + answer_model.log_prior)
        engine = cls(space, classes, model.coef_, model.intercept_, temperature, rates,
                     {name: conditions[name] for name in classes}, (), d_coef, d_intercept, d_temperature,
                     answer_rates(fit_y, len(classes), space, tokens), default_values(space, tokens), threshold,
                     answer_model, blend)
        probabilities = softmax(logits / temperature)
        metrics = {"patients": len(usable), "skipped_unknown_pathology": len(patients) - len(usable),
                   "held_out": len(held), "temperature": round(temperature, 3), "blend": blend,
                   "differential_regularisation": regularisation * -factor,
                   "differential_temperature": round(d_temperature, 3), "differential_threshold": threshold,
                   "ddf1": held_ddf1,
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
    def probabilities(self, X: np.ndarray, Z: np.ndarray | None = None) -> np.ndarray:
        """The pathology head's calibrated distribution for feature rows X, blended with the answer model's
        log-likelihoods of the answer slots Z (AnswerModel.indicators) when the engine has one."""
        logits = X @ self.coef.T + self.intercept
        if self.answer_model is not None and self.blend < 1.0:
            if Z is None:
                Z = np.zeros((X.shape[0], self.answer_model.log_rates.shape[1]))
            logits = self.blend * logits + (1 - self.blend) * (Z @ self.answer_model.log_rates.T
                                                               + self.answer_model.log_prior)
        return softmax(logits / self.temperature)

    def differential_probabilities(self, X: np.ndarray) -> np.ndarray:
        """The differential head's distribution (the pathology head's for an engine trained without one)."""
        if self.differential_coef is None:
            return self.probabilities(X)
        return softmax((with_age_bands(X) @ self.differential_coef.T + self.differential_intercept) / self.differential_temperature)

    def _vector(self, age: int, sex: str, evidence: list[str], answered: set[str]) -> np.ndarray:
        """The feature vector, with DDXPlus's "not applicable" values for codes not answered (as every
        training patient has them)."""
        filled = [t for t in self.default_tokens if split_token(t)[0] not in answered]
        return self.features.vector(age, sex, [*evidence, *filled])

    def _absent_likelihood(self, code: str) -> np.ndarray | None:
        if self.answers is not None and code in self.answers:
            return self.answers[code][1][-1]
        column = self.features.index.get(code)
        return None if column is None else 1 - self.finding_rates[:, column]

    def _head_share(self) -> float:
        """The pathology head's share of the score (the rest is the answer model's)."""
        return self.blend if self.answer_model is not None else 1.0

    def _contributions(self, age: int, sex: str, evidence: list[str]) -> tuple[list[str], np.ndarray]:
        """The present tokens the model knows, and (conditions, those tokens): each one's logit contribution
        against the average condition, the pathology head's weight and the answer model's log-likelihood of
        that answer in the blend's shares, as explain() lists them."""
        x, share = self.features.vector(age, sex, evidence), self._head_share()
        tokens, columns = [], []
        for token in evidence:
            column = self.features.index.get(token, self.features.index.get(split_token(token)[0]))
            slot = self.answer_model.token_slot(token, True) if share < 1.0 else None
            if column is None and slot is None:
                continue
            weight = np.zeros(len(self.classes))
            if column is not None:
                weight += share * (self.coef[:, column] - self.coef[:, column].mean()) * x[column]
            if slot is not None:
                rates = self.answer_model.log_rates[:, slot]
                weight += (1 - share) * (rates - rates.mean())
            tokens.append(token)
            columns.append(weight / self.temperature)
        return tokens, np.stack(columns, axis=1) if columns else np.zeros((len(self.classes), 0))

    def _unsupported(self, age: int, sex: str, evidence: list[str]) -> np.ndarray:
        """Conditions with no present finding for them and some against them: a discriminative model
        can rank those high on what is absent from a short presentation, which no clinician would."""
        _, contributions = self._contributions(age, sex, evidence)
        return ~(contributions > 0).any(axis=1) & (contributions < 0).any(axis=1)

    def _reweigh(self, p: np.ndarray, negatives: tuple[str, ...], unsupported: np.ndarray,
                 share: float = 1.0) -> np.ndarray:
        """Bayes' rule for each finding answered "no", to the power `share` (the part of the score that
        did not see the answer), and the unsupported conditions scaled down."""
        p = np.where(unsupported, p * UNSUPPORTED_FACTOR, p)
        for code in negatives:
            likelihood = self._absent_likelihood(code)
            if likelihood is not None:
                p = p * likelihood ** share
        return p / p.sum()

    def _slots(self, evidence, negatives, unknown, complete: bool) -> np.ndarray | None:
        if self.answer_model is None or self.blend >= 1.0:
            return None
        return self.answer_model.indicators(evidence, negatives, unknown, complete=complete)[None]

    def _answered(self, evidence, negatives, unknown) -> set[str]:
        return self.features.present(evidence) | set(negatives) | set(unknown)

    def posterior(self, age: int, sex: str, evidence: list[str], negatives: tuple[str, ...] = (), *,
                  unknown: tuple[str, ...] = (), complete: bool = False) -> np.ndarray:
        """The pathology head's probabilities given the present findings, blended with the answer model
        (which counts the findings answered "no"), the head's share reweighted by Bayes' rule for each
        finding answered "no" (the head cannot tell "absent" from "not asked"). Findings answered "don't
        know" (`unknown`) carry no information and leave them as they are. `complete`: every finding not
        present is known to be absent (a full record, as DDXPlus's patients). Conditions nothing present
        supports and something present argues against are scaled down."""
        x = self._vector(age, sex, evidence, self._answered(evidence, negatives, unknown))
        p = self.probabilities(x[None], self._slots(evidence, negatives, unknown, complete))[0]
        return self._reweigh(p, tuple(negatives), self._unsupported(age, sex, evidence),
                             share=self._head_share())

    def differential_posterior(self, age: int, sex: str, evidence: list[str], negatives: tuple[str, ...] = (), *,
                               unknown: tuple[str, ...] = ()) -> np.ndarray:
        """The differential head's probabilities, reweighted for absent findings as `posterior` is."""
        x = self._vector(age, sex, evidence, self._answered(evidence, negatives, unknown))
        return self._reweigh(self.differential_probabilities(x[None])[0], tuple(negatives),
                             self._unsupported(age, sex, evidence))

    def differential(self, age: int, sex: str, evidence: list[str], *, negatives: tuple[str, ...] = (),
                     unknown: tuple[str, ...] = (), top: int = 10, complete: bool = False) -> list[dict]:
        """The conditions by probability (pathology head), each with its differential-head probability
        and whether it stays open on the differential (at least the threshold chosen in training).
        `complete`: every finding not present is known to be absent (see `posterior`)."""
        p = self.posterior(age, sex, evidence, negatives, unknown=unknown, complete=complete)
        open_p = self.differential_posterior(age, sex, evidence, negatives, unknown=unknown)
        order = np.argsort(-p)[:top]
        return [{"name": self.classes[i], "icd10": self.conditions[self.classes[i]].icd10,
                 "severity": self.conditions[self.classes[i]].severity, "probability": round(float(p[i]), 4),
                 "differential_probability": round(float(open_p[i]), 4),
                 "in_differential": bool(open_p[i] >= self.differential_threshold)}
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

    # --- interview ---------------------------------------------------------------------------
    def _question(self, code: str) -> tuple[dict, np.ndarray]:
        """A question's type and choices, and P(answer | condition) over its choices then "none"."""
        spec = self.features.specs[code]
        tokens, likelihood = self.answers[code]
        if spec.data_type == "B":
            return {"type": "yes_no", "choices": []}, np.stack([likelihood[0], 1 - likelihood[0]])
        kind = "scale" if spec.is_scale else "multi" if spec.data_type == "M" else "choice"
        if kind == "multi":  # the answer's values as one draw: their shares of "not none"
            values = likelihood[:-1] / likelihood[:-1].sum(axis=0, keepdims=True) * (1 - likelihood[-1])
            likelihood = np.vstack([values, likelihood[-1:]])
        likelihood = likelihood / likelihood.sum(axis=0, keepdims=True)
        return {"type": kind, "choices": [split_token(t)[1] for t in tokens]}, likelihood

    def _askable(self, answered: set[str], present: set[str]) -> list[str]:
        """Codes not answered whose parent question (if any) was answered present."""
        return [code for code, spec in self.features.specs.items()
                if code not in answered and (spec.parent_code in (code, *present)
                                             or spec.parent_code not in self.features.specs)]

    def next_questions(self, age: int, sex: str, evidence: list[str], *, negatives: tuple[str, ...] = (),
                       unknown: tuple[str, ...] = (), top: int = 5) -> list[dict]:
        """Unasked questions, one per evidence code (yes/no, choice, multi-choice or scale, with its
        choices), ranked by expected information gain (bits) over the differential, entropy weighted
        toward severe conditions (SEVERITY_WEIGHT) so a question that can rule out a dangerous condition
        comes before an equally informative one about a mild one. Findings answered "don't know"
        (`unknown`) are not asked again. A child question ("where is the pain?") waits for its parent."""
        if self.answers is None:
            return []
        askable = self._askable(self._answered(evidence, negatives, unknown), self.features.present(evidence))
        if not askable:
            return []
        p = self.differential_posterior(age, sex, evidence, tuple(negatives), unknown=tuple(unknown))
        weights = np.array([SEVERITY_WEIGHT.get(self.conditions[name].severity, 1.0) for name in self.classes])
        before = weighted_entropy(p, weights)
        rows = []
        for code in askable:
            described, likelihood = self._question(code)
            joint = likelihood * p[None, :]  # (answers, conditions)
            p_answer = joint.sum(axis=1)
            after = weighted_entropy(joint / np.maximum(p_answer[:, None], 1e-12), weights)
            gain = float(before - (p_answer * after).sum())
            rows.append({"evidence": code, **described, "information_gain": round(gain, 4),
                         "p_yes": round(float(1 - p_answer[-1]), 3)})
        rows.sort(key=lambda row: -row["information_gain"])
        return rows[:top]

    def should_stop(self, differential: list[dict], questions: list[dict]) -> bool:
        """Settled: the top condition reaches STOP_CONFIDENCE, or no question is worth asking."""
        top = differential[0]["probability"] if differential else 0.0
        return top >= STOP_CONFIDENCE or not questions or questions[0]["information_gain"] < MIN_INFORMATION_GAIN

    def explain(self, age: int, sex: str, evidence: list[str], condition: str, *,
                negatives: tuple[str, ...] = ()) -> dict:
        """Present findings that raise and lower `condition` against the average condition (the pathology
        head's weights and the answer model's log-likelihoods, in the blend's shares: the model's own
        logits), findings answered absent that count against it (log-likelihood ratio of "absent" against
        the average condition, as the posterior weighs it), and its typical findings not yet asked about."""
        if condition not in self.classes:
            raise KeyError(condition)
        i = self.classes.index(condition)
        tokens, matrix = self._contributions(age, sex, evidence)
        contributions = {token: round(float(matrix[i, k]), 4) for k, token in enumerate(tokens)}
        share = self._head_share()
        for code in negatives:
            likelihood = self._absent_likelihood(code)
            slot = self.answer_model.token_slot(code, False) if share < 1.0 else None
            if likelihood is None and slot is None:
                continue
            weight = 0.0
            if likelihood is not None:
                log_likelihood = np.log(likelihood)
                weight += share * float(log_likelihood[i] - log_likelihood.mean())
            if slot is not None:
                rates = self.answer_model.log_rates[:, slot]
                weight += (1 - share) * float(rates[i] - rates.mean()) / self.temperature
            contributions[code] = round(weight, 4)
        raising = sorted((t for t, c in contributions.items() if c > 0), key=lambda t: -contributions[t])
        lowering = sorted((t for t, c in contributions.items() if c < 0), key=lambda t: contributions[t])
        asked = self.features.present(evidence) | set(negatives)
        missing = [code for code in self.conditions[condition].findings if code not in asked]
        return {"condition": condition, "for": [{"evidence": t, "weight": contributions[t]} for t in raising],
                "against": [{"evidence": t, "weight": contributions[t]} for t in lowering],
                "not_asked": missing}


def choose_blend(head_logits: np.ndarray, answer_logits: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """The BLEND_WEIGHTS weight (and its temperature) whose blend of the pathology head's logits with the
    answer model's log-likelihoods has the lowest cross-entropy on held-out patients."""
    scored = []
    for weight in BLEND_WEIGHTS:
        logits = weight * head_logits + (1 - weight) * answer_logits
        temperature = fit_temperature(logits, targets)
        scored.append((-(targets * np.log(softmax(logits / temperature) + 1e-12)).sum(axis=1).mean(), weight,
                       temperature))
    _, weight, temperature = min(scored)
    return weight, temperature


def with_age_bands(X: np.ndarray) -> np.ndarray:
    """The features with one-hot AGE_EDGES bands appended (column 0 is age / 100)."""
    bands = np.searchsorted(np.array(AGE_EDGES) / 100.0, X[:, 0] + 1e-9, side="right")
    return np.hstack([X, np.eye(len(AGE_EDGES) + 1, dtype=X.dtype)[bands]])


def best_threshold(probabilities: np.ndarray, targets: np.ndarray, classes: list[str]) -> tuple[float, float]:
    """The THRESHOLD_GRID value with the best held-out DDF1 against the reference differentials, and that DDF1."""
    truth = [{classes[i] for i in np.flatnonzero(row > 0)} for row in targets]
    scored = [(differential_scores([{classes[i] for i in np.flatnonzero(row >= t)} for row in probabilities],
                                   truth)["ddf1"], t) for t in THRESHOLD_GRID]
    ddf1, threshold = max(scored)
    return threshold, ddf1


def default_values(space: FeatureSpace, tokens: list[list[str]]) -> tuple[str, ...]:
    """Value tokens of non-yes/no codes that most training patients carry (DDXPlus fills "not applicable"
    answers in): what the model sees for a code the interview has not asked yet."""
    counts: dict[str, int] = {}
    for patient_tokens in tokens:
        for token in patient_tokens:
            if split_token(token)[1] is not None:
                counts[token] = counts.get(token, 0) + 1
    return tuple(sorted(t for t, n in counts.items() if n > 0.5 * len(tokens)))


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
