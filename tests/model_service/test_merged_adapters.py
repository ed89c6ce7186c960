"""Promoted adapters at the base model's speed: the adapter merged into the base weights
(training.adapters.merge_adapter) and served by a vLLM engine of its own, its name routed there.

Token agreement: on the prompts below (trained ones and others), the merged checkpoint served by vLLM
in bfloat16 writes exactly the greedy tokens PEFT writes on the transformers backend in float32."""
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch
from safetensors.torch import load_file

from model_service.backends.adapter_hosting import AdapterHosting
from tests.model_service.shop_adapter import MAX_TOKENS, peft_greedy, train_shop_adapter
from training.adapters import merge_adapter

PROMPTS = ["Where is order 3?", "Where is order 11?", "When does my parcel ship?", "def add(a, b):"]


@pytest.fixture(scope="module")
def merged_adapter(tiny_checkpoint, tmp_path_factory):
    """A trained adapter with its merged checkpoint, inside the folder the session's servers load from."""
    out = train_shop_adapter(tiny_checkpoint, tmp_path_factory.mktemp("merged-adapters") / "shop")
    merge_adapter(tiny_checkpoint, out)
    return out


def complete(server, model: str | None, prompt: str) -> str:
    body = {"prompt": prompt, "max_tokens": MAX_TOKENS, "temperature": 0, **({"model": model} if model else {})}
    return httpx.post(server.url + "/v1/completions", json=body, timeout=120).json()["choices"][0]["text"]


def health_answers_during(server, request) -> tuple[httpx.Response, int]:
    """`request()`'s response, and how many /health requests model_service answered while it was running."""
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(request)
        answered = 0
        while not pending.done():
            httpx.get(server.url + "/health", timeout=120)
            answered += not pending.done()
        return pending.result(), answered


def test_the_merged_checkpoint_is_the_bases_format_with_the_adapter_in_its_weights(merged_adapter, tiny_checkpoint):
    merged = merged_adapter / "merged"
    base_weights, merged_weights = load_file(tiny_checkpoint / "model.safetensors"), load_file(merged / "model.safetensors")
    changed = {name for name in base_weights if not torch.equal(base_weights[name], merged_weights[name])}

    assert merged_weights.keys() == base_weights.keys()
    assert {str(tensor.dtype) for tensor in merged_weights.values()} == {"torch.bfloat16"}
    assert changed and all(".self_attn." in name or ".mlp." in name for name in changed)
    assert {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
            "merge.json"} <= {path.name for path in merged.iterdir()}
    assert json.loads((merged / "config.json").read_text()) == json.loads((tiny_checkpoint / "config.json").read_text())


def test_a_merge_of_other_adapter_weights_or_one_linking_out_is_not_served(merged_adapter, tmp_path):
    hosting = AdapterHosting(merged_adapter.parent)
    stale = merged_adapter.parent / "stale"
    stale.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (stale / name).write_bytes((merged_adapter / name).read_bytes())
    (stale / "merged").mkdir()
    for path in (merged_adapter / "merged").iterdir():
        (stale / "merged" / path.name).write_bytes(path.read_bytes())
    record = json.loads((stale / "merged" / "merge.json").read_text())
    (stale / "merged" / "merge.json").write_text(json.dumps({**record, "adapter_fingerprint": "0" * 64}))
    linking = merged_adapter.parent / "linking"
    linking.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (linking / name).write_bytes((merged_adapter / name).read_bytes())
    (linking / "merged").mkdir()
    for path in (merged_adapter / "merged").iterdir():
        (linking / "merged" / path.name).write_bytes(path.read_bytes())
    (tmp_path / "weights.safetensors").write_bytes((linking / "merged" / "model.safetensors").read_bytes())
    (linking / "merged" / "model.safetensors").unlink()
    (linking / "merged" / "model.safetensors").symlink_to(tmp_path / "weights.safetensors")

    assert hosting.merged_folder(hosting.folder("shop")) == ((merged_adapter / "merged").resolve(), "")
    assert hosting.merged_folder(hosting.folder("stale")) == (None, "its merged checkpoint was made from other "
                                                                    "adapter weights")
    assert hosting.merged_folder(hosting.folder("linking")) == (None, "its merged checkpoint links out of the "
                                                                      "adapters folder")


@pytest.mark.slow
def test_a_merged_adapter_serves_peft_s_greedy_output_at_vllm_speed(vllm_server, merged_adapter, tiny_checkpoint):
    base_before = [complete(vllm_server, None, prompt) for prompt in PROMPTS]

    loaded = httpx.post(vllm_server.url + "/v1/load_lora_adapter",
                        json={"lora_name": "shop-merged", "lora_path": str(merged_adapter)}, timeout=300)
    health = httpx.get(vllm_server.url + "/health").json()
    served = [complete(vllm_server, "shop-merged", prompt) for prompt in PROMPTS]

    assert loaded.json()["serving"] == "merged-vllm"
    assert health["adapter_serving"]["shop-merged"]["strategy"] == "merged-vllm"
    assert served == peft_greedy(tiny_checkpoint, merged_adapter, PROMPTS)
    assert served != base_before
    assert [complete(vllm_server, None, prompt) for prompt in PROMPTS] == base_before  # the base engine, unchanged

    unloaded, health_answers = health_answers_during(vllm_server, lambda: httpx.post(
        vllm_server.url + "/v1/unload_lora_adapter", json={"lora_name": "shop-merged"}, timeout=120))
    after = httpx.post(vllm_server.url + "/v1/completions", json={"prompt": "x", "model": "shop-merged"})

    assert unloaded.status_code == 200
    assert health_answers >= 3  # its engine stopped while model_service went on answering
    assert after.status_code == 404
    assert "shop-merged" not in httpx.get(vllm_server.url + "/health").json()["adapter_serving"]
    assert [complete(vllm_server, None, prompt) for prompt in PROMPTS] == base_before
