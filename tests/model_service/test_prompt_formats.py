"""Prompt formats come from the checkpoint: FIM format detected from the tokenizer's tokens (or named by
--fim-format / fim_format.json), stop tokens from generation_config.json and the tokenizer's EOS."""
import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from model_service.__main__ import config_from_args, parse_args
from model_service.api.app import create_app
from model_service.api.preparation import completion_prompts
from model_service.checkpoint import Checkpoint
from model_service.config import ServiceConfig
from model_service.errors import InvalidRequest
from model_service.protocol import CompletionRequest
from tests.model_service_process import start_model_service

FAMILIES = {
    "fim-pipes": (("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"), "<|eos|>",
                  "<|fim_prefix|>def f(<|fim_suffix|>): pass<|fim_middle|>"),
    "deepseek-coder": (("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"), "<｜end▁of▁sentence｜>",
                       "<｜fim▁begin｜>def f(<｜fim▁hole｜>): pass<｜fim▁end｜>"),
    "starcoder": (("<fim_prefix>", "<fim_suffix>", "<fim_middle>"), "<|endoftext|>",
                  "<fim_prefix>def f(<fim_suffix>): pass<fim_middle>"),
    "codellama": (("▁<PRE>", "▁<SUF>", "▁<MID>"), "</s>", "<PRE> def f( <SUF>): pass <MID>"),
}
WORDS = ["def", "f", "(", ")", ":", "pass", "<unk>"]


def make_checkpoint(directory, special_tokens, eos, generation_eos=None):
    """A word-level tokenizer holding a family's special tokens, with a minimal config.json."""
    specials = [eos, *special_tokens]
    vocab = {token: i for i, token in enumerate([*specials, *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=eos, unk_token="<unk>",
                                        additional_special_tokens=list(special_tokens))
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(directory)
    (directory / "config.json").write_text(json.dumps({"architectures": ["DeepseekV2ForCausalLM"],
                                                        "max_position_embeddings": 256}))
    if generation_eos is not None:
        (directory / "generation_config.json").write_text(json.dumps({"eos_token_id": generation_eos}))
    return directory


@pytest.mark.parametrize("family", FAMILIES)
def test_the_fim_format_is_detected_from_the_tokenizer(tmp_path, family):
    tokens, eos, expected_prompt = FAMILIES[family]
    checkpoint = Checkpoint.load(make_checkpoint(tmp_path / family, tokens, eos))

    assert checkpoint.fim_format_name == family
    assert checkpoint.fim_format.prompt("def f(", "): pass") == expected_prompt


def test_a_deepseek_fim_prompt_encodes_to_its_special_tokens(tmp_path):
    tokens, eos, _ = FAMILIES["deepseek-coder"]
    checkpoint = Checkpoint.load(make_checkpoint(tmp_path / "ds", tokens, eos))
    vocab = checkpoint.tokenizer.get_vocab()

    ids = checkpoint.encode_fim("def f(", "): pass")

    assert ids[0] == vocab["<｜fim▁begin｜>"] and ids[-1] == vocab["<｜fim▁end｜>"]
    assert vocab["<｜fim▁hole｜>"] in ids


def test_without_fim_tokens_a_suffix_is_refused(tmp_path):
    checkpoint = Checkpoint.load(make_checkpoint(tmp_path / "plain", (), "</s>"))

    assert checkpoint.fim_format is None and checkpoint.fim_format_name == "none"
    with pytest.raises(InvalidRequest) as refused:
        completion_prompts(checkpoint, CompletionRequest(prompt="def f(", suffix="): pass"))
    assert refused.value.param == "suffix"


def test_fim_format_json_overrides_detection_and_the_option_overrides_both(tmp_path):
    tokens, eos, _ = FAMILIES["starcoder"]
    path = make_checkpoint(tmp_path / "sc", tokens, eos)
    (path / "fim_format.json").write_text(json.dumps({"format": "none"}))

    assert Checkpoint.load(path).fim_format is None
    assert Checkpoint.load(path, fim_format="starcoder").fim_format_name == "starcoder"
    with pytest.raises(ValueError, match="unknown FIM format"):
        Checkpoint.load(path, fim_format="nonsense")


def test_the_command_line_names_the_fim_format(tmp_path):
    args = parse_args(["serve", "--checkpoint", str(tmp_path), "--fim-format", "deepseek-coder"])

    assert config_from_args(args).fim_format == "deepseek-coder"
    with pytest.raises(SystemExit):
        parse_args(["serve", "--checkpoint", str(tmp_path), "--fim-format", "nonsense"])


@pytest.mark.parametrize("generation_eos", [[0, 1], 1])
def test_stop_tokens_come_from_generation_config_and_the_tokenizer_eos(tmp_path, generation_eos):
    tokens, eos, _ = FAMILIES["deepseek-coder"]
    checkpoint = Checkpoint.load(make_checkpoint(tmp_path / "ds", tokens, eos, generation_eos=generation_eos))

    assert checkpoint.tokenizer.eos_token_id == 0
    assert checkpoint.stop_token_ids == (0, 1)


def test_a_token_spelled_like_the_demo_end_of_turn_stops_nothing_unless_the_checkpoint_says_so(tmp_path):
    checkpoint = Checkpoint.load(make_checkpoint(tmp_path / "foreign", ("<|end|>",), "</s>"))

    assert checkpoint.tokenizer.convert_tokens_to_ids("<|end|>") == 1
    assert checkpoint.stop_token_ids == (0,)  # only its EOS: no generation_config.json names <|end|>


def test_the_demo_checkpoint_keeps_its_format_and_end_of_turn(tiny_checkpoint):
    checkpoint = Checkpoint.load(tiny_checkpoint)
    vocab = checkpoint.tokenizer.get_vocab()

    assert checkpoint.fim_format_name == "fim-pipes"
    assert vocab["<|end|>"] in checkpoint.stop_token_ids


def test_health_names_the_fim_format(tmp_path):
    tokens, eos, _ = FAMILIES["deepseek-coder"]
    app = create_app(ServiceConfig(checkpoint=tmp_path, embeddings=False))
    app.state.service.checkpoint = Checkpoint.load(make_checkpoint(tmp_path / "ds", tokens, eos))

    async def health():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ms") as client:
            return await client.get("/health")

    with ThreadPoolExecutor(max_workers=1) as pool:  # a loop of its own, as Playwright may hold this one's
        response = pool.submit(asyncio.run, health()).result()

    assert response.json()["checkpoint"]["fim_format"] == "deepseek-coder"


@pytest.mark.slow
def test_a_server_told_no_fim_format_says_so_and_refuses_a_suffix(tiny_checkpoint, server_logs):
    server = start_model_service(tiny_checkpoint, backend="transformers", log_dir=server_logs,
                                 extra_args=("--fim-format", "none"))
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        assert client.models.list().data[0].model_extra["fim_format"] == "none"
        with pytest.raises(openai.BadRequestError) as refused:
            client.completions.create(model=tiny_checkpoint.name, prompt="def f(", suffix="): pass", max_tokens=4)
        assert refused.value.body["param"] == "suffix"
        assert client.completions.create(model=tiny_checkpoint.name, prompt="def f(", max_tokens=4).choices
    finally:
        server.stop()


# --- the DeepSeek families' tokenizers (training/scripts/family_checkpoints.py), without weights -------------
CONVERSATION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}]
RENDERED_CONVERSATIONS = {
    "deepseek-v2-lite-chat":
        "<｜begin▁of▁sentence｜>Be brief.\n\nUser: Hi\n\nAssistant: Hello<｜end▁of▁sentence｜>User: Bye\n\nAssistant:",
    "deepseek-coder-v2-lite-instruct":
        "<｜begin▁of▁sentence｜>Be brief.\n\nUser: Hi\n\nAssistant: Hello<｜end▁of▁sentence｜>User: Bye\n\nAssistant:",
    "deepseek-v3":
        "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi<｜Assistant｜>Hello<｜end▁of▁sentence｜><｜User｜>Bye<｜Assistant｜>",
}


@pytest.fixture(scope="module")
def family_tokenizers(tmp_path_factory):
    """Each family's tokenizer and config.json (no weights), as Checkpoint.load reads them."""
    from training.scripts.family_checkpoints import FAMILIES, family_config, family_tokenizer_build

    paths = {}
    for name, family in FAMILIES.items():
        path = tmp_path_factory.mktemp("family-tokenizers") / name
        tokenizer = family_tokenizer_build(family, path)
        config = family_config(family, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
        (path / "config.json").write_text(json.dumps(config))
        paths[name] = path
    return paths


@pytest.mark.parametrize("family", RENDERED_CONVERSATIONS)
def test_each_family_chat_template_renders_its_documented_format(family_tokenizers, family):
    checkpoint = Checkpoint.load(family_tokenizers[family])

    rendered = checkpoint.tokenizer.decode(checkpoint.encode_chat(CONVERSATION))

    assert rendered == RENDERED_CONVERSATIONS[family]


@pytest.mark.parametrize("family,fim_format", [("deepseek-v2-lite-chat", "none"),
                                               ("deepseek-coder-v2-lite-instruct", "deepseek-coder"),
                                               ("deepseek-v3", "deepseek-coder")])
def test_each_family_gets_its_fim_format_and_stops_at_its_eos(family_tokenizers, family, fim_format):
    checkpoint = Checkpoint.load(family_tokenizers[family])
    tokenizer = checkpoint.tokenizer

    assert checkpoint.fim_format_name == fim_format
    assert tokenizer.eos_token == "<｜end▁of▁sentence｜>" and tokenizer.bos_token == "<｜begin▁of▁sentence｜>"
    assert checkpoint.stop_token_ids == (tokenizer.eos_token_id,)
    assert checkpoint.max_model_len == 163840  # the release's max_position_embeddings


def test_a_family_fim_prompt_is_its_special_tokens_around_the_code(family_tokenizers):
    checkpoint = Checkpoint.load(family_tokenizers["deepseek-coder-v2-lite-instruct"])

    tokens = checkpoint.tokenizer.convert_ids_to_tokens(checkpoint.encode_fim("def f(", "): pass"))

    assert tokens[0] == "<｜fim▁begin｜>" and tokens[-1] == "<｜fim▁end｜>"
    assert checkpoint.tokenizer.decode(checkpoint.encode_fim("def f(", "): pass")) == (
        "<｜fim▁begin｜>def f(<｜fim▁hole｜>): pass<｜fim▁end｜>")


@pytest.mark.parametrize("family", RENDERED_CONVERSATIONS)
def test_a_tokenizer_config_naming_llama_tokenizer_fast_keeps_tokenizer_json(family_tokenizers, family):
    """DeepSeek's tokenizer_config.json names LlamaTokenizerFast over a byte-level BPE tokenizer.json: loading
    must not swap in Llama's own pre-tokenizer."""
    path = family_tokenizers[family]
    code = "def f(x):\n    return  x + 1  # ünïcode\n"

    loaded = Checkpoint.load(path)

    assert json.loads((path / "tokenizer_config.json").read_text())["tokenizer_class"] == "LlamaTokenizerFast"
    assert loaded.encode(code) == Tokenizer.from_file(str(path / "tokenizer.json")).encode(
        code, add_special_tokens=False).ids
    assert loaded.tokenizer.decode(loaded.encode(code)) == code
