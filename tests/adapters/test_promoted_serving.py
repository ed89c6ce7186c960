"""A promoted adapter on a vLLM-backed model_service: promotion serves it at once with PEFT beside vLLM
and queues its merge; the merge job makes it `merged-vllm`; `make run` (run_suite) loads it merged again
after a restart; retiring it returns its app to the base model."""
import threading

import httpx
import pytest

from apps.accounts.roles import Role
from apps.adapters.models import Adapter
from apps.adapters.services import adapter_merge, adapter_promote, adapter_retire
from apps.core.management.commands.run_suite import Command
from apps.core.model_client import adapter_or_base, get_client
from tests.users import user_fixture
from training.adapter_config import AdapterConfig

TINY = AdapterConfig(lr=2e-2, epochs=2, batch_sequences=8, micro_batch=8, max_length=32)

admin = user_fixture("admin", Role.ADMIN)


@pytest.fixture(autouse=True)
def adapter_settings(settings, tmp_path, tiny_checkpoint):
    settings.SUITE_DATA_DIR = tmp_path / "data"  # inside the folder the session's model_service loads from
    settings.ADAPTER_BASE_CHECKPOINT = str(tiny_checkpoint)


def serving(server) -> dict:
    return httpx.get(server.url + "/health").json()["adapter_serving"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # run_suite's adapter loader reads the database from its own thread
def test_promotion_merges_the_adapter_serves_it_merged_restores_it_on_start_and_retires_it(settings, vllm_server,
                                                                                            tiny_checkpoint):
    from training.adapters import train_adapter

    settings.MODEL_SERVICE_URL = vllm_server.url
    path = settings.SUITE_DATA_DIR / "adapters" / "customer_service" / "v1"
    train_adapter(tiny_checkpoint, [{"prompt": f"Where is order {i}?", "completion": " It ships in 2 days."}
                                    for i in range(16)], path, TINY)
    adapter = Adapter.objects.create(name="customer_service", domain="customer_service", version=1, path=str(path),
                                     metrics={"gate": {"passed": True, "reason": ""}})

    promoted = adapter_promote(adapter=adapter)

    assert (promoted.serving["strategy"], promoted.serving["merge"]) == ("peft-beside", "queued")
    assert serving(vllm_server)["customer_service"]["strategy"] == "peft-beside"

    assert adapter_merge(adapter_id=adapter.id) == {"status": "merged", "loaded": True, "strategy": "merged-vllm"}
    adapter.refresh_from_db()
    assert (adapter.serving["strategy"], adapter.serving["merge"]) == ("merged-vllm", "merged")
    assert serving(vllm_server)["customer_service"]["strategy"] == "merged-vllm"

    get_client().unload_adapter(name="customer_service")  # as after a model_service restart
    loader = threading.Thread(target=Command()._load_promoted_adapters)  # what `make run` starts
    loader.start()
    loader.join(timeout=300)

    assert serving(vllm_server)["customer_service"]["strategy"] == "merged-vllm"
    assert adapter_or_base(get_client(), "customer_service") == "customer_service"

    adapter_retire(adapter=Adapter.objects.get(id=adapter.id))

    assert "customer_service" not in serving(vllm_server)
    assert adapter_or_base(get_client(), "customer_service") is None  # the app falls back to the base model
    assert adapter_merge(adapter_id=adapter.id) == {"status": "skipped", "reason": "adapter is retired"}


@pytest.mark.slow
def test_promotion_on_the_transformers_backend_needs_no_merge(admin, settings, transformers_server, tmp_path,
                                                              tiny_checkpoint):
    from training.adapters import train_adapter

    settings.MODEL_SERVICE_URL = transformers_server.url
    path = settings.SUITE_DATA_DIR / "adapters" / "shop" / "v1"
    train_adapter(tiny_checkpoint, [{"text": "hello there"}] * 8, path, TINY)
    adapter = Adapter.objects.create(name="shop", domain="other", version=1, path=str(path),
                                     metrics={"gate": {"passed": True, "reason": ""}})

    promoted = adapter_promote(adapter=adapter, user=admin).serving
    adapter_retire(adapter=adapter)

    assert (promoted["strategy"], promoted["merge"]) == ("peft", "not needed")
