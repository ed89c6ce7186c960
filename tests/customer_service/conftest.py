import json
from pathlib import Path

import pytest

from apps.customer_service.models import EntryEmbedding, KnowledgeBase
from apps.customer_service.services import knowledge_base_create, knowledge_base_import, knowledge_base_reindex
from apps.customer_service.services.knowledge import entry_embedding_texts

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


_demo_vectors: dict[tuple[str, str], bytes] = {}  # (field, text) -> the base embedder's vector, kept across tests


@pytest.fixture
def demo_kb(db, with_model_service) -> KnowledgeBase:
    """The demo FAQ imported and indexed (dense + lexical).

    model_service embeds its 492 texts for the first test only (about 20 s each time on 2 busy cores); later
    tests find those vectors in the embedding cache, as after an unchanged re-import, and the reindex runs
    as ever on them."""
    knowledge_base = knowledge_base_create(name="Larkspur Market FAQ")
    knowledge_base_import(knowledge_base=knowledge_base, filename="faq.json", data=DEMO_FAQ.read_bytes())
    EntryEmbedding.objects.bulk_create(
        EntryEmbedding(entry=entry, model="", field=field, text=text, vector=_demo_vectors[(field, text)])
        for entry in knowledge_base.entries.all() for field, text in entry_embedding_texts(entry)
        if (field, text) in _demo_vectors)
    knowledge_base_reindex(knowledge_base_id=knowledge_base.id)
    _demo_vectors.update({(e.field, e.text): bytes(e.vector)
                          for e in EntryEmbedding.objects.filter(entry__knowledge_base=knowledge_base, model="")})
    knowledge_base.refresh_from_db()
    return knowledge_base
