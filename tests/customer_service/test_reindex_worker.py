"""A real Celery worker on Redis reindexes a knowledge base after an import is committed."""
import time

import pytest
from django.conf import settings

from apps.customer_service.models import KnowledgeBase
from apps.customer_service.selectors import entry_search
from apps.customer_service.services import knowledge_base_create, knowledge_base_import
from tests.celery_workers import purge_queue, start_worker, stop_worker

pytestmark = pytest.mark.slow


@pytest.fixture
def worker(transactional_db, with_model_service, tmp_path):
    purge_queue()
    process = start_worker("reindex-test", TEST_MODEL_SERVICE_URL=with_model_service.url,
                           SUITE_DATA_DIR=str(settings.SUITE_DATA_DIR))
    yield process
    stop_worker(process)


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
