"""Federated training across three simulated sites (Flower, each site its own process): what crossed to
the server, the activation gate, the job and its API."""
import numpy as np
import pytest

from apps.medical import federated as federated_module
from apps.medical.diagnosis import read_patients
from apps.medical.models import AuditEvent, DiagnosisModel, FederatedJob
from apps.medical.services import (diagnosis_model_gate, federated_job_run, federated_job_start,
                                   federated_model_register)
from benchmarks.diagnosis import knowledge_base
from tests.medical.conftest import DDXPLUS

TINY = 120  # DDXPlus development patients the three sites share
ITERATIONS = 15


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One federated run on TINY patients over three sites (about 25 s: three site processes start)."""
    specs, infos = knowledge_base()
    patients = read_patients(DDXPLUS / "patients_dev.csv")[:TINY]
    config = federated_module.FederatedConfig(sites=3, iterations=ITERATIONS, seed=0)
    sites = federated_module.split_sites(patients, sites=3, alpha=config.alpha, seed=0)
    work = tmp_path_factory.mktemp("federated")
    progress = []
    result = federated_module.federated_train(sites, specs, infos, work=work, config=config,
                                              progress=lambda *args: progress.append(args))
    return {"result": result, "sites": sites, "work": work, "specs": specs, "infos": infos, "progress": progress}


@pytest.mark.slow  # the sites' Flower server and three site processes (tiny_run)
def test_sites_are_disjoint_and_their_case_mixes_differ(tiny_run):
    sites = tiny_run["sites"]

    rows = [{(p.age, p.sex, tuple(p.evidence), p.pathology) for p in site} for site in sites]

    assert sum(len(site) for site in sites) == TINY
    assert len(rows[0] | rows[1] | rows[2]) == sum(len(r) for r in rows)  # no patient at two sites
    assert len({tuple(sorted(m.items())) for m in federated_module.case_mix(sites)}) == 3
    for index, site in enumerate(sites):  # a site's folder holds its own patients and no one else's
        written = read_patients(tiny_run["work"] / f"site-{index + 1}" / "patients.csv")
        assert [(p.age, p.evidence, p.pathology) for p in written] == [(p.age, p.evidence, p.pathology) for p in site]


@pytest.mark.slow  # the sites' Flower server and three site processes (tiny_run)
def test_only_fixed_shape_updates_crossed_and_no_patient_row(tiny_run):
    result, layout = tiny_run["result"], federated_module.Layout(tiny_run["specs"], tiny_run["infos"])
    record = result.metrics["federated"]
    rounds = record["rounds"]

    statistics_bytes, gradient_bytes = layout.update_bytes("statistics"), layout.update_bytes("gradient")
    assert record["update_bytes"] == {"statistics": statistics_bytes, "gradient": gradient_bytes}
    assert [step[:2] for step in tiny_run["progress"]] == [(i, ITERATIONS) for i in range(1, record["iterations"] + 1)]
    assert rounds > record["iterations"]  # the statistics round, then one per objective evaluation (a few per step)
    for site in ("site-1", "site-2", "site-3"):
        received = record["received"][site]
        assert (received["rounds"], received["arrays"], received["bytes"]) == (
            rounds, 3 + 5 * (rounds - 1), statistics_bytes + (rounds - 1) * gradient_bytes)
    # what each site logged it sent is what the server logged it received
    assert record["sent"] == [{key: record["received"][f"site-{i}"][key] for key in ("rounds", "arrays", "bytes")}
                              for i in (1, 2, 3)]
    updates = result.received.updates
    assert len(updates) == 3 * rounds
    assert {tuple(map(tuple, u["shapes"])) for u in updates if u["phase"] == "statistics"} == {layout.statistics}
    assert {tuple(map(tuple, u["shapes"])) for u in updates if u["phase"] == "gradient"} == {layout.gradient}
    assert {(u["phase"], u["metrics"]) for u in updates} == {("statistics", 1), ("gradient", 0)}  # its name
    assert sorted(u["site"] for u in updates if u["phase"] == "statistics") == ["site-1", "site-2", "site-3"]
    assert {site: received["patients"] for site, received in record["received"].items()} == {
        f"site-{i + 1}": len(site) - round(len(site) * 0.2) for i, site in enumerate(tiny_run["sites"])}
    vectors = np.stack([layout.space.vector(p.age, p.sex, p.evidence) for site in tiny_run["sites"] for p in site])
    for arrays in result.received.first + result.received.last:
        for array in arrays:
            rows = array.reshape(-1, array.shape[-1]) if array.ndim > 1 else array[None]
            if rows.shape[1] == vectors.shape[1]:
                assert not (np.abs(rows[:, None, :] - vectors[None, :, :]).max(axis=2) == 0).any()


@pytest.mark.slow  # the sites' Flower server and three site processes (tiny_run)
def test_the_federated_engine_diagnoses(tiny_run):
    result = tiny_run["result"]
    patient = tiny_run["sites"][0][0]

    differential = result.engine.differential(patient.age, patient.sex, patient.evidence)

    assert result.metrics["patients"] == TINY
    assert result.metrics["held_out"] == sum(round(len(site) * 0.2) for site in tiny_run["sites"])
    assert 0.0 < result.metrics["top1"] <= 1.0
    # the conditions some site trained on (a rare one may fall in the sites' held-out patients only)
    assert set(result.engine.classes) <= {p.pathology for site in tiny_run["sites"] for p in site}
    assert result.engine.coef.shape == (len(result.engine.classes), len(result.engine.features.names))
    assert abs(sum(row["probability"] for row in result.engine.differential(
        patient.age, patient.sex, patient.evidence, top=len(result.engine.classes))) - 1.0) < 1e-3
    assert len(differential) == min(10, len(result.engine.classes))
    questions = result.engine.next_questions(patient.age, patient.sex, patient.evidence[:1])
    assert len(questions) == 5 and all(q["evidence"] in result.engine.features.specs for q in questions)


def _active_model(top1: float) -> DiagnosisModel:
    return DiagnosisModel.objects.create(version=1, source="ddxplus", artefact="v1.joblib", data_hash="0" * 64,
                                         patients=2000, metrics={"top1": top1}, active=True)


@pytest.mark.slow  # the sites' Flower server and three site processes (tiny_run)
def test_the_gate_refuses_a_worse_federated_model(db, tiny_run, admin):
    result = tiny_run["result"]
    active = _active_model(round(result.metrics["top1"] + 0.02, 4))

    model = federated_model_register(engine=result.engine, metrics=result.metrics, source="ddxplus", user=admin)
    gate = diagnosis_model_gate(model=model, user=admin)

    assert gate["passed"] is False and gate["compared_with"] == 1
    assert gate["reason"] == (f"held-out top-1 {result.metrics['top1']} is below "
                              f"{round(active.metrics['top1'] - 0.01, 4)} (v1's less 0.01)")
    assert list(DiagnosisModel.objects.filter(active=True).values_list("version", flat=True)) == [1]
    model.refresh_from_db()
    assert (model.version, model.active, model.metrics["gate"]) == (2, False, gate)
    assert list(AuditEvent.objects.filter(model_version=2).values_list("action", flat=True)) == [
        "model.gate", "model.train"]


@pytest.mark.slow  # the sites' Flower server and three site processes (tiny_run)
def test_the_gate_activates_a_federated_model_within_the_tolerance(db, tiny_run, admin):
    result = tiny_run["result"]
    _active_model(round(result.metrics["top1"] + 0.005, 4))

    model = federated_model_register(engine=result.engine, metrics=result.metrics, source="ddxplus", user=admin)
    gate = diagnosis_model_gate(model=model, user=admin)

    assert gate["passed"] is True
    assert list(DiagnosisModel.objects.filter(active=True).values_list("version", flat=True)) == [2]
    assert list(AuditEvent.objects.filter(model_version=2).values_list("action", flat=True)) == [
        "model.activate", "model.gate", "model.train"]


@pytest.fixture
def patients_file(settings):
    folder = settings.SUITE_DATA_DIR / "medical"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.csv").write_text("".join((DDXPLUS / "patients_dev.csv").read_text().splitlines(keepends=True)[:7]))
    return "tiny.csv"


@pytest.mark.slow  # the sites' Flower server and three site processes (tiny_run)
def test_a_job_runs_registers_and_gates_its_model(ddxplus_kb, tiny_run, admin, patients_file, monkeypatch):
    calls = []

    def train(site_patients, specs, conditions, *, work, config, progress):
        calls.append((len(site_patients), config.iterations, len(specs)))
        progress(2, 3, 1.5)
        return tiny_run["result"]

    monkeypatch.setattr(federated_module, "federated_train", train)
    job = federated_job_start(source="ddxplus", patients_file=patients_file, config={"iterations": 7}, user=admin)

    outcome = federated_job_run(job_id=job.id)
    job.refresh_from_db()

    assert calls == [(3, 7, 223)]
    assert outcome == {"status": "succeeded", "model_version": 1, "gate": {
        "passed": True, "compared_with": None, "reason": "no model was active"}}
    assert (job.status, job.progress, job.model.version, job.model.active) == (
        "succeeded", {"iteration": 2, "iterations": 3, "loss": 1.5}, 1, True)
    assert job.metrics["federated"]["received"] == tiny_run["result"].metrics["federated"]["received"]
    assert federated_job_run(job_id=job.id) == {"status": "succeeded"}  # a redelivery does nothing


def test_admins_queue_one_federated_job_at_a_time(ddxplus_kb, client, admin, clinician, patients_file):
    client.force_login(clinician)
    assert client.post("/api/medical/v1/federated-jobs", {"patients_file": patients_file},
                       content_type="application/json").status_code == 403
    client.force_login(admin)

    first = client.post("/api/medical/v1/federated-jobs", {"patients_file": patients_file, "config": {"sites": 3}},
                        content_type="application/json")
    second = client.post("/api/medical/v1/federated-jobs", {"patients_file": patients_file},
                         content_type="application/json")
    bad = client.post("/api/medical/v1/federated-jobs", {"patients_file": "../x.csv"}, content_type="application/json")
    listed = client.get("/api/medical/v1/federated-jobs")

    assert first.status_code == 201 and first.json()["status"] == "queued"
    assert first.json()["config"] == {"sites": 3, "iterations": 300, "alpha": 0.5, "seed": 0, "regularisation": 1.0}
    assert second.status_code == 409 and second.json()["code"] == "busy"
    assert bad.status_code == 422 and bad.json()["field"] == "patients_file"
    assert [row["id"] for row in listed.json()] == [first.json()["id"]]
    assert FederatedJob.objects.count() == 1


def test_a_failed_run_is_recorded_and_leaves_no_copy_of_the_patients(ddxplus_kb, admin, patients_file, settings,
                                                                      monkeypatch):
    def train(site_patients, specs, conditions, *, work, config, progress):
        federated_module.write_patients(work / "site-1" / "patients.csv", site_patients[0])
        raise RuntimeError("the sites did not connect within 120 s")

    monkeypatch.setattr(federated_module, "federated_train", train)
    job = federated_job_start(source="ddxplus", patients_file=patients_file, user=admin)

    outcome = federated_job_run(job_id=job.id)
    job.refresh_from_db()

    assert outcome == {"status": "failed"}
    assert job.status == "failed" and job.error.startswith("the sites did not connect within 120 s\n")
    assert not (settings.SUITE_DATA_DIR / "medical" / "federated" / f"job-{job.id}").exists()
    assert not DiagnosisModel.objects.exists()


def test_the_stale_limit_of_a_running_job_is_a_setting(ddxplus_kb, admin, patients_file, settings, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from apps.medical import tasks

    queued = []
    monkeypatch.setattr(tasks.federated_job_task, "delay", queued.append)
    job = FederatedJob.objects.create(source="ddxplus", patients_file=patients_file, status="running",
                                      heartbeat_at=timezone.now() - timedelta(seconds=120), created_by=admin)

    settings.MEDICAL_FEDERATED_JOB_STALE_S = 600.0
    kept = tasks.federated_jobs_reconcile()
    settings.MEDICAL_FEDERATED_JOB_STALE_S = 60.0
    requeued = tasks.federated_jobs_reconcile()

    assert (kept, requeued, queued) == ([], [job.id], [job.id])
    job.refresh_from_db()
    assert job.status == "queued"
