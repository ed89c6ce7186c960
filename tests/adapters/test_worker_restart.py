"""A real Celery worker (Redis, PostgreSQL) is killed in the middle of an adapter job; the worker
started after it resumes the job from its last training checkpoint instead of starting over."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from django.conf import settings

from apps.adapters.models import Adapter, AdapterJob
from apps.adapters.services import dataset_upload, job_start
from model_service.process import REPO
from tests.adapters.test_adapters import chat, jsonl
from tests.core.test_worker_heartbeat import database_url
from training.adapters import AdapterConfig

pytestmark = pytest.mark.slow
STALE_S = 3  # the killed worker's job counts as lost this long after its last heartbeat
LONG_ENOUGH = AdapterConfig(lr=1e-3, epochs=1, batch_sequences=1, micro_batch=1, max_length=48,
                            checkpoint_every_steps=5)  # a step per training example


def start_worker(tmp_path, tiny_checkpoint) -> subprocess.Popen:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.test", DATABASE_URL=database_url(),
               CELERY_BROKER_URL=settings.CELERY_BROKER_URL, SUITE_DATA_DIR=str(tmp_path / "data"),
               ADAPTER_BASE_CHECKPOINT=str(tiny_checkpoint), ADAPTER_JOB_STALE_S=str(STALE_S))
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency", "1",
                             "--hostname", "adapters-test@%h", "--loglevel", "warning"],
                            cwd=REPO, env=env, start_new_session=True)


def wait_for(condition, what: str, worker: subprocess.Popen, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while not condition():
        assert worker.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.2)


@pytest.fixture
def workers(transactional_db):
    from config.celery import app

    app.control.purge()  # jobs queued by earlier tests name rows that no longer exist
    started = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def test_a_job_killed_with_its_worker_resumes_on_the_next_worker(workers, tmp_path, tiny_checkpoint, settings):
    settings.SUITE_DATA_DIR = tmp_path / "data"
    examples = [chat(f"Where is order {i}?", f"Order {i} ships within 2 working days.") for i in range(150)]
    dataset = dataset_upload(name="orders", domain="customer_service", filename="o.jsonl", data=jsonl(examples))
    first = start_worker(tmp_path, tiny_checkpoint)
    workers.append(first)
    job = job_start(dataset=dataset, adapter_name="orders", config=LONG_ENOUGH)
    resume_state = tmp_path / "data" / "adapters" / "orders" / "v1" / "resume" / "state.pt"

    wait_for(lambda: resume_state.exists() and AdapterJob.objects.get(id=job.id).progress.get("step", 0) >= 10,
             "training reached step 10 with a checkpoint", first)
    os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool process die mid-job, unacknowledged
    first.wait(timeout=30)
    saved_step = torch.load(resume_state, weights_only=False)["step"]  # the last checkpoint before the kill
    second = start_worker(tmp_path, tiny_checkpoint)
    workers.append(second)
    wait_for(lambda: AdapterJob.objects.get(id=job.id).status not in ("queued", "running"), "the job finished", second)

    job.refresh_from_db()
    resumed_from = int(re.search(r"resumed from step (\d+)", job.log).group(1))
    training = Adapter.objects.get(id=job.adapter_id).metrics["training"]
    assert (job.status, job.attempts) == ("succeeded", 2)
    assert training["steps"] == len(dataset.train_examples)
    assert resumed_from == saved_step and 10 <= saved_step < training["steps"]
    assert training["resumed_from_step"] == resumed_from
    assert not resume_state.exists()
