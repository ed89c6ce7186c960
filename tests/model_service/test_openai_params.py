"""The OpenAI parameters model_service implements, through the official `openai` client against real
servers, and the 400s (naming the parameter) for those it does not."""
import json

import httpx
import jsonschema
import openai
import pytest

from model_service.api.preparation import chat_prompts
from model_service.checkpoint import Checkpoint
from model_service.errors import InvalidRequest
from model_service.protocol import ChatCompletionRequest
from tests.model_service.test_adapters import adapter_dir  # noqa: F401 - a trained LoRA adapter (fixture)
from tests.model_service.test_service_limits import engine_idle, metric, wait_until

ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string", "enum": ["yes", "no"]},
                   "count": {"type": "integer", "enum": [1, 2, 3]}},
    "required": ["answer", "count"],
    "additionalProperties": False,
}
AS_IDS = {"return_tokens_as_token_ids": True}  # logprob tokens named "token_id:<id>"
MODEL = "tiny-random"  # the session checkpoint's folder name (tests/conftest.py)


def client_for(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def generated_ids(completion, choice: int = 0) -> list[int]:
    return [int(token.removeprefix("token_id:")) for token in completion.choices[choice].logprobs.tokens]


def complete(server, **params):
    return client_for(server).completions.create(**{"model": MODEL, "prompt": "def add(a, b):", "max_tokens": 6,
                                                     "temperature": 0, **params})


def chat(server, **params):
    return client_for(server).chat.completions.create(model=MODEL, **params)


def greedy_ids(server, prompt, max_tokens: int = 6) -> list[int]:
    return generated_ids(complete(server, prompt=prompt, max_tokens=max_tokens, logprobs=0, extra_body=AS_IDS))


def refusal(raised) -> dict:
    return raised.value.body


# --- structured outputs (vLLM) ---------------------------------------------------------------------

@pytest.mark.slow
def test_json_schema_output_parses_and_validates_against_the_schema(vllm_server):
    answer = chat(vllm_server, messages=[{"role": "user", "content": "Is it ready? Answer in JSON."}], max_tokens=40,
                  temperature=0,
                  response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA}})

    jsonschema.validate(json.loads(answer.choices[0].message.content), ANSWER_SCHEMA)
    assert answer.choices[0].finish_reason == "stop"


@pytest.mark.slow
def test_json_schema_is_followed_when_sampling_and_streaming(vllm_server):
    chunks = client_for(vllm_server).completions.create(
        model=MODEL, prompt="{", max_tokens=40, temperature=1.0, seed=11, n=3, stream=True,
        extra_body={"response_format": {"type": "json_schema",
                                        "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA}}})
    texts = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text

    assert sorted(texts) == [0, 1, 2]
    for text in texts.values():
        jsonschema.validate(json.loads(text), ANSWER_SCHEMA)


@pytest.mark.slow
def test_json_object_output_is_a_json_object(vllm_server):
    answer = chat(vllm_server, messages=[{"role": "user", "content": "Reply in JSON."}], max_tokens=40, temperature=0,
                  response_format={"type": "json_object"})

    assert isinstance(json.loads(answer.choices[0].message.content), dict)


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True])
def test_a_schema_the_engine_cannot_compile_is_a_400_naming_response_format(vllm_server, stream):
    with pytest.raises(openai.BadRequestError) as raised:
        chat(vllm_server, messages=[{"role": "user", "content": "hi"}], max_tokens=4, stream=stream,
             response_format={"type": "json_schema",
                              "json_schema": {"name": "bad", "schema": {"type": "no-such-type"}}})

    assert refusal(raised)["param"] == "response_format"


@pytest.mark.slow
@pytest.mark.parametrize("response_format", [
    {"type": "json_object"},
    {"type": "json_schema", "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA}},
])
def test_json_output_on_the_transformers_backend_is_a_400_naming_the_backend(transformers_server, response_format):
    with pytest.raises(openai.BadRequestError) as raised:
        chat(transformers_server, messages=[{"role": "user", "content": "hi"}], max_tokens=4,
             response_format=response_format)

    assert refusal(raised)["param"] == "response_format"
    assert "transformers backend" in refusal(raised)["message"]


@pytest.mark.slow
def test_response_format_text_changes_nothing(any_server):
    messages = [{"role": "user", "content": "hello"}]
    plain = chat(any_server, messages=messages, max_tokens=6, temperature=0)

    text = chat(any_server, messages=messages, max_tokens=6, temperature=0, response_format={"type": "text"})

    assert text.choices[0].message.content == plain.choices[0].message.content


# --- sampling parameters (both backends) ------------------------------------------------------------

def chose_a_most_likely_token(completion) -> list[bool]:
    """Per generated token: whether it was as likely as the best one (ties happen in bfloat16)."""
    logprobs = completion.choices[0].logprobs
    return [chosen == max(top.values()) for chosen, top in zip(logprobs.token_logprobs, logprobs.top_logprobs)]


@pytest.mark.slow
@pytest.mark.parametrize("narrowing", [{"top_k": 1}, {"min_p": 1.0}])
def test_top_k_1_and_min_p_1_sample_only_the_most_likely_token(any_server, narrowing):
    sampled = {"prompt": "import os\n", "max_tokens": 12, "temperature": 1.0, "seed": 3, "logprobs": 1}
    free = complete(any_server, **sampled)

    narrowed = complete(any_server, **sampled, extra_body=narrowing)

    assert not all(chose_a_most_likely_token(free))
    assert all(chose_a_most_likely_token(narrowed))


@pytest.mark.slow
def test_a_vanishing_temperature_samples_instead_of_failing(any_server):
    completion = complete(any_server, temperature=5e-324, seed=1)  # found by fuzzing: logits / t overflowed

    assert completion.usage.completion_tokens == 6


@pytest.mark.slow
def test_top_k_1_equals_greedy_where_logits_do_not_tie(transformers_server):
    greedy = complete(transformers_server, max_tokens=10)  # float32 logits

    sampled = complete(transformers_server, max_tokens=10, temperature=1.0, seed=3, extra_body={"top_k": 1})

    assert sampled.choices[0].text == greedy.choices[0].text


@pytest.mark.slow
def test_logit_bias_plus_100_forces_the_token(any_server, tiny_checkpoint):
    forced = Checkpoint.load(tiny_checkpoint).encode(" x")[0]

    completion = complete(any_server, temperature=1.0, seed=5, logprobs=0, logit_bias={str(forced): 100},
                          extra_body=AS_IDS)

    assert generated_ids(completion) == [forced] * 6


@pytest.mark.slow
def test_logit_bias_minus_100_on_the_greedy_token_changes_it(any_server):
    greedy = greedy_ids(any_server, "import os\n")

    banned = complete(any_server, prompt="import os\n", logprobs=0, logit_bias={str(greedy[0]): -100},
                      extra_body=AS_IDS)

    assert generated_ids(banned)[0] != greedy[0]
    assert greedy[0] not in generated_ids(banned)


# Two tokens boosted far above the rest, the first by one more: without a penalty the first repeats; a
# penalty on tokens already generated lets the second in, exactly as the penalty's definition says.
BOOSTED = {"a": 100, "b": 99}


@pytest.mark.slow
@pytest.mark.parametrize("penalty, expected", [
    ({}, "aaaaaa"),
    ({"presence_penalty": 2.0}, "abaaaa"),  # a loses 2 once it appeared: b (99) > a (98) > b again (97)
    ({"frequency_penalty": 2.0}, "ababab"),  # each occurrence costs 2: they take turns
    ({"repetition_penalty": 1.2}, "abaaaa"),  # both seen: 100/1.2 > 99/1.2
])
def test_penalties_change_the_output_as_defined(any_server, tiny_checkpoint, penalty, expected):
    checkpoint = Checkpoint.load(tiny_checkpoint)
    ids = {name: checkpoint.encode(" " + name)[0] for name in BOOSTED}
    prompt = [token for token in checkpoint.encode("def f(x):\n    return x") if token not in ids.values()]

    completion = complete(any_server, prompt=prompt, logprobs=0, extra_body=dict(AS_IDS, **penalty),
                          logit_bias={str(ids[name]): bias for name, bias in BOOSTED.items()})

    assert generated_ids(completion) == [ids[name] for name in expected]


# --- several prompts, echo ----------------------------------------------------------------------------

PROMPTS = ["def f(", "import os\n", "class A:"]


@pytest.mark.slow
def test_a_list_of_prompts_gives_one_choice_per_prompt_in_order(any_server):
    singles = [complete(any_server, prompt=prompt) for prompt in PROMPTS]

    batch = complete(any_server, prompt=PROMPTS)

    assert [choice.index for choice in batch.choices] == [0, 1, 2]
    assert [choice.text for choice in batch.choices] == [single.choices[0].text for single in singles]
    assert batch.usage.prompt_tokens == sum(single.usage.prompt_tokens for single in singles)
    assert batch.usage.completion_tokens == 18


@pytest.mark.slow
def test_choices_of_several_prompts_are_numbered_prompt_major(any_server):
    sampled = {"max_tokens": 5, "temperature": 1.0, "seed": 7, "n": 2}
    singles = [complete(any_server, prompt=prompt, **sampled) for prompt in PROMPTS[:2]]

    batch = complete(any_server, prompt=PROMPTS[:2], **sampled)

    assert [choice.index for choice in batch.choices] == [0, 1, 2, 3]
    assert [choice.text for choice in batch.choices] == [c.text for single in singles for c in single.choices]


@pytest.mark.slow
def test_streamed_prompts_equal_the_collected_ones(any_server):
    collected = complete(any_server, prompt=PROMPTS)

    texts = {}
    for chunk in complete(any_server, prompt=PROMPTS, stream=True):
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text

    assert texts == {choice.index: choice.text for choice in collected.choices}


@pytest.mark.slow
def test_token_id_prompts_may_come_in_a_list(any_server):
    singles = [greedy_ids(any_server, prompt) for prompt in ([300, 301, 302], [500, 501])]

    batch = complete(any_server, prompt=[[300, 301, 302], [500, 501]], logprobs=0, extra_body=AS_IDS)

    assert [generated_ids(batch, i) for i in range(2)] == singles


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True])
def test_echo_starts_each_choice_with_its_prompt(any_server, stream):
    plain = complete(any_server, prompt=PROMPTS[:2])

    echoed = complete(any_server, prompt=PROMPTS[:2], echo=True, stream=stream)
    if stream:
        texts = {}
        for chunk in echoed:
            for choice in chunk.choices:
                texts[choice.index] = texts.get(choice.index, "") + choice.text
    else:
        texts = {choice.index: choice.text for choice in echoed.choices}

    assert texts == {i: PROMPTS[i] + plain.choices[i].text for i in range(2)}


@pytest.mark.slow
def test_echo_with_logprobs_scores_each_prompt_token_as_generating_it_would(any_server):
    prompt_ids = [300, 301, 302]
    generated = complete(any_server, prompt=prompt_ids, max_tokens=3, logprobs=0, extra_body=AS_IDS)
    generated_logprobs = generated.choices[0].logprobs.token_logprobs

    scored = complete(any_server, prompt=[prompt_ids + generated_ids(generated)[:2]] * 2, max_tokens=1, logprobs=1,
                      echo=True, extra_body=AS_IDS)

    for choice in scored.choices:
        assert choice.logprobs.tokens[:5] == [f"token_id:{i}" for i in prompt_ids + generated_ids(generated)[:2]]
        assert choice.logprobs.token_logprobs[0] is None  # nothing predicts the first token
        assert choice.logprobs.token_logprobs[3:6] == pytest.approx(generated_logprobs, abs=0.05)
        assert all(len(top) == 1 for top in choice.logprobs.top_logprobs[1:])


@pytest.mark.slow
def test_echoed_logprob_tokens_spell_the_prompt(any_server):
    scored = complete(any_server, prompt="def add(a, b):", max_tokens=1, logprobs=0, echo=True)

    logprobs = scored.choices[0].logprobs
    assert "".join(logprobs.tokens) == scored.choices[0].text
    assert scored.choices[0].text.startswith("def add(a, b):")
    assert logprobs.text_offset[:2] == [0, len(logprobs.tokens[0])]


# --- refusals ---------------------------------------------------------------------------------------------

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
COMPLETION = {"prompt": "x", "max_tokens": 2}


@pytest.mark.slow
@pytest.mark.parametrize("path, body, param", [
    ("/v1/chat/completions", dict(CHAT, tools=[TOOL]), "tools"),
    ("/v1/chat/completions", dict(CHAT, tool_choice="required"), "tool_choice"),
    ("/v1/chat/completions", dict(CHAT, tool_choice={"type": "function", "function": {"name": "lookup"}}),
     "tool_choice"),
    ("/v1/chat/completions", dict(CHAT, parallel_tool_calls=False), "parallel_tool_calls"),
    ("/v1/chat/completions", dict(CHAT, functions=[TOOL["function"]]), "functions"),
    ("/v1/chat/completions", dict(CHAT, function_call={"name": "lookup"}), "function_call"),
    ("/v1/chat/completions", dict(CHAT, modalities=["text", "audio"]), "modalities"),
    ("/v1/chat/completions", dict(CHAT, audio={"voice": "alloy", "format": "wav"}), "audio"),
    ("/v1/chat/completions", dict(CHAT, reasoning_effort="low"), "reasoning_effort"),
    ("/v1/chat/completions", dict(CHAT, prediction={"type": "content", "content": "hi"}), "prediction"),
    ("/v1/chat/completions", dict(CHAT, top_logprobs=6, logprobs=True), "top_logprobs"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.org/a.png"}}]}]}, "messages.0.content.0.type"),
    ("/v1/chat/completions", {"messages": [{"role": "tool", "content": "42"}]}, "messages.0"),
    ("/v1/completions", dict(COMPLETION, best_of=3), "best_of"),
    ("/v1/completions", dict(COMPLETION, logprobs=6), "logprobs"),
    ("/v1/completions", dict(COMPLETION, logit_bias={"4096": 5}), "logit_bias"),
    ("/v1/completions", dict(COMPLETION, logit_bias={"12": 101}), "logit_bias"),
    ("/v1/completions", dict(COMPLETION, logit_bias={"x": 1}), "logit_bias"),
    ("/v1/completions", dict(COMPLETION, presence_penalty=2.5), "presence_penalty"),
    ("/v1/completions", dict(COMPLETION, frequency_penalty=-3), "frequency_penalty"),
    ("/v1/completions", dict(COMPLETION, repetition_penalty=0), "repetition_penalty"),
    ("/v1/completions", dict(COMPLETION, repetition_penalty=5e-324), "repetition_penalty"),  # found by fuzzing
    ("/v1/completions", dict(COMPLETION, top_k=-2), "top_k"),
    ("/v1/completions", dict(COMPLETION, min_p=1.5), "min_p"),
    ("/v1/completions", dict(COMPLETION, prompt=["x"] * 9, n=2), "prompt"),
    ("/v1/completions", dict(COMPLETION, prompt=[]), "prompt"),
    ("/v1/completions", dict(COMPLETION, guided_json={"type": "object"}), "guided_json"),
    ("/v1/embeddings", {"input": "x", "dimensions": 128}, "dimensions"),
    ("/v1/embeddings", {"input": "x", "truncate": True}, "truncate"),
])
def test_what_no_backend_implements_is_a_400_naming_the_parameter(any_server, path, body, param):
    response = httpx.post(any_server.url + path, json=body, timeout=60)

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["type"]) == (param, "invalid_request_error")
    assert error["message"]


@pytest.mark.slow
def test_an_unknown_parameter_is_named_in_openais_words(any_server):
    with pytest.raises(openai.BadRequestError) as raised:
        complete(any_server, prompt="x", max_tokens=2, extra_body={"ignore_eos": True})

    assert refusal(raised)["param"] == "ignore_eos"
    assert refusal(raised)["message"] == "Unrecognized request argument supplied: ignore_eos."


@pytest.mark.slow
def test_metadata_parameters_are_accepted_and_change_nothing(any_server):
    messages = [{"role": "user", "content": "hello"}]
    plain = chat(any_server, messages=messages, max_tokens=6, temperature=0)

    tagged = chat(any_server, messages=messages, max_tokens=6, temperature=0, user="agent-7", metadata={"ticket": "42"},
                  store=False, service_tier="auto", tool_choice="none", modalities=["text"], prompt_cache_key="support",
                  safety_identifier="u-1")

    assert tagged.choices[0].message.content == plain.choices[0].message.content


@pytest.mark.slow
def test_embeddings_at_their_own_dimensions_are_served(any_server):
    result = client_for(any_server).embeddings.create(model="all-MiniLM-L6-v2", input=["refund"], dimensions=384,
                                                      user="agent-7")

    assert len(result.data[0].embedding) == 384


# --- chat roles -----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_developer_message_is_the_templates_system_prompt(any_server):
    def with_instructions_as(role):
        return chat(any_server, max_tokens=6, temperature=0, messages=[
            {"role": role, "content": "Answer briefly."}, {"role": "user", "content": "Where is it?"}])

    developer, system = with_instructions_as("developer"), with_instructions_as("system")

    assert developer.usage.prompt_tokens == system.usage.prompt_tokens
    assert developer.choices[0].message.content == system.choices[0].message.content


@pytest.mark.slow
def test_a_tool_result_is_rendered_by_the_chat_template(any_server, tiny_checkpoint):
    messages = [{"role": "user", "content": "Order 7?"}, {"role": "tool", "content": "shipped", "tool_call_id": "c1"}]
    expected = Checkpoint.load(tiny_checkpoint).tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=False)

    answer = chat(any_server, messages=messages, max_tokens=2, temperature=0)

    assert answer.usage.prompt_tokens == len(expected)


@pytest.mark.slow
@pytest.mark.parametrize("content", [None, ""])
def test_tool_calls_the_template_cannot_render_are_a_400(any_server, content):
    call = {"id": "c1", "type": "function", "function": {"name": "lookup_order", "arguments": "{\"id\": 7}"}}
    messages = [{"role": "user", "content": "Order 7?"},
                {"role": "assistant", "content": content, "tool_calls": [call]},
                {"role": "tool", "content": "shipped", "tool_call_id": "c1"}]

    with pytest.raises(openai.BadRequestError) as raised:
        chat(any_server, messages=messages, max_tokens=2)

    assert refusal(raised)["param"] in ("messages", "messages.1.tool_calls")


# Templates written for user and assistant turns only.
SKIPS_OTHER_ROLES = ("{% for m in messages %}{% if m['role'] in ('user', 'assistant') %}"
                     "{{ m['role'] }}: {{ m['content'] }}\n{% endif %}{% endfor %}assistant:")
REFUSES_OTHER_ROLES = ("{% for m in messages %}{% if m['role'] not in ('user', 'assistant') %}"
                       "{{ raise_exception('roles are user and assistant') }}{% endif %}"
                       "{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:")


def checkpoint_with_template(path, template: str) -> Checkpoint:
    checkpoint = Checkpoint.load(path)
    checkpoint.tokenizer.chat_template = template
    return checkpoint


@pytest.mark.parametrize("message, param", [
    ({"role": "tool", "content": "shipped", "tool_call_id": "c1"}, "messages.1.role"),
    ({"role": "developer", "content": "Be brief."}, "messages.1.role"),
])
def test_a_role_the_template_leaves_out_is_a_400(tiny_checkpoint, message, param):
    checkpoint = checkpoint_with_template(tiny_checkpoint, SKIPS_OTHER_ROLES)
    body = ChatCompletionRequest(messages=[{"role": "user", "content": "Order 7?"}, message])

    with pytest.raises(InvalidRequest) as raised:
        chat_prompts(checkpoint, body)

    assert raised.value.param == param


def test_a_role_the_template_refuses_is_a_400(tiny_checkpoint):
    checkpoint = checkpoint_with_template(tiny_checkpoint, REFUSES_OTHER_ROLES)
    body = ChatCompletionRequest(messages=[{"role": "developer", "content": "Be brief."},
                                           {"role": "user", "content": "Order 7?"}])

    with pytest.raises(InvalidRequest) as raised:
        chat_prompts(checkpoint, body)

    assert raised.value.param == "messages"
    assert "roles are user and assistant" in raised.value.message


@pytest.mark.slow
def test_leaving_a_stream_of_several_prompts_frees_each_of_them_in_the_engine(any_server):
    tokens_before = metric(any_server, "model_service_generation_tokens_total")
    body = {"prompt": ["def main():", "import os\n"], "max_tokens": 1500, "temperature": 0, "stream": True}

    with httpx.stream("POST", any_server.url + "/v1/completions", json=body, timeout=60) as response:
        assert next(response.iter_lines()).startswith("data: ")
    # the client is gone after 1 chunk of 2 × 1500 tokens

    wait_until(lambda: engine_idle(any_server))
    assert metric(any_server, "model_service_generation_tokens_total") - tokens_before < 1500


@pytest.fixture(scope="module")
def deepseek_v3_checkpoint(tmp_path_factory) -> Checkpoint:
    """DeepSeek-V3's tokenizer and chat template (training/scripts/family_checkpoints.py), without weights."""
    from training.scripts.family_checkpoints import FAMILIES, family_config, family_tokenizer_build

    family = FAMILIES["deepseek-v3"]
    path = tmp_path_factory.mktemp("deepseek-v3")
    tokenizer = family_tokenizer_build(family, path)
    config = family_config(family, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    (path / "config.json").write_text(json.dumps(config))
    return Checkpoint.load(path)


def test_deepseek_v3_takes_developer_instructions_as_its_system_prompt(deepseek_v3_checkpoint):
    def prompt(role):
        body = ChatCompletionRequest(messages=[{"role": role, "content": "Be brief."},
                                               {"role": "user", "content": "Hi"}])
        return deepseek_v3_checkpoint.tokenizer.decode(chat_prompts(deepseek_v3_checkpoint, body)[0])

    assert prompt("developer") == prompt("system") == "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi<｜Assistant｜>"


def test_deepseek_v3_template_without_tool_turns_refuses_a_tool_result(deepseek_v3_checkpoint):
    body = ChatCompletionRequest(messages=[{"role": "user", "content": "Order 7?"},
                                           {"role": "tool", "content": "shipped", "tool_call_id": "c1"}])

    with pytest.raises(InvalidRequest) as raised:
        chat_prompts(deepseek_v3_checkpoint, body)

    assert raised.value.param == "messages.1.role"


@pytest.mark.slow
def test_json_output_for_an_adapter_served_beside_vllm_is_a_400_naming_its_backend(vllm_server, adapter_dir):
    loaded = httpx.post(vllm_server.url + "/v1/load_lora_adapter", timeout=120,
                        json={"lora_name": "shop-json", "lora_path": str(adapter_dir)})
    assert loaded.status_code == 200, loaded.text
    try:
        messages = [{"role": "user", "content": "hi"}]
        base = chat(vllm_server, messages=messages, max_tokens=20, response_format={"type": "json_object"})
        with pytest.raises(openai.BadRequestError) as raised:
            client_for(vllm_server).chat.completions.create(model="shop-json", messages=messages, max_tokens=4,
                                                            response_format={"type": "json_object"})
    finally:
        httpx.post(vllm_server.url + "/v1/unload_lora_adapter", json={"lora_name": "shop-json"}, timeout=60)

    assert base.choices[0].message.content.startswith("{")
    assert refusal(raised)["param"] == "response_format"
    assert "transformers backend serving the adapter shop-json" in refusal(raised)["message"]
