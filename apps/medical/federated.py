"""Federated training of the diagnosis model across sites, on Flower: each site trains on its own patients
and only model updates travel.

The server (this process) runs Flower's gRPC server and `Server` with a FedAvg-derived strategy; every
site is its own process (`python -m apps.medical.federated site --server HOST:PORT --data DIR`) that
reads only its own patients file and talks to the server as a Flower NumPyClient.
Round 1 (statistics): each site sends the count statistics the engine keeps (finding rates, answer
rates: per-condition frequencies over its patients), which FedAvg's mean weighted by patients turns
into the federation's. Every later round is one step of L-BFGS run by the server on the central
objective of the diagnosis model's two softmax regressions: the server sends the current weights, each
site sends back its share of the loss and its gradient (its cross-entropy plus 1/sites of the L2
penalty, so the shares add up to central training's objective), and the strategy sums them. FedAvg of
locally trained weights (sites running L-BFGS on their own patients, then averaged) was measured
first: with sites this unlike each other it stalled at held-out top-1 0.897 after 5 rounds where central
training reaches 0.98, as local optima of non-identical case mixes do not average to the global one.
The answer model (diagnosis.AnswerModel) is built by the server from the statistics round's answer
counts; the server sends it with the weights for calibration, which runs on each site's own held-out
patients: the sites return sums (negative log-likelihood per blend weight and temperature, differential
precision/recall per threshold, calibration bins), never a row.

What crossed is recorded on both sides: the server's strategy logs every update it received (arrays,
shapes, bytes) and every metric; each site logs what it sent (DIR/sent.json).

Pure Python/NumPy and Flower (no Django): run by apps.medical.services.federated, benchmarked as is.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

os.environ["FLWR_TELEMETRY_ENABLED"] = "0"  # Flower reports usage to its makers unless told not to; before import

import numpy as np  # noqa: E402
from flwr.client import NumPyClient, start_client  # noqa: E402
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays  # noqa: E402
from flwr.server import Server, SimpleClientManager  # noqa: E402
from flwr.server.strategy import FedAvg  # noqa: E402
from flwr.server.superlink.fleet.grpc_bidi.grpc_server import start_grpc_server  # noqa: E402
from scipy import sparse  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

from apps.medical.diagnosis import (BLEND_WEIGHTS, HELD_OUT, THRESHOLD_GRID, AnswerModel,  # noqa: E402
                                    ConditionInfo, DiagnosisEngine, Patient, answer_rates, soft_targets, softmax,
                                    with_age_bands)
from apps.medical.features import EvidenceSpec, FeatureSpace, split_token  # noqa: E402

logging.getLogger("flwr").setLevel(logging.WARNING)  # Flower logs every round at INFO
logging.getLogger("alembic").setLevel(logging.WARNING)  # imported by Flower, it logs its plugins at INFO
REPO = Path(__file__).resolve().parents[2]
TEMPERATURES = tuple(float(t) for t in np.geomspace(0.05, 20.0, 121))  # calibration grid (central: bounded search)
CALIBRATION_BINS = 10  # as expected_calibration_error
SITE_CONNECT_TIMEOUT_S = 120.0  # the sites' processes must have connected by then
ROUND_TIMEOUT_S = 600.0  # a round a site does not answer within fails the run
ARRAY_NAMES = ("coef", "intercept", "differential_coef", "differential_intercept", "class_frequency",
               "finding_frequency", "answer_frequency")  # what a site sends, in this order, every round


@dataclass(frozen=True)
class FederatedConfig:
    sites: int = 3  # simulated sites (hospitals)
    iterations: int = 300  # L-BFGS iterations at most (each takes one round or a few: its line search)
    alpha: float = 0.5  # Dirichlet concentration of the sites' case mixes (smaller: more different)
    seed: int = 0  # the split into sites and each site's held-out patients
    regularisation: float = 1.0  # C of the L2 penalty, as central training's


# --- the split into sites ------------------------------------------------------------------------
def split_sites(patients: list[Patient], *, sites: int, alpha: float, seed: int) -> list[list[Patient]]:
    """Each pathology's patients shared among the sites by proportions drawn from Dirichlet(alpha), so
    the sites' case mixes differ (as hospitals' do); every site gets at least one patient."""
    rng = np.random.default_rng(seed)
    by_pathology: dict[str, list[int]] = {}
    for index, patient in enumerate(patients):
        by_pathology.setdefault(patient.pathology, []).append(index)
    assigned: list[list[int]] = [[] for _ in range(sites)]
    for name in sorted(by_pathology):
        indices = rng.permutation(by_pathology[name])
        cuts = (np.cumsum(rng.dirichlet([alpha] * sites))[:-1] * len(indices)).round().astype(int)
        for site, part in enumerate(np.split(indices, cuts)):
            assigned[site] += [int(i) for i in part]
    for site in range(sites):  # a site left empty takes one patient from the largest
        if not assigned[site]:
            largest = max(range(sites), key=lambda s: len(assigned[s]))
            assigned[site].append(assigned[largest].pop())
    return [[patients[i] for i in sorted(site)] for site in assigned]


def case_mix(sites: list[list[Patient]]) -> list[dict[str, int]]:
    """Patients per pathology at each site."""
    mixes = []
    for site in sites:
        counts: dict[str, int] = {}
        for patient in site:
            counts[patient.pathology] = counts.get(patient.pathology, 0) + 1
        mixes.append(dict(sorted(counts.items())))
    return mixes


def write_patients(path: Path, patients: list[Patient]) -> None:
    """Patients in the DDXPlus CSV format (what read_patients reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, ["AGE", "DIFFERENTIAL_DIAGNOSIS", "SEX", "PATHOLOGY", "EVIDENCES",
                                       "INITIAL_EVIDENCE"])
        writer.writeheader()
        for p in patients:
            writer.writerow({"AGE": p.age, "DIFFERENTIAL_DIAGNOSIS": repr([list(d) for d in p.differential]),
                             "SEX": p.sex, "PATHOLOGY": p.pathology, "EVIDENCES": repr(list(p.evidence)),
                             "INITIAL_EVIDENCE": p.initial_evidence})


def write_knowledge(path: Path, specs: list[EvidenceSpec], conditions: dict[str, ConditionInfo]) -> None:
    """The shared knowledge base (evidences, conditions: no patient in it) every site starts from."""
    path.write_text(json.dumps({"specs": [asdict(s) for s in specs],
                                "conditions": [asdict(c) for c in conditions.values()]}))


def read_knowledge(path: Path) -> tuple[list[EvidenceSpec], dict[str, ConditionInfo]]:
    data = json.loads(path.read_text())
    specs = [EvidenceSpec(s["code"], s["data_type"], tuple(s["possible_values"]), s["parent_code"],
                          s["is_antecedent"]) for s in data["specs"]]
    conditions = {c["name"]: ConditionInfo(c["name"], c["icd10"], c["severity"], tuple(c["findings"]))
                  for c in data["conditions"]}
    return specs, conditions


# --- the model's layout: what travels --------------------------------------------------------------
class Layout:
    """The arrays of one update, fixed by the shared knowledge base alone: every site and the server
    build the same one, so an update's shapes say what it can hold."""

    def __init__(self, specs: list[EvidenceSpec], conditions: dict[str, ConditionInfo]):
        self.space = FeatureSpace(specs)
        self.classes = sorted(conditions)
        self.answer_rows = [(code, (code,) if spec.data_type == "B" else
                             tuple(f"{code}_@_{v}" for v in spec.possible_values))
                            for code, spec in self.space.specs.items()]  # as answer_rates orders them
        n_classes, n_features = len(self.classes), len(self.space.names)
        banded = with_age_bands(np.zeros((1, n_features))).shape[1]
        self.weights = ((n_classes, n_features), (n_classes,), (n_classes, banded), (n_classes,))  # both heads
        self.statistics = ((n_classes,), (n_classes, n_features),
                           (sum(len(v) + 1 for _, v in self.answer_rows), n_classes))
        self.gradient = ((2,), *self.weights)  # the two heads' losses, then the weights' gradients

    def shapes(self, phase: str) -> tuple[tuple[int, ...], ...]:
        """What a site sends in a round of `phase` ("statistics" or "gradient")."""
        return self.statistics if phase == "statistics" else self.gradient

    def update_bytes(self, phase: str) -> int:
        """Bytes of one update of `phase` as Flower serialises it (NumPy .npy per array)."""
        return sum(len(t) for t in ndarrays_to_parameters([np.zeros(s) for s in self.shapes(phase)]).tensors)

    def flatten(self, arrays: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])

    def unflatten(self, flat: np.ndarray, shapes=None) -> list[np.ndarray]:
        arrays, start = [], 0
        for shape in shapes or self.weights:
            size = int(np.prod(shape))
            arrays.append(flat[start:start + size].reshape(shape))
            start += size
        return arrays


def site_loss_and_gradient(X: sparse.csr_matrix, targets: np.ndarray, W: np.ndarray, b: np.ndarray, *,
                           penalty: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Softmax regression's loss on one site's patients (cross-entropy summed over them plus `penalty` x
    1/2 ||W||^2: diagnosis.fit_softmax's objective, the penalty being this site's share) and its gradient."""
    if not X.shape[0]:
        return 0.5 * penalty * float((W * W).sum()), penalty * W, np.zeros_like(b)
    logits = np.asarray(X @ W.T) + b
    log_p = logits - logits.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    residual = np.exp(log_p) - targets  # (patients, conditions)
    loss = -(targets * log_p).sum() + 0.5 * penalty * (W * W).sum()
    return float(loss), np.asarray(X.T @ residual).T + penalty * W, residual.sum(axis=0)


# --- a site --------------------------------------------------------------------------------------
class SiteClient(NumPyClient):
    """One site: its patients stay in this process; `fit` returns its statistics or its share of the loss
    and gradient, `evaluate` sums over its held-out patients."""

    def __init__(self, patients: list[Patient], layout: Layout, *, seed: int, sites: int, regularisation: float,
                 name: str = "site", sent_log: Path | None = None):
        self.layout, self.sites, self.regularisation, self.name = layout, sites, regularisation, name
        self.sent_log, self.sent = sent_log, []
        classes = layout.classes
        usable = [p for p in patients if p.pathology in classes]
        order = np.random.default_rng(seed).permutation(len(usable))
        held = max(1, int(round(len(usable) * HELD_OUT))) if len(usable) > 1 else 0
        self.fit_rows = [usable[i] for i in order[held:]]
        self.held_rows = [usable[i] for i in order[:held]]
        self.X, self.X_held = self._vectors(self.fit_rows), self._vectors(self.held_rows)
        self.y = np.array([classes.index(p.pathology) for p in self.fit_rows], dtype=int)
        self.y_held = np.array([classes.index(p.pathology) for p in self.held_rows], dtype=int)
        self.one_hot = np.eye(len(classes))[self.y]
        self.soft = soft_targets(self.fit_rows, classes)
        self.soft_held = soft_targets(self.held_rows, classes)
        self.statistics = self._statistics()
        self.X_sparse, self.X_banded = sparse.csr_matrix(self.X), sparse.csr_matrix(with_age_bands(self.X))
        slots = AnswerModel(AnswerModel.layout(layout.space), np.zeros((0, 0)), np.zeros(0))
        self.Z_held = (np.stack([slots.indicators(p.evidence, complete=True) for p in self.held_rows])
                       if self.held_rows else np.zeros((0, 0)))

    def _vectors(self, rows: list[Patient]) -> np.ndarray:
        if not rows:
            return np.zeros((0, len(self.layout.space.names)))
        return np.stack([self.layout.space.vector(p.age, p.sex, p.evidence) for p in rows]).astype(float)

    def _statistics(self) -> list[np.ndarray]:
        """Per-condition frequencies over this site's training patients (count / patients): FedAvg's
        mean weighted by patients makes them the federation's counts / patients."""
        n, n_classes = max(len(self.fit_rows), 1), len(self.layout.classes)
        counts = np.bincount(self.y, minlength=n_classes).astype(float)
        present = np.stack([(self.X[self.y == c] > 0).sum(axis=0) for c in range(n_classes)]).astype(float)
        rates = answer_rates(self.y, n_classes, self.layout.space, [p.evidence for p in self.fit_rows])
        seen = np.vstack([rates[code][1] * (counts + 1.0) - 0.5 for code, _ in self.layout.answer_rows])
        return [counts / n, present / n, np.clip(seen, 0.0, None) / n]

    def get_parameters(self, config):
        return [np.zeros(shape) for shape in self.layout.weights]

    def fit(self, parameters, config):
        """Round 1: the statistics; later rounds: [loss], then the gradient of each head's weights and
        intercepts, at the weights received, summed over this site's training patients."""
        if config.get("phase") == "statistics":
            update = list(self.statistics)
        else:
            W, b, dW, db = (np.asarray(a, dtype=float) for a in parameters)
            penalty = 1.0 / (self.regularisation * self.sites)
            loss, gW, gb = site_loss_and_gradient(self.X_sparse, self.one_hot, W, b, penalty=penalty)
            d_loss, gdW, gdb = site_loss_and_gradient(self.X_banded, self.soft, dW, db, penalty=penalty)
            update = [np.array([loss, d_loss]), gW, gb, gdW, gdb]
        self._record(config, update)
        return update, len(self.fit_rows), ({"site": self.name} if config.get("phase") == "statistics" else {})

    def _record(self, config, arrays: list[np.ndarray]) -> None:
        self.sent.append({"round": int(config.get("round", 0)), "arrays": len(arrays),
                          "bytes": sum(len(t) for t in ndarrays_to_parameters(arrays).tensors)})
        if self.sent_log is not None:
            self.sent_log.write_text(json.dumps(self.sent))

    def evaluate(self, parameters, config):
        """Sums over this site's held-out patients: top-1 hits, negative log-likelihood per blend weight
        (of the pathology head with the answer model, whose log-rates and log-prior follow the weights)
        and temperature, and the differential head's per temperature; and (with the blend and the
        temperatures chosen) DDP/DDR sums per threshold and the calibration bins."""
        W, b, dW, db, log_rates, log_prior = (np.asarray(a, dtype=float) for a in parameters)
        metrics: dict[str, float] = {"patients": len(self.held_rows)}
        if not self.held_rows:
            return 0.0, 0, metrics
        head = self.X_held @ W.T + b
        answers = self.Z_held @ log_rates.T + log_prior
        blend = float(config.get("blend", 1.0))
        logits = blend * head + (1 - blend) * answers
        d_logits = with_age_bands(self.X_held) @ dW.T + db
        metrics["top1_hits"] = int((logits.argmax(axis=1) == self.y_held).sum())
        if config.get("phase") == "final":
            t, dt = float(config["temperature"]), float(config["differential_temperature"])
            p, dp = softmax(logits / t), softmax(d_logits / dt)
            truth = [set(np.flatnonzero(row > 0)) for row in self.soft_held]
            for k, threshold in enumerate(THRESHOLD_GRID):
                guesses = [set(np.flatnonzero(row >= threshold)) for row in dp]
                metrics[f"ddp_sum_{k}"] = sum(len(g & r) / len(g) if g else 0.0 for g, r in zip(guesses, truth))
                metrics[f"ddr_sum_{k}"] = sum(len(g & r) / len(r) if r else 0.0 for g, r in zip(guesses, truth))
            confidence, correct = p.max(axis=1), p.argmax(axis=1) == self.y_held
            for k, lo in enumerate(np.linspace(0, 1, CALIBRATION_BINS, endpoint=False)):
                inside = (confidence > lo) & (confidence <= lo + 1 / CALIBRATION_BINS)
                metrics[f"bin_count_{k}"] = int(inside.sum())
                metrics[f"bin_confidence_{k}"] = float(confidence[inside].sum())
                metrics[f"bin_correct_{k}"] = int(correct[inside].sum())
            return 0.0, len(self.held_rows), metrics
        one_hot = np.eye(len(self.layout.classes))[self.y_held]
        for j, weight in enumerate(BLEND_WEIGHTS):
            blended = weight * head + (1 - weight) * answers
            for k, t in enumerate(TEMPERATURES):
                metrics[f"nll_{j}_{k}"] = float(-(one_hot * np.log(softmax(blended / t) + 1e-12)).sum())
        for k, t in enumerate(TEMPERATURES):
            metrics[f"differential_nll_{k}"] = float(-(self.soft_held * np.log(softmax(d_logits / t) + 1e-12)).sum())
        unit = TEMPERATURES.index(min(TEMPERATURES, key=lambda t: abs(t - 1.0)))
        loss = metrics[f"nll_{len(BLEND_WEIGHTS) - 1}_{unit}"]  # the head alone at temperature 1
        return loss / len(self.held_rows), len(self.held_rows), metrics


def site_main(*, server: str, data: Path) -> None:
    """A site process: reads DATA/patients.csv and DATA/knowledge.json and DATA/site.json, trains
    until the server lets it go, logs what it sent to DATA/sent.json."""
    from apps.medical.diagnosis import read_patients

    settings = json.loads((data / "site.json").read_text())
    specs, conditions = read_knowledge(data / "knowledge.json")
    client = SiteClient(read_patients(data / "patients.csv"), Layout(specs, conditions), seed=settings["seed"],
                        sites=settings["sites"], regularisation=settings["regularisation"], name=settings["name"],
                        sent_log=data / "sent.json")
    start_client(server_address=server, client=client.to_client(), insecure=True, max_wait_time=SITE_CONNECT_TIMEOUT_S)


# --- the server ----------------------------------------------------------------------------------
@dataclass
class Received:
    """What reached the server from the sites, kept for the record and the proof that no row crossed."""

    updates: list[dict] = field(default_factory=list)  # one per site per round: arrays, shapes, bytes, patients
    evaluations: list[dict] = field(default_factory=list)  # one per site per evaluation: metric names, count
    first: list[list[np.ndarray]] = field(default_factory=list)  # the first round's updates, as received
    last: list[list[np.ndarray]] = field(default_factory=list)  # the last round's updates, as received

    def summary(self) -> dict:
        per_site: dict[str, dict] = {}
        for update in self.updates:
            site = per_site.setdefault(update["site"], {"rounds": 0, "arrays": 0, "bytes": 0, "patients": 0,
                                                        "metrics_sent": 0})
            site["rounds"] += 1
            site["arrays"] += update["arrays"]
            site["bytes"] += update["bytes"]
            site["patients"] = update["patients"]
        for evaluation in self.evaluations:
            per_site[evaluation["site"]]["metrics_sent"] += evaluation["metrics"]
        return per_site


class DiagnosisFederation(FedAvg):
    """FedAvg's weighted mean for the statistics round, the sum of the sites' shares for a gradient round
    (a site's share of the central objective); records every update and metric it receives and sums the
    sites' evaluation sums. `phase` and `evaluate_config` are set by federated_train between rounds."""

    def __init__(self, layout: Layout, *, sites: int):
        super().__init__(fraction_fit=1.0, fraction_evaluate=1.0, min_fit_clients=sites, min_evaluate_clients=sites,
                         min_available_clients=sites, fit_metrics_aggregation_fn=lambda metrics: {})
        self.layout, self.phase, self.evaluate_config, self.evaluated, self.site_ids = layout, "statistics", {}, {}, {}
        self.received = Received()

    def _site(self, proxy, metrics=None) -> str:
        """The site's name, as it gave it with its statistics (the first round)."""
        if metrics and "site" in metrics:
            self.site_ids[proxy.cid] = str(metrics["site"])
        return self.site_ids.get(proxy.cid, proxy.cid)

    def configure_fit(self, server_round, parameters, client_manager):
        instructions = super().configure_fit(server_round, parameters, client_manager)
        for _, ins in instructions:
            ins.config.update({"phase": self.phase, "round": server_round})
        return instructions

    def aggregate_fit(self, server_round, results, failures):
        if failures:
            raise RuntimeError(f"round {server_round}: {len(failures)} site(s) failed: {failures[0]!r}")
        self.received.last = []
        results = sorted(results, key=lambda result: self._site(result[0], result[1].metrics))  # a fixed order:
        for proxy, fit_res in results:  # sums in arrival order would differ in the last bits from run to run
            arrays = parameters_to_ndarrays(fit_res.parameters)
            self.received.updates.append({
                "site": self._site(proxy, fit_res.metrics), "round": server_round, "phase": self.phase,
                "arrays": len(arrays),
                "shapes": [list(a.shape) for a in arrays], "bytes": sum(len(t) for t in fit_res.parameters.tensors),
                "patients": fit_res.num_examples, "metrics": len(fit_res.metrics)})
            self.received.last.append(arrays)
            if tuple(a.shape for a in arrays) != self.layout.shapes(self.phase):
                raise RuntimeError(f"an update of {self._site(proxy)} is not the model's layout")
        if server_round == 1:
            self.received.first = self.received.last
        if self.phase == "statistics":
            return super().aggregate_fit(server_round, results, failures)
        summed = [sum(arrays[k] for arrays in self.received.last) for k in range(len(self.layout.gradient))]
        return ndarrays_to_parameters(summed), {}

    def configure_evaluate(self, server_round, parameters, client_manager):
        instructions = super().configure_evaluate(server_round, parameters, client_manager)
        for _, ins in instructions:
            ins.config.update(self.evaluate_config)
        return instructions

    def aggregate_evaluate(self, server_round, results, failures):
        if failures:
            raise RuntimeError(f"evaluation {server_round}: {len(failures)} site(s) failed: {failures[0]!r}")
        totals: dict[str, float] = {}
        for proxy, res in sorted(results, key=lambda result: self._site(result[0])):
            self.received.evaluations.append({"site": self._site(proxy), "round": server_round,
                                              "metrics": len(res.metrics)})
            for key, value in res.metrics.items():
                totals[key] = totals.get(key, 0.0) + float(value)
        self.evaluated = totals
        return totals.get("top1_hits", 0.0) / max(totals.get("patients", 0.0), 1.0), {}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class FederatedResult:
    engine: DiagnosisEngine
    metrics: dict  # held-out figures (as DiagnosisEngine.train's), the sites' case mixes, what each sent
    received: Received  # what reached the server, for a caller that checks it


def federated_train(site_patients: list[list[Patient]], specs: list[EvidenceSpec],
                    conditions: dict[str, ConditionInfo], *, work: Path, config: FederatedConfig = FederatedConfig(),
                    progress: Callable[[int, int, float], None] | None = None) -> FederatedResult:
    """Train the diagnosis engine across `site_patients` (one list per site): each site's patients are
    written to its own folder under `work` and read only by that site's process; the server here sees
    updates and sums. `progress(iteration, most iterations, objective per training patient)` after each
    L-BFGS iteration. Returns the
    engine (assembled as DiagnosisEngine.train's) and its metrics."""
    layout = Layout(specs, conditions)
    address = f"127.0.0.1:{free_port()}"
    strategy = DiagnosisFederation(layout, sites=len(site_patients))
    server = Server(client_manager=SimpleClientManager(), strategy=strategy)
    grpc_server = start_grpc_server(client_manager=server.client_manager(), server_address=address)
    processes, data_hashes, rounds = [], [], [0]
    try:
        for index, patients in enumerate(site_patients):
            folder = work / f"site-{index + 1}"
            folder.mkdir(parents=True, exist_ok=True)
            write_patients(folder / "patients.csv", patients)
            data_hashes.append(hashlib.sha256((folder / "patients.csv").read_bytes()).hexdigest())
            write_knowledge(folder / "knowledge.json", specs, conditions)
            (folder / "site.json").write_text(json.dumps({"name": folder.name, "seed": config.seed + index,
                                                          "sites": len(site_patients),
                                                          "regularisation": config.regularisation}))
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "apps.medical.federated", "site", "--server", address, "--data", str(folder)],
                cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
                stderr=(folder / "site.log").open("w")))
        if not server.client_manager().wait_for(len(site_patients), timeout=SITE_CONNECT_TIMEOUT_S):
            raise RuntimeError(f"the sites did not connect within {SITE_CONNECT_TIMEOUT_S:.0f} s")
        started = time.perf_counter()

        def fit_round(phase: str, arrays: list[np.ndarray]) -> list[np.ndarray]:
            rounds[0] += 1
            strategy.phase, server.parameters = phase, ndarrays_to_parameters(arrays)
            aggregated, _, _ = server.fit_round(server_round=rounds[0], timeout=ROUND_TIMEOUT_S)
            return parameters_to_ndarrays(aggregated)

        statistics = fit_round("statistics", [])
        fit_patients = sum(u["patients"] for u in strategy.received.updates if u["round"] == 1)

        def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
            losses, *gradient = fit_round("gradient", layout.unflatten(flat))
            return float(losses.sum()), layout.flatten(gradient)

        iterations = [0]

        def iterated(intermediate_result) -> None:  # after each L-BFGS iteration (one round or a few)
            iterations[0] += 1
            if progress is not None:
                progress(iterations[0], config.iterations, float(intermediate_result.fun) / max(fit_patients, 1))

        start = np.zeros(sum(int(np.prod(shape)) for shape in layout.weights))
        solution = minimize(objective, start, jac=True, method="L-BFGS-B", callback=iterated,
                            options={"maxiter": config.iterations})
        weights = layout.unflatten(solution.x)
        answer_model = _answer_model(layout, statistics, fit_patients, conditions)
        server.parameters = ndarrays_to_parameters([*weights, answer_model.log_rates, answer_model.log_prior])
        strategy.evaluate_config = {"phase": "calibrate"}
        server.evaluate_round(server_round=rounds[0] + 1, timeout=ROUND_TIMEOUT_S)
        grid = range(len(TEMPERATURES))
        nll = np.array([[strategy.evaluated[f"nll_{j}_{k}"] for k in grid] for j in range(len(BLEND_WEIGHTS))])
        best_blend, best_temperature = np.unravel_index(int(np.argmin(nll)), nll.shape)
        blend, temperature = BLEND_WEIGHTS[best_blend], TEMPERATURES[best_temperature]
        d_temperature = TEMPERATURES[int(np.argmin([strategy.evaluated[f"differential_nll_{k}"] for k in grid]))]
        strategy.evaluate_config = {"phase": "final", "temperature": temperature, "blend": blend,
                                    "differential_temperature": d_temperature}
        server.evaluate_round(server_round=rounds[0] + 2, timeout=ROUND_TIMEOUT_S)
        final = strategy.evaluated
        seconds = time.perf_counter() - started
        server.disconnect_all_clients(timeout=ROUND_TIMEOUT_S)
        for process in processes:
            process.wait(timeout=60)
    finally:
        grpc_server.stop(grace=1)
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    engine, metrics = _assemble(layout, [*weights, *statistics], final, fit_patients, temperature, d_temperature,
                                conditions, answer_model, blend)
    sent = [json.loads((work / f"site-{i + 1}" / "sent.json").read_text()) for i in range(len(site_patients))]
    metrics.update({
        "federated": {"sites": len(site_patients), "rounds": rounds[0], "iterations": int(solution.nit),
                      "converged": bool(solution.success), "alpha": config.alpha, "seed": config.seed,
                      "seconds": round(seconds, 1), "update_bytes": {"statistics": layout.update_bytes("statistics"),
                                                                     "gradient": layout.update_bytes("gradient")},
                      "case_mix": case_mix(site_patients), "received": strategy.received.summary(),
                      "sent": [{"rounds": len(s), "arrays": sum(r["arrays"] for r in s),
                                "bytes": sum(r["bytes"] for r in s)} for s in sent]},
        "data_hash": hashlib.sha256("".join(data_hashes).encode()).hexdigest()})
    return FederatedResult(engine, metrics, strategy.received)


def _answer_counts(layout: Layout, answer_frequency: np.ndarray, fit_patients: int) -> dict:
    """answer_counts' form (code -> value tokens, counts per answer and condition) of the federation's
    answer frequencies (counts / training patients)."""
    counts, row = {}, 0
    for code, values in layout.answer_rows:
        counts[code] = (values, answer_frequency[row:row + len(values) + 1] * fit_patients)
        row += len(values) + 1
    return counts


def _answer_model(layout: Layout, statistics: list[np.ndarray], fit_patients: int,
                  conditions: dict[str, ConditionInfo]) -> AnswerModel:
    """The answer model over all the layout's conditions, from the statistics round (as central training
    builds it from its patients)."""
    class_frequency, _, answer_frequency = statistics
    return AnswerModel.build(layout.space, _answer_counts(layout, answer_frequency, fit_patients),
                             class_frequency * fit_patients, [conditions[name].findings for name in layout.classes])


def _assemble(layout: Layout, parameters: list[np.ndarray], final: dict, fit_patients: int, temperature: float,
              d_temperature: float, conditions: dict[str, ConditionInfo], answer_model: AnswerModel,
              blend: float) -> tuple[DiagnosisEngine, dict]:
    """The engine from the global parameters and the federation's sums, keeping the conditions some
    site had patients of; metrics named as DiagnosisEngine.train's."""
    coef, intercept, d_coef, d_intercept, class_frequency, finding_frequency, answer_frequency = parameters
    keep = np.flatnonzero(class_frequency > 0)
    classes = [layout.classes[i] for i in keep]
    scale = 1.0 / class_frequency[keep]  # frequencies / class frequency = per-condition rates
    rates = finding_frequency[keep] * scale[:, None] * 0.98 + 0.01
    answers, row = {}, 0
    token_counts: dict[str, float] = {}
    total = float(class_frequency.sum())  # 1: the frequencies are over all training patients
    for code, values in layout.answer_rows:
        block = answer_frequency[row:row + len(values) + 1][:, keep]  # (answers + 1, conditions), / patients
        row += len(values) + 1
        share = class_frequency[keep]
        # answer_rates' (seen + 0.5) / (count + 1), seen and count being frequencies x patients
        answers[code] = (values, (block * fit_patients + 0.5) / (share * fit_patients + 1.0))
        for token, frequency in zip(values, block[:-1].sum(axis=1)):
            if split_token(token)[1] is not None:
                token_counts[token] = float(frequency)
    defaults = tuple(sorted(t for t, f in token_counts.items() if f > 0.5 * total))
    ddp = [final[f"ddp_sum_{k}"] / final["patients"] for k in range(len(THRESHOLD_GRID))]
    ddr = [final[f"ddr_sum_{k}"] / final["patients"] for k in range(len(THRESHOLD_GRID))]
    ddf1 = [2 * p * r / (p + r) if p + r else 0.0 for p, r in zip(ddp, ddr)]
    best = int(np.argmax(ddf1))
    ece = sum(abs(final[f"bin_correct_{k}"] - final[f"bin_confidence_{k}"]) for k in range(CALIBRATION_BINS)
              if final[f"bin_count_{k}"]) / final["patients"]
    kept = AnswerModel(answer_model.slots, answer_model.log_rates[keep], answer_model.log_prior[keep])
    engine = DiagnosisEngine(layout.space, classes, coef[keep], intercept[keep], temperature, rates,
                             {name: conditions[name] for name in classes}, (), d_coef[keep], d_intercept[keep],
                             d_temperature, answers, defaults, THRESHOLD_GRID[best], kept, blend)
    metrics = {"patients": fit_patients + int(final["patients"]), "held_out": int(final["patients"]),
               "temperature": round(temperature, 3), "blend": blend,
               "differential_temperature": round(d_temperature, 3), "differential_threshold": THRESHOLD_GRID[best],
               "ddf1": round(ddf1[best], 4), "ddp": round(ddp[best], 4), "ddr": round(ddr[best], 4),
               "top1": round(final["top1_hits"] / final["patients"], 4), "ece": round(float(ece), 4)}
    return engine, metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    site = commands.add_parser("site", help="run one site (started by federated_train)")
    site.add_argument("--server", required=True)
    site.add_argument("--data", type=Path, required=True)
    arguments = parser.parse_args(argv)
    site_main(server=arguments.server, data=arguments.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
