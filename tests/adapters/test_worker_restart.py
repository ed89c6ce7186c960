"""A real Celery worker (Redis, PostgreSQL) is killed in the middle of an adapter job; once its
heartbeat is stale the reconcile queues it again, and the worker started after it resumes the job
from its last training checkpoint instead of starting over."""
import re
import signal
import subprocess
import time
from io import BytesIO

import pytest
import torch
from apps.adapters.models import Adapter, AdapterJob
from apps.adapters.services import dataset_upload, job_start
from apps.adapters.tasks import adapter_jobs_reconcile
from tests.adapters.test_adapters import chat, jsonl
from tests.celery_workers import purge_queue, start_worker, stop_worker
from training.adapter_config import AdapterConfig

pytestmark = pytest.mark.slow
STALE_S = 3  # the killed worker's job counts as lost this long after its last heartbeat
LONG_ENOUGH = AdapterConfig(lr=1e-3, epochs=1, batch_sequences=1, micro_batch=1, max_length=48,
                            checkpoint_every_steps=5)  # a step per training example


def start_adapters_worker(tmp_path, tiny_checkpoint) -> subprocess.Popen:
    return start_worker("adapters-test", SUITE_DATA_DIR=str(tmp_path / "data"),
                        ADAPTER_BASE_CHECKPOINT=str(tiny_checkpoint), ADAPTER_JOB_STALE_S=str(STALE_S))


def wait_for(condition, what: str, worker: subprocess.Popen, timeout: float = 180, alive: bool = True):
    deadline = time.monotonic() + timeout
    while not condition():
        assert not alive or worker.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.2)


@pytest.fixture
def workers(transactional_db):
    purge_queue()
    started = []
    yield started
    for process in started:
        stop_worker(process)


def test_a_job_killed_with_its_worker_resumes_on_the_next_worker(workers, tmp_path, tiny_checkpoint, settings):
    settings.SUITE_DATA_DIR = tmp_path / "data"
    examples = [chat(f"Where is order {i}?", f"Order {i} ships within 2 working days.") for i in range(150)]
    dataset = dataset_upload(name="orders", domain="customer_service", filename="o.jsonl",
                             file=BytesIO(jsonl(examples)))
    first = start_adapters_worker(tmp_path, tiny_checkpoint)
    workers.append(first)
    job = job_start(dataset=dataset, adapter_name="orders", config=LONG_ENOUGH)
    resume_state = tmp_path / "data" / "adapters" / "orders" / "v1" / "resume" / "state.pt"

    wait_for(lambda: resume_state.exists() and AdapterJob.objects.get(id=job.id).progress.get("step", 0) >= 10,
             "training reached step 10 with a checkpoint", first)
    stop_worker(first, signal.SIGKILL)  # the worker and its pool process die mid-job, unacknowledged
    saved_step = torch.load(resume_state, weights_only=False)["step"]  # the last checkpoint before the kill
    settings.ADAPTER_JOB_STALE_S = STALE_S
    wait_for(lambda: adapter_jobs_reconcile() == [job.id], "the reconcile found the job lost", first, alive=False)
    second = start_adapters_worker(tmp_path, tiny_checkpoint)
    workers.append(second)
    wait_for(lambda: AdapterJob.objects.get(id=job.id).status not in ("queued", "running"), "the job finished", second,
             timeout=600)  # training and the evaluation gate on a busy machine

    job.refresh_from_db()
    resumed_from = int(re.search(r"resumed from step (\d+)", job.log).group(1))
    training = Adapter.objects.get(id=job.adapter_id).metrics["training"]
    assert (job.status, job.attempts) == ("succeeded", 2)
    assert training["steps"] == len(dataset.train_examples)
    assert resumed_from == saved_step and 10 <= saved_step < training["steps"]
    assert training["resumed_from_step"] == resumed_from
    assert not resume_state.exists()
