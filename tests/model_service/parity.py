"""vLLM and transformers compute the same next-token distribution for the same checkpoint: the check
test_backend_parity.py makes for the demo checkpoint and test_checkpoint_families.py for DeepseekV2.

vLLM computes in bfloat16, the transformers backend in float32 on CPU, so logprobs differ by
rounding: LOGPROB_TOLERANCE per logprob. The top-1 token must agree on every prompt except
near-ties, where the two backends' favourites are within LOGPROB_TOLERANCE of each other in both
distributions (a random-weight model is nearly uniform, so near-ties happen); at most a quarter of
the prompts may be near-ties.
"""
LOGPROB_TOLERANCE = 0.05
PROMPTS = [
    "def fibonacci(n):", "import numpy as np\n", "class Order:", "Where is my parcel?", "for key, value in",
    "The patient reports chest pain", "return sorted(items, key=", "# Refund policy\n", "SELECT * FROM",
    "async def fetch(url):", "Hello, how can I help", "raise ValueError(",
]


def next_token_distribution(client, model: str, prompt: str) -> dict[str, float]:
    completion = client.completions.create(model=model, prompt=prompt, max_tokens=1, temperature=0, logprobs=5,
                                           extra_body={"return_tokens_as_token_ids": True})
    return completion.choices[0].logprobs.top_logprobs[0]


def assert_backends_agree(vllm_client, transformers_client, model: str) -> None:
    near_ties, deviations = 0, []
    for prompt in PROMPTS:
        from_vllm, from_transformers = (next_token_distribution(client, model, prompt)
                                        for client in (vllm_client, transformers_client))
        top_vllm = max(from_vllm, key=from_vllm.get)
        top_transformers = max(from_transformers, key=from_transformers.get)
        if top_vllm != top_transformers:
            near_ties += 1
            for distribution in (from_vllm, from_transformers):
                assert distribution[top_vllm] - distribution[top_transformers] <= LOGPROB_TOLERANCE, prompt
                assert distribution[top_transformers] - distribution[top_vllm] <= LOGPROB_TOLERANCE, prompt
        deviations += [abs(from_vllm[token] - from_transformers[token])
                       for token in from_vllm.keys() & from_transformers.keys()]

    assert near_ties <= len(PROMPTS) // 4
    assert len(deviations) >= 4 * len(PROMPTS)  # the top-5 lists mostly hold the same tokens
    assert max(deviations) <= LOGPROB_TOLERANCE
