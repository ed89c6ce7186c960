import json
from pathlib import Path

import pytest

from apps.customer_service.models import KnowledgeBase
from apps.customer_service.services import knowledge_base_create, knowledge_base_import, knowledge_base_reindex

DEMO_FAQ = Path("apps/customer_service/demo/faq.json")


@pytest.fixture(autouse=True)
def suite_data_dir(settings, tmp_path):
    settings.SUITE_DATA_DIR = tmp_path / "data"


@pytest.fixture
def with_model_service(settings, transformers_server):
    """model_service (embeddings) for the code under test."""
    settings.MODEL_SERVICE_URL = transformers_server.url
    return transformers_server


@pytest.fixture
def kb(db):
    return knowledge_base_create(name="Shop FAQ")


@pytest.fixture
def demo_faq():
    return json.loads(DEMO_FAQ.read_text())


@pytest.fixture
def demo_kb(db, with_model_service) -> KnowledgeBase:
    """The demo FAQ imported and indexed (dense + lexical)."""
    knowledge_base = knowledge_base_create(name="Larkspur Market FAQ")
    knowledge_base_import(knowledge_base=knowledge_base, filename="faq.json", data=DEMO_FAQ.read_bytes())
    knowledge_base_reindex(knowledge_base_id=knowledge_base.id)
    knowledge_base.refresh_from_db()
    return knowledge_base
