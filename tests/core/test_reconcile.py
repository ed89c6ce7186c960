"""Lost work is queued again by the reconcile: enqueues that failed while Redis was down, and an
indexing job whose worker was killed (SIGKILL) mid-job. A private redis-server, real Celery workers."""
import shutil
import signal
import subprocess
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.adapters.models import AdapterJob
from apps.codegen.models import Repository, SourceFile
from apps.codegen.services import repository_register_trusted_folder
from apps.codegen.tasks import repositories_reconcile
from apps.core.tasks import jobs_reconcile_task
from apps.customer_service.models import KnowledgeBase
from apps.customer_service.services import entry_create, knowledge_base_create
from config.celery import app
from model_service.ports import free_port
from tests.celery_workers import purge_queue, start_worker, stop_worker

pytestmark = pytest.mark.slow


class RedisServer:
    """A redis-server of this test's own, on a fixed port, that can be stopped and started again."""

    def __init__(self, directory):
        self.port, self.directory, self.process = free_port(), directory, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen([shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
                                        stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout != b"PONG\n":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)


def use_broker(url: str) -> None:
    """Point this process's Celery app at `url`: its connection pools are made again on next use."""
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def private_redis(settings, tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    previous = app.conf.broker_url
    use_broker(server.url)
    settings.CELERY_BROKER_URL = server.url  # for the workers the test starts
    yield server
    use_broker(previous)
    if server.process.poll() is None:
        server.stop()


@pytest.fixture
def workers(transactional_db):
    started = []
    yield started
    for process in started:
        stop_worker(process)


def wait_for(condition, what: str, worker: subprocess.Popen | None = None, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while not condition():
        assert worker is None or worker.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.2)


def code_folder(path, files: int):
    path.mkdir()
    for i in range(files):
        (path / f"module_{i}.py").write_text(f"def function_{i}(x):\n    return x + {i}\n")
    return path


def test_work_enqueued_while_redis_is_down_is_kept_and_queued_again_once_it_is_back(
        private_redis, workers, client, settings, tmp_path, tiny_checkpoint):
    settings.SUITE_DATA_DIR = tmp_path / "data"
    admin = user_create(username="admin", password="pw-admin-1234", role=Role.ADMIN)
    client.force_login(admin)
    dataset = client.post("/api/adapters/v1/datasets", {"name": "d", "domain": "other", "file": SimpleUploadedFile(
        "d.jsonl", b"\n".join(b'{"text": "order %d ships in 2 days"}' % i for i in range(8)))}).json()
    private_redis.stop()

    job = client.post("/api/adapters/v1/jobs", {"dataset": dataset["id"], "adapter_name": "shop", "config": {
        "epochs": 1, "batch_sequences": 8, "micro_batch": 8, "max_length": 32}}, content_type="application/json")
    knowledge_base = knowledge_base_create(name="Shop")
    entry_create(knowledge_base=knowledge_base, question="Do you ship to the UK?", answer="Yes, in 3 days.")
    repository = repository_register_trusted_folder(name="code", folder=code_folder(tmp_path / "code", 3))

    assert job.status_code == 201
    assert AdapterJob.objects.get().status == "queued"
    assert KnowledgeBase.objects.get().index_status == "pending"
    assert Repository.objects.get().status == "pending"

    private_redis.start()
    settings.JOBS_REQUEUE_AFTER_S = 0
    requeued = jobs_reconcile_task()
    worker = start_worker("reconcile-test", SUITE_DATA_DIR=str(tmp_path / "data"),
                          ADAPTER_BASE_CHECKPOINT=str(tiny_checkpoint))
    workers.append(worker)

    assert requeued == {"adapter_jobs": [job.json()["id"]], "repositories": [repository.id],
                        "knowledge_bases": [knowledge_base.id], "retrieval_tunings": [], "federated_jobs": []}
    wait_for(lambda: AdapterJob.objects.get().status not in ("queued", "running")
             and Repository.objects.get().status == "ready" and KnowledgeBase.objects.get().index_status == "ready",
             "the adapter job, the index and the reindex ran", worker)
    assert AdapterJob.objects.get().status == "succeeded"
    assert SourceFile.objects.filter(repository=repository).count() == 3


def test_indexing_killed_with_its_worker_is_finished_by_another_worker_after_the_reconcile(
        workers, settings, tmp_path):
    purge_queue()
    settings.JOBS_REQUEUE_AFTER_S = 2  # as in the workers: a heartbeat every 0.5 s
    files = 3000
    first = start_worker("indexing-a", JOBS_REQUEUE_AFTER_S="2")
    workers.append(first)
    repository = repository_register_trusted_folder(name="big", folder=code_folder(tmp_path / "big", files))

    wait_for(lambda: Repository.objects.filter(id=repository.id, status="indexing", files_done__gt=0).exists(),
             "indexing started", first)
    stop_worker(first, signal.SIGKILL)  # the worker and its pool process die mid-job, unacknowledged
    wait_for(lambda: Repository.objects.get(id=repository.id).status == "indexing" and repositories_reconcile(),
             "the reconcile found the repository lost", timeout=60)
    second = start_worker("indexing-b", JOBS_REQUEUE_AFTER_S="2")
    workers.append(second)
    wait_for(lambda: Repository.objects.get(id=repository.id).status not in ("pending", "indexing"),
             "the second worker indexed the repository", second)

    repository.refresh_from_db()
    assert (repository.status, repository.files_done, repository.index_version) == ("ready", files, 1)
    assert SourceFile.objects.filter(repository=repository).count() == files
