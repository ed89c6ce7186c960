"""A real Celery worker on Redis reindexes a knowledge base after an import is committed."""
import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings

from apps.customer_service.models import KnowledgeBase
from apps.customer_service.selectors import entry_search
from apps.customer_service.services import knowledge_base_create, knowledge_base_import
from model_service.process import REPO
from tests.core.test_worker_heartbeat import database_url

pytestmark = pytest.mark.slow


@pytest.fixture
def worker(transactional_db, with_model_service, tmp_path):
    from config.celery import app

    app.control.purge()  # jobs queued by earlier tests name rows that no longer exist
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.test", DATABASE_URL=database_url(),
               CELERY_BROKER_URL=settings.CELERY_BROKER_URL, TEST_MODEL_SERVICE_URL=with_model_service.url,
               SUITE_DATA_DIR=str(settings.SUITE_DATA_DIR))
    process = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency", "1",
                                "--hostname", "reindex-test@%h", "--loglevel", "warning"],
                               cwd=REPO, env=env, start_new_session=True)
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def test_an_import_is_indexed_by_the_worker(worker):
    knowledge_base = knowledge_base_create(name="Worker FAQ")
    data = (b"question,answer,phrasings\nWhere is my order?,Check Account > Orders.,Where is my parcel?\n"
            b"How do I pay?,By card or PayPal.,Which payment methods do you take?\n")

    knowledge_base_import(knowledge_base=knowledge_base, filename="faq.csv", data=data)  # commits: the job is queued

    deadline = time.monotonic() + 120
    while KnowledgeBase.objects.get(id=knowledge_base.id).index_status != "ready":
        assert worker.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, "the knowledge base was not indexed within 120 s"
        time.sleep(0.5)
    knowledge_base.refresh_from_db()
    result = entry_search(knowledge_base=knowledge_base, question="what payment options are there", k=2)
    assert (knowledge_base.index_dense, knowledge_base.index_version) == (True, 1)
    assert result.hits[0].entry.question == "How do I pay?"
