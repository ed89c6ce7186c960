"""The console's federated training page (admins): the form with the API's defaults, the job table with
progress, what each site sent, the gate's verdict and the model, polling while a job runs, and the
refusals as messages. Jobs are queued through the real service; a running or finished job is a row
written here (a real run starts a Flower server and three site processes: tests/medical/test_federated.py)."""
import html
import re

import pytest
from django.urls import reverse

from apps.accounts.roles import Role
from apps.medical import tasks
from apps.medical.models import DiagnosisModel, Evidence, FederatedJob
from frontend.navigation import nav_items_for
from tests.users import user_fixture

admin = user_fixture("admin", Role.ADMIN)
clinician = user_fixture("clinician", Role.CLINICIAN)

PAGE = "frontend:medical_federated"
FORM = {"source": "ddxplus", "patients_file": "tiny.csv", "sites": "3", "iterations": "300", "alpha": "0.5",
        "seed": "0"}  # the form as the page fills it in
SENT = [{"rounds": 17, "arrays": 119, "bytes": 48200}, {"rounds": 17, "arrays": 119, "bytes": 48200},
        {"rounds": 17, "arrays": 119, "bytes": 48200}]
RECEIVED = {"site-1": {"rounds": 17, "arrays": 119, "bytes": 48200, "patients": 40, "metrics_sent": 9},
            "site-2": {"rounds": 17, "arrays": 119, "bytes": 48200, "patients": 31, "metrics_sent": 9},
            "site-3": {"rounds": 17, "arrays": 119, "bytes": 48200, "patients": 25, "metrics_sent": 9}}
GATE_REFUSED = {"passed": False, "compared_with": 1, "top1": 0.9, "active_top1": 0.95,
                "reason": "held-out top-1 0.9 is below 0.94 (v1's less 0.01)"}


@pytest.fixture(autouse=True)
def suite_data_dir(settings, tmp_path):
    settings.SUITE_DATA_DIR = tmp_path / "data"


@pytest.fixture
def knowledge_base(db):
    """One finding of the knowledge base `ddxplus`: enough for a job to name it."""
    return Evidence.objects.create(code="E_91", parent_code="E_91", question_en="Do you have a fever?",
                                   data_type="B", source="ddxplus")


@pytest.fixture
def patients_file(settings):
    folder = settings.SUITE_DATA_DIR / "medical"
    folder.mkdir(parents=True)
    (folder / "tiny.csv").write_text("AGE,DIFFERENTIAL_DIAGNOSIS,SEX,PATHOLOGY,EVIDENCES,INITIAL_EVIDENCE\n")
    return "tiny.csv"


@pytest.fixture
def queued(monkeypatch) -> list:
    """The job ids the start enqueues (the Celery task is not run)."""
    ids = []
    monkeypatch.setattr(tasks.federated_job_task, "delay", ids.append)
    return ids


def text_of(fragment: str) -> str:
    """The text a reader sees in an HTML fragment: tags as a space, runs of white space as one space, none
    before a colon."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment))).strip().replace(" :", ":")


def job_rows(page: str) -> list[list[str]]:
    """The rows of the federated job table, as the text of their cells."""
    body = re.search(r'<table id="federated">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    return [[text_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def flash_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def input_value(page: str, name: str) -> str:
    return re.search(rf'<input name="{name}"[^>]* value="([^"]*)"', page).group(1)


def test_an_admin_sees_the_form_with_the_apis_defaults(client, admin, knowledge_base, patients_file):
    client.force_login(admin)

    response = client.get(reverse(PAGE))

    page = response.content.decode()
    assert response.status_code == 200
    assert {name: input_value(page, name) for name in FORM} == FORM
    assert '<datalist id="patients-files"><option value="tiny.csv"></option></datalist>' in page
    assert '<datalist id="knowledge-bases"><option value="ddxplus"></option></datalist>' in page
    assert job_rows(page) == [["No federated runs yet."]]
    assert "hx-trigger" not in page
    assert re.search(r'<button type="submit">Start federated run</button>', page)


def test_an_admin_starts_a_run_and_the_page_follows_it(client, admin, knowledge_base, patients_file, queued,
                                                       django_capture_on_commit_callbacks):
    client.force_login(admin)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("frontend:medical_federated_start"), {**FORM, "iterations": "25"}, follow=True)

    job = FederatedJob.objects.get()
    page = response.content.decode()
    assert (job.source, job.patients_file, job.status, job.created_by) == ("ddxplus", "tiny.csv", "queued", admin)
    assert job.config == {"sites": 3, "iterations": 25, "alpha": 0.5, "seed": 0, "regularisation": 1.0}
    assert queued == [job.id]
    assert response.redirect_chain == [(reverse(PAGE), 302)]
    assert flash_messages(response) == [f"Federated job {job.id} queued: the page follows its progress."]
    assert job_rows(page) == [[str(job.id), "Queued tiny.csv, 3 sites, by admin", "waiting for a worker", "—", "—",
                               "—", "—", "—"]]
    assert re.search(r'<div id="federated-jobs" hx-get="' + reverse("frontend:medical_federated_jobs")
                     + '" hx-trigger="every 2s" hx-swap="outerHTML">', page)
    assert re.search(r'<button type="submit" disabled>Start federated run</button>', page)


def test_blank_settings_keep_the_apis_defaults(client, admin, knowledge_base, patients_file, queued):
    client.force_login(admin)

    client.post(reverse("frontend:medical_federated_start"), {"patients_file": "tiny.csv", "source": "",
                                                              "sites": " ", "iterations": ""})

    job = FederatedJob.objects.get()
    assert (job.source, job.config) == ("ddxplus", {"sites": 3, "iterations": 300, "alpha": 0.5, "seed": 0,
                                                    "regularisation": 1.0})


def test_a_clinician_is_refused_and_a_visitor_is_sent_to_log_in(client, clinician, knowledge_base, patients_file,
                                                               queued):
    anonymous = [client.get(reverse(PAGE)), client.post(reverse("frontend:medical_federated_start"), FORM)]
    client.force_login(clinician)

    refused = [client.get(reverse(PAGE)), client.get(reverse("frontend:medical_federated_jobs")),
               client.post(reverse("frontend:medical_federated_start"), FORM)]

    assert [response.status_code for response in anonymous] == [302, 302]
    assert all(response.url.startswith(reverse("frontend:login") + "?next=") for response in anonymous)
    assert [response.status_code for response in refused] == [403, 403, 403]
    assert not FederatedJob.objects.exists()
    assert queued == []


def test_a_second_run_while_one_is_queued_shows_the_busy_message(client, admin, knowledge_base, patients_file,
                                                                 queued):
    running = FederatedJob.objects.create(source="ddxplus", patients_file="tiny.csv", status="running",
                                          config={"sites": 3}, created_by=admin)
    client.force_login(admin)

    response = client.post(reverse("frontend:medical_federated_start"), FORM, follow=True)

    assert response.status_code == 200
    assert flash_messages(response) == [
        f"Federated run not started: federated job {running.id} is already running; wait for it to finish."]
    assert list(FederatedJob.objects.values_list("id", flat=True)) == [running.id]
    assert queued == []


@pytest.mark.parametrize("changes,message", [
    ({"patients_file": "../x.csv"}, "Patients file: patients_file is a .csv file name (letters, digits, _ . -), "
                                    "no folder"),
    ({"patients_file": "missing.csv"}, "Patients file: there is no patients file 'missing.csv'"),
    ({"source": "nowhere"}, "Knowledge base: there is no knowledge base 'nowhere'"),
    ({"source": "x" * 33}, "Knowledge base: a knowledge base's name has at most 32 characters"),
    ({"sites": "9"}, "Sites: sites is a number from 2 to 8"),
    ({"iterations": "2.5"}, "Iterations: iterations is a number from 1 to 1000"),
    ({"alpha": "lots"}, "Case-mix alpha: alpha is a number from 0.01 to 100.0"),
    ({"seed": "-1"}, "Seed: seed is a number from 0 to 2147483647"),
])
def test_bad_input_is_a_message_naming_the_field(client, admin, knowledge_base, patients_file, queued, changes,
                                                 message):
    client.force_login(admin)

    response = client.post(reverse("frontend:medical_federated_start"), {**FORM, **changes}, follow=True)

    assert response.status_code == 200
    assert flash_messages(response) == [f"Federated run not started — {message}"]
    assert not FederatedJob.objects.exists()


def test_a_running_job_shows_its_progress_and_the_panel_polls_until_it_is_done(client, admin, db):
    job = FederatedJob.objects.create(source="ddxplus", patients_file="tiny.csv", status="running",
                                      config={"sites": 3, "iterations": 300},
                                      progress={"iteration": 12, "iterations": 300, "loss": 1.23456},
                                      created_by=admin)
    model = DiagnosisModel.objects.create(version=2, source="ddxplus", artefact="v2.joblib", data_hash="0" * 64,
                                          patients=96, metrics={"top1": 0.9, "gate": GATE_REFUSED})
    client.force_login(admin)
    url = reverse("frontend:medical_federated_jobs")

    while_running = client.get(url)
    FederatedJob.objects.filter(id=job.id).update(status="succeeded", model=model, metrics={
        "top1": 0.9, "federated": {"sites": 3, "rounds": 17, "iterations": 14, "converged": True, "sent": SENT,
                                   "received": RECEIVED}, "gate": GATE_REFUSED})
    once_done = client.get(url)

    assert "HX-Refresh" not in while_running.headers
    assert 'hx-trigger="every 2s"' in while_running.content.decode()
    assert job_rows(while_running.content.decode()) == [
        [str(job.id), "Running tiny.csv, 3 sites, by admin", "12/300, loss 1.2346", "—", "—", "—", "—", "—"]]
    assert once_done.headers["HX-Refresh"] == "true"
    assert "hx-trigger" not in once_done.content.decode()
    assert job_rows(once_done.content.decode()) == [[
        str(job.id), "Succeeded tiny.csv, 3 sites, by admin", "12/300, loss 1.2346", "17 (14 iterations)",
        "site-1 (40 patients): 17 updates, 119 arrays, 48200 bytes, 9 metric sums "
        "site-2 (31 patients): 17 updates, 119 arrays, 48200 bytes, 9 metric sums "
        "site-3 (25 patients): 17 updates, 119 arrays, 48200 bytes, 9 metric sums",
        "0.900", "refused: held-out top-1 0.9 is below 0.94 (v1's less 0.01)", "v2 (not active)"]]


def test_a_failed_job_shows_why(client, admin, db):
    job = FederatedJob.objects.create(source="ddxplus", patients_file="tiny.csv", status="failed",
                                      config={"sites": 3}, error="the sites did not connect within 120 s\nTraceback")
    client.force_login(admin)

    page = client.get(reverse(PAGE)).content.decode()

    assert job_rows(page) == [[str(job.id), "Failed tiny.csv, 3 sites, by —", "—", "—", "—", "—",
                               "failed: the sites did not connect within 120 s Traceback", "—"]]


def test_only_admins_have_the_link_in_the_medical_navigation(client, admin, clinician):
    pages = {}
    for user in (admin, clinician):
        client.force_login(user)
        pages[user.username] = client.get(reverse("frontend:medical")).content.decode()

    link = f'<a href="{reverse(PAGE)}" data-section-nav="medical_federated">Federated training</a>'
    assert link in pages["admin"]
    assert "data-section-nav" not in pages["clinician"]
    assert [item.children for item in nav_items_for(clinician) if item.key == "medical"] == [()]
