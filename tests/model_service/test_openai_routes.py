"""Every OpenAI route through the official `openai` client, once per backend."""
import math

import httpx
import openai
import pytest

pytestmark = pytest.mark.slow


def client_for(server, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, **kwargs)


def test_models_lists_the_base_model_and_the_embedding_model(any_server, tiny_checkpoint):
    ids = [model.id for model in client_for(any_server).models.list()]

    assert ids == [tiny_checkpoint.name, "all-MiniLM-L6-v2"]


def test_completion_returns_max_tokens_with_usage(any_server, tiny_checkpoint):
    completion = client_for(any_server).completions.create(
        model=tiny_checkpoint.name, prompt="def add(a, b):", max_tokens=6, temperature=0)

    assert completion.object == "text_completion"
    assert completion.model == tiny_checkpoint.name
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 6
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 6


def test_greedy_completion_is_deterministic(any_server, tiny_checkpoint):
    client = client_for(any_server)
    texts = {client.completions.create(model=tiny_checkpoint.name, prompt="import os\n", max_tokens=8,
                                       temperature=0).choices[0].text for _ in range(2)}

    assert len(texts) == 1


def test_seeded_sampling_repeats_and_n_gives_that_many_choices(any_server, tiny_checkpoint):
    client = client_for(any_server)

    def sample():
        return client.completions.create(model=tiny_checkpoint.name, prompt="class ", max_tokens=5,
                                         temperature=1.0, top_p=0.9, seed=7, n=3)

    first, second = sample(), sample()

    assert [c.index for c in first.choices] == [0, 1, 2]
    assert [c.text for c in first.choices] == [c.text for c in second.choices]
    assert first.usage.completion_tokens == 15


def test_completion_logprobs_hold_the_top_alternatives(any_server, tiny_checkpoint):
    completion = client_for(any_server).completions.create(
        model=tiny_checkpoint.name, prompt="for i in", max_tokens=3, temperature=0, logprobs=2)
    logprobs = completion.choices[0].logprobs

    assert len(logprobs.tokens) == 3
    assert "".join(logprobs.tokens) == completion.choices[0].text
    for token, logprob, top in zip(logprobs.tokens, logprobs.token_logprobs, logprobs.top_logprobs):
        assert len(top) == 2
        assert logprob <= 0
        assert math.isclose(max(top.values()), logprob, abs_tol=1e-4)  # greedy: the chosen token is the best


def test_stop_string_ends_the_completion_before_it(any_server, tiny_checkpoint):
    client = client_for(any_server)
    free = client.completions.create(model=tiny_checkpoint.name, prompt="x = ", max_tokens=12, temperature=0)
    stop = free.choices[0].text[3:6]  # a piece of what the model writes anyway

    stopped = client.completions.create(model=tiny_checkpoint.name, prompt="x = ", max_tokens=12,
                                        temperature=0, stop=[stop])

    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].text == free.choices[0].text[:free.choices[0].text.index(stop)]


def test_streamed_completion_equals_the_collected_one(any_server, tiny_checkpoint):
    client = client_for(any_server)
    collected = client.completions.create(model=tiny_checkpoint.name, prompt="while True:", max_tokens=10,
                                          temperature=0)

    chunks = list(client.completions.create(model=tiny_checkpoint.name, prompt="while True:", max_tokens=10,
                                            temperature=0, stream=True))

    assert "".join(chunk.choices[0].text for chunk in chunks) == collected.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(chunk.choices[0].finish_reason is None for chunk in chunks[:-1])


def test_completion_stream_ends_with_done(any_server):
    body = {"prompt": "print(", "max_tokens": 3, "stream": True}
    with httpx.stream("POST", any_server.url + "/v1/completions", json=body, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]

    assert all(event.startswith("data: ") for event in events)
    assert events[-1] == "data: [DONE]"


def test_fill_in_the_middle_uses_the_suffix(any_server, tiny_checkpoint):
    client = client_for(any_server)

    plain = client.completions.create(model=tiny_checkpoint.name, prompt="def f(", max_tokens=4, temperature=0,
                                      logprobs=0)
    fim = client.completions.create(model=tiny_checkpoint.name, prompt="def f(", suffix="):\n    return 1",
                                    max_tokens=4, temperature=0, logprobs=0)

    assert fim.usage.prompt_tokens > plain.usage.prompt_tokens
    assert fim.choices[0].logprobs.token_logprobs != plain.choices[0].logprobs.token_logprobs


def test_chat_completion_applies_the_chat_template(any_server, tiny_checkpoint):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    expected_prompt = len(tiny_checkpoint_tokenizer(tiny_checkpoint).apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=False))

    chat = client_for(any_server).chat.completions.create(model=tiny_checkpoint.name, messages=messages,
                                                          max_tokens=5, temperature=0)

    assert chat.object == "chat.completion"
    assert chat.choices[0].message.role == "assistant"
    assert chat.usage.prompt_tokens == expected_prompt
    assert chat.usage.completion_tokens == 5


def test_chat_stream_sends_role_first_then_content_then_usage(any_server, tiny_checkpoint):
    client = client_for(any_server)
    messages = [{"role": "user", "content": "Where is my order?"}]
    collected = client.chat.completions.create(model=tiny_checkpoint.name, messages=messages, max_tokens=6,
                                               temperature=0)

    chunks = list(client.chat.completions.create(model=tiny_checkpoint.name, messages=messages, max_tokens=6,
                                                 temperature=0, stream=True,
                                                 stream_options={"include_usage": True}))

    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert content == collected.choices[0].message.content
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 6


def test_chat_logprobs(any_server, tiny_checkpoint):
    chat = client_for(any_server).chat.completions.create(
        model=tiny_checkpoint.name, messages=[{"role": "user", "content": "hi"}], max_tokens=3, temperature=0,
        logprobs=True, top_logprobs=3)
    content = chat.choices[0].logprobs.content

    assert len(content) == 3
    assert all(len(item.top_logprobs) == 3 for item in content)


def test_embeddings_are_unit_vectors_that_rank_paraphrases_first(any_server):
    texts = ["Where is my parcel?", "Has my package shipped yet?", "How do I reset my password?"]

    result = client_for(any_server).embeddings.create(model="all-MiniLM-L6-v2", input=texts)
    vectors = [item.embedding for item in result.data]

    def cosine(a, b):
        return sum(x * y for x, y in zip(a, b))

    assert [item.index for item in result.data] == [0, 1, 2]
    assert all(len(v) == 384 for v in vectors)
    assert all(math.isclose(cosine(v, v), 1.0, abs_tol=1e-4) for v in vectors)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])
    assert result.usage.prompt_tokens > 0


def tiny_checkpoint_tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def test_embeddings_as_base64_decode_to_the_float_vectors(any_server):
    import base64
    import struct

    body = {"input": ["refund my order"], "model": "all-MiniLM-L6-v2"}
    as_floats = httpx.post(any_server.url + "/v1/embeddings", json=body, timeout=60).json()
    as_base64 = httpx.post(any_server.url + "/v1/embeddings", json=dict(body, encoding_format="base64"),
                           timeout=60).json()

    raw = base64.b64decode(as_base64["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    expected = as_floats["data"][0]["embedding"]
    assert len(decoded) == 384
    assert max(abs(a - b) for a, b in zip(decoded, expected)) < 1e-6
