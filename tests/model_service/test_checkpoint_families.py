"""Checkpoints shaped like DeepSeek-V2-Lite-Chat, DeepSeek-Coder-V2-Lite-Instruct and DeepSeek-V3
(training/scripts/family_checkpoints.py) served by model_service with both backends, through the openai
SDK and through codegen's completion endpoint: the prompt each family's format builds, its EOS, its FIM
format (or a 400 for a suffix where the family has none) and, for DeepseekV2, vLLM-transformers parity.

Each checkpoint was taught two exchanges (CHAT_LESSON, FIM_LESSON) that greedy decoding answers exactly and
then ends with the family's EOS; with the prompt lengths model_service reports, that pins down the prompt
it built. One checkpoint and its two servers live at a time: tests are grouped by family (a module-scoped
parameter), and a family's servers stop before the next family's start.
"""
from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
from transformers import AutoTokenizer

from apps.accounts.roles import Role
from model_service.fim_formats import FORMATS
from tests.model_service.parity import assert_backends_agree
from tests.model_service_process import start_model_service
from tests.users import user_fixture
from training.scripts.family_checkpoints import CHAT_LESSON, FAMILIES, FIM_LESSON, family_checkpoint_build

pytestmark = pytest.mark.slow

BACKENDS = ("vllm", "transformers")
FIM_FAMILIES = [name for name, family in FAMILIES.items() if family.fim_format != "none"]
NO_FIM_FAMILIES = [name for name in FAMILIES if name not in FIM_FAMILIES]
V2_FAMILY = "deepseek-coder-v2-lite-instruct"  # the DeepseekV2 parity checkpoint (V2-Lite-Chat: same weights' shape)
CODEGEN_URL = "/api/codegen/v1/completions"

developer = user_fixture("family-dev", Role.DEVELOPER)


@pytest.fixture(scope="module")
def family(request, tmp_path_factory) -> Path:
    """The checkpoint of the family named by the (indirect) parameter."""
    return family_checkpoint_build(request.param, tmp_path_factory.mktemp("families") / request.param)


@pytest.fixture(scope="module")
def serve(family, server_logs):
    """serve(backend): the family's server on that backend, started on first use, stopped with the family."""
    servers = {}

    def server_for(backend: str):
        if backend not in servers:
            servers[backend] = start_model_service(family, backend=backend, log_dir=server_logs,
                                                   extra_args=("--no-embeddings",))
        return servers[backend]

    yield server_for
    for server in servers.values():
        server.stop()


def sdk(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def expected_fim_prompt(family: Path) -> list[int]:
    """The FIM lesson's prompt in the family's format as its own tokenizer encodes it, after BOS."""
    tokenizer = AutoTokenizer.from_pretrained(family)
    prefix, suffix, _ = FIM_LESSON
    text = FORMATS[FAMILIES[family.name].fim_format].prompt(prefix, suffix)
    return [tokenizer.bos_token_id, *tokenizer.encode(text, add_special_tokens=False)]


def prompt_tokens_served(server) -> float:
    """model_service's count of prompt tokens processed so far (/metrics)."""
    metrics = httpx.get(server.url + "/metrics").text
    return next(float(line.split()[1]) for line in metrics.splitlines()
                if line.startswith("model_service_prompt_tokens_total "))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("family", list(FAMILIES), indirect=True)
def test_health_and_models_name_the_architecture_and_fim_format(family, serve, backend):
    server = serve(backend)

    health = httpx.get(server.url + "/health").json()
    models = sdk(server).models.list().data

    assert health["backend"] == backend
    assert health["checkpoint"]["architecture"] == FAMILIES[family.name].config["architectures"][0]
    assert health["checkpoint"]["fim_format"] == FAMILIES[family.name].fim_format
    assert [(model.id, model.model_extra["fim_format"]) for model in models] == [
        (family.name, FAMILIES[family.name].fim_format)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("family", list(FAMILIES), indirect=True)
def test_chat_is_built_by_the_family_template_and_stops_at_its_eos(family, serve, backend):
    messages, reply = CHAT_LESSON
    template_ids = AutoTokenizer.from_pretrained(family).apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=False)

    completion = sdk(serve(backend)).chat.completions.create(model=family.name, messages=messages, max_tokens=8,
                                                             temperature=0)

    assert completion.usage.prompt_tokens == len(template_ids)
    assert completion.choices[0].message.content == reply
    assert completion.choices[0].finish_reason == "stop"  # the EOS, long before max_tokens


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("family", FIM_FAMILIES, indirect=True)
def test_a_suffix_is_filled_in_the_family_fim_format(family, serve, backend):
    prefix, suffix, middle = FIM_LESSON

    completion = sdk(serve(backend)).completions.create(model=family.name, prompt=prefix, suffix=suffix,
                                                        max_tokens=8, temperature=0)

    assert completion.usage.prompt_tokens == len(expected_fim_prompt(family))
    assert completion.choices[0].text == middle
    assert completion.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("family", NO_FIM_FAMILIES, indirect=True)
def test_a_suffix_is_refused_where_the_family_has_no_fim_tokens(family, serve, backend):
    prefix, suffix, _ = FIM_LESSON

    with pytest.raises(openai.BadRequestError) as refused:
        sdk(serve(backend)).completions.create(model=family.name, prompt=prefix, suffix=suffix, max_tokens=8)

    assert refused.value.status_code == 400
    assert refused.value.body["param"] == "suffix"


@pytest.mark.parametrize("family", [V2_FAMILY], indirect=True)
def test_vllm_and_transformers_agree_on_deepseek_v2(family, serve):
    assert_backends_agree(sdk(serve("vllm")), sdk(serve("transformers")), family.name)


def codegen_complete(client, developer, prefix: str, suffix: str):
    """POST a Tabby-shaped completion request (greedy, no repository) with an IDE token of `developer`."""
    from apps.accounts.services import api_token_create

    bearer = f"Bearer {api_token_create(user=developer, name='ide').secret}"
    return client.post(CODEGEN_URL, {"language": "python", "segments": {"prefix": prefix, "suffix": suffix},
                                     "temperature": 0, "debug_options": {"return_prompt": True}},
                       content_type="application/json", HTTP_AUTHORIZATION=bearer)


@pytest.mark.django_db
@pytest.mark.parametrize("family", FIM_FAMILIES, indirect=True)
def test_a_codegen_completion_reaches_model_service_as_the_family_fim_prompt(family, serve, client, settings,
                                                                             developer):
    server = serve("vllm")
    settings.MODEL_SERVICE_URL = server.url
    prefix, suffix, middle = FIM_LESSON
    before = prompt_tokens_served(server)

    response = codegen_complete(client, developer, prefix, suffix)

    assert response.status_code == 200
    assert response.json()["debug_data"]["prompt"] == prefix  # no repository: no cross-file context
    assert response.json()["choices"][0]["text"] == middle
    assert prompt_tokens_served(server) - before == len(expected_fim_prompt(family))


@pytest.mark.django_db
@pytest.mark.parametrize("family", NO_FIM_FAMILIES, indirect=True)
def test_codegen_through_a_family_without_fim_continues_the_text_before_the_cursor(family, serve, client, settings,
                                                                                  developer):
    server = serve("vllm")
    settings.MODEL_SERVICE_URL = server.url
    prefix, suffix, _ = FIM_LESSON
    before = prompt_tokens_served(server)

    response = codegen_complete(client, developer, prefix, suffix)

    assert response.status_code == 200
    assert response.json()["debug_data"]["fill_in_the_middle"] is False
    tokenizer = AutoTokenizer.from_pretrained(family)
    prefix_prompt = [tokenizer.bos_token_id, *tokenizer.encode(prefix, add_special_tokens=False)]
    assert prompt_tokens_served(server) - before == len(prefix_prompt)  # the first try, refused, served nothing
