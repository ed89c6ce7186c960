"""vLLM and transformers compute the same next-token distribution for the demo (DeepseekV3) checkpoint;
the tolerances are tests/model_service/parity.py's."""
import pytest

from tests.model_service.parity import assert_backends_agree

pytestmark = pytest.mark.slow


def test_backends_agree_on_the_next_token(vllm_server, transformers_server, tiny_checkpoint):
    import openai

    vllm_client, transformers_client = (openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0)
                                        for s in (vllm_server, transformers_server))
    assert_backends_agree(vllm_client, transformers_client, tiny_checkpoint.name)
