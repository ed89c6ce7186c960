"""The adapters console page: a job's loss curve and the gate's comparison as small charts, and how
model_service serves each promoted adapter."""
from apps.accounts.roles import Role
from apps.adapters.models import Adapter, AdapterDataset, AdapterJob
from tests.users import user_fixture

admin = user_fixture("admin", Role.ADMIN)


def test_the_page_draws_the_loss_curve_and_gate_and_names_the_serving_strategy(client, admin):
    dataset = AdapterDataset.objects.create(name="d", domain="customer_service", origin="upload:d.jsonl",
                                            content_hash="x")
    AdapterJob.objects.create(dataset=dataset, adapter_name="customer_service", status="running",
                              progress={"step": 3, "total": 4, "loss": 0.5},
                              loss_curve=[[1, 2.0], [2, 1.0], [3, 0.5]])
    Adapter.objects.create(name="customer_service", domain="customer_service", version=1, path="/x", status="promoted",
                           metrics={"base": {"answer_f1": 0.25}, "new": {"answer_f1": 0.5}, "gate": {"passed": True}},
                           serving={"strategy": "merged-vllm", "detail": "merged into the base weights", "merge": "merged"})
    client.force_login(admin)

    page = client.get("/console/adapters/").content.decode()

    assert '<polyline points="3.0,3.0 80.0,25.7 157.0,37.0"' in page  # highest loss at the top
    assert "Training loss over 3 steps: 2.0 to 0.5" in page
    assert '<rect x="45" y="2" width="30.0"' in page and '<rect x="45" y="26" width="60.0"' in page  # no current
    assert 'data-strategy="merged-vllm"' in page and "merged, own vLLM engine" in page
