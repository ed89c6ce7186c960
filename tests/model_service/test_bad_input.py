"""Bad input gets a 4xx in the OpenAI error shape."""
import httpx
import openai
import pytest

pytestmark = pytest.mark.slow


def post(server, path: str, **kwargs) -> httpx.Response:
    return httpx.post(server.url + path, timeout=60, **kwargs)


def assert_openai_error(response: httpx.Response, status: int, *, param=None, code=None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    assert error["param"] == param
    assert error["code"] == code
    return error


def test_prompt_over_the_context_length_is_rejected(any_server):
    too_long = list(range(10, 10 + 2048))

    response = post(any_server, "/v1/completions", json={"prompt": too_long, "max_tokens": 1})

    error = assert_openai_error(response, 400, param="prompt", code="context_length_exceeded")
    assert "2048" in error["message"]


def test_prompt_plus_max_tokens_over_the_context_length_is_rejected(any_server):
    response = post(any_server, "/v1/completions", json={"prompt": list(range(10, 1010)), "max_tokens": 1100})

    assert_openai_error(response, 400, param="max_tokens", code="context_length_exceeded")


@pytest.mark.parametrize("max_tokens", [0, -3])
def test_max_tokens_below_one_is_rejected(any_server, max_tokens):
    response = post(any_server, "/v1/completions", json={"prompt": "x", "max_tokens": max_tokens})

    assert_openai_error(response, 400, param="max_tokens")


def test_unknown_model_is_not_found(any_server):
    client = openai.OpenAI(base_url=any_server.url + "/v1", api_key="unused", max_retries=0)

    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])

    assert raised.value.body["code"] == "model_not_found"


def test_malformed_json_is_rejected(any_server):
    response = post(any_server, "/v1/chat/completions", content=b'{"messages": [',
                    headers={"content-type": "application/json"})

    error = assert_openai_error(response, 400)
    assert "JSON" in error["message"]


def test_empty_messages_are_rejected(any_server):
    response = post(any_server, "/v1/chat/completions", json={"messages": []})

    assert_openai_error(response, 400, param="messages")


def test_missing_prompt_is_rejected(any_server):
    response = post(any_server, "/v1/completions", json={"max_tokens": 3})

    assert_openai_error(response, 400, param="prompt")


def test_too_many_choices_are_rejected(any_server):
    response = post(any_server, "/v1/completions", json={"prompt": "x", "n": 5})

    assert_openai_error(response, 400, param="n")


def test_several_greedy_choices_are_rejected_naming_n(any_server):
    response = post(any_server, "/v1/completions", json={"prompt": "x", "n": 3, "temperature": 0})

    error = assert_openai_error(response, 400, param="n")
    assert "temperature" in error["message"]


def test_empty_embedding_input_is_rejected(any_server):
    response = post(any_server, "/v1/embeddings", json={"input": []})

    assert_openai_error(response, 400, param="input")


def test_unknown_route_is_a_404_in_the_openai_shape(any_server):
    response = httpx.get(any_server.url + "/v1/nothing-here")

    assert_openai_error(response, 404)


@pytest.mark.parametrize("body, param", [
    ({"prompt": "x", "seed": -1}, "seed"),
    ({"prompt": "x", "seed": 2**64}, "seed"),
    ({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"prompt": [[1, 2], []]}, "prompt"),  # one of several token-id prompts is empty
    ({"prompt": []}, "prompt"),
    ({"prompt": [10**30]}, "prompt"),
])
def test_out_of_range_values_are_rejected_naming_the_parameter(any_server, body, param):
    assert_openai_error(post(any_server, "/v1/completions", json=body), 400, param=param)


@pytest.mark.parametrize("raw, param", [
    (b'{"prompt": "x", "temperature": NaN}', "temperature"),
    (b'{"prompt": "a\\ud800b"}', "prompt"),  # a lone surrogate: no tokenizer takes it
    (b'[1, 2]', None),
])
def test_json_no_model_can_take_is_rejected(any_server, raw, param):
    response = post(any_server, "/v1/completions", content=raw, headers={"content-type": "application/json"})

    assert_openai_error(response, 400, param=param)


def test_chat_content_parts_must_hold_text(any_server):
    messages = [{"role": "user", "content": [{"type": "text", "text": 5}]}]

    response = post(any_server, "/v1/chat/completions", json={"messages": messages})

    assert_openai_error(response, 400, param="messages.0.content.0.text")


def test_a_lone_surrogate_in_chat_or_embeddings_is_rejected(any_server):
    chat = post(any_server, "/v1/chat/completions", content=b'{"messages": [{"role": "user", "content": "\\udfff"}]}',
                headers={"content-type": "application/json"})
    embeddings = post(any_server, "/v1/embeddings", content=b'{"input": ["ok", "\\udfff"]}',
                      headers={"content-type": "application/json"})

    assert_openai_error(chat, 400, param="messages.0.content")
    assert_openai_error(embeddings, 400, param="input.1")


def test_an_adapter_may_not_take_the_base_models_name(any_server, tiny_checkpoint):
    response = post(any_server, "/v1/load_lora_adapter", json={"lora_name": tiny_checkpoint.name, "lora_path": "x"})

    assert_openai_error(response, 400, param="lora_name")


def test_a_wrong_method_is_a_405_in_the_openai_shape(any_server):
    assert_openai_error(httpx.get(any_server.url + "/v1/completions"), 405)


def test_a_body_over_the_default_limit_is_a_413(any_server):
    response = post(any_server, "/v1/embeddings", content=b'{"input": "' + b"x" * (4 * 1024 * 1024) + b'"}',
                    headers={"content-type": "application/json"})

    assert_openai_error(response, 413, code="request_too_large")
