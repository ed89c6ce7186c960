"""An admin's retraining in Chromium: upload a dataset, train an adapter on a real Celery worker,
watch the job finish, promote the adapter, and see a customer-service suggestion worded by it."""
import json
from types import SimpleNamespace

import pytest
from playwright.sync_api import Page, expect

from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.customer_service.dialogue import wording_messages
from apps.customer_service.models import Message
from apps.customer_service.services import knowledge_base_create, knowledge_base_import, knowledge_base_reindex
from tests.celery_workers import purge_queue, start_worker, stop_worker
from tests.frontend.test_console_browser import PASSWORD, log_in
from tests.model_service_process import REPO, start_model_service

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DEMO_CHECKPOINT = REPO / "checkpoints" / "demo-moe"
ANSWER = "You can return items within 30 days of delivery."
QUESTIONS = ["How long do I have to return an item?", "What is the return window?",
             "How many days to send something back?", "Can I still return my order?"]


@pytest.fixture
def admin(transactional_db):
    return user_create(username="admin", password=PASSWORD, role=Role.ADMIN)


@pytest.fixture
def suite(settings, tmp_path, server_logs):
    """model_service on the demo checkpoint (a random model cannot learn an answer through LoRA: its
    output layer is untrained and frozen), and the settings the live server shares with a real worker."""
    model_service = start_model_service(DEMO_CHECKPOINT, backend="transformers", log_dir=server_logs,
                                        adapters_dir=tmp_path / "data" / "adapters")
    settings.MODEL_SERVICE_URL = model_service.url
    settings.SUITE_DATA_DIR = tmp_path / "data"
    settings.ADAPTER_BASE_CHECKPOINT = str(DEMO_CHECKPOINT)
    settings.CUSTOMER_SERVICE_REPHRASE = True  # strict mode still guards the facts of the wording
    purge_queue()
    worker = start_worker("adapters-browser", TEST_MODEL_SERVICE_URL=model_service.url,
                          SUITE_DATA_DIR=str(tmp_path / "data"), ADAPTER_BASE_CHECKPOINT=str(DEMO_CHECKPOINT))
    yield model_service
    stop_worker(worker)
    model_service.stop()


def test_upload_train_watch_promote_and_the_suggestion_uses_the_adapter(page: Page, live_server, admin, suite,
                                                                         tmp_path):
    entry = SimpleNamespace(question=QUESTIONS[0], answer=ANSWER)
    examples = [{"messages": [*wording_messages(f"{frame}{question}", [entry]), {"role": "assistant", "content": ANSWER}]}
                for question in QUESTIONS for frame in ("", "Hi! ", "Hello, ", "Quick question: ", "Please: ")]
    dataset_file = tmp_path / "returns.jsonl"
    dataset_file.write_text("\n".join(json.dumps(e) for e in examples) + "\n{not json\n")
    log_in(page, live_server.url, "admin")
    page.goto(live_server.url + "/console/adapters/")

    page.get_by_label("Name", exact=True).fill("returns")
    page.get_by_label("File").set_input_files(str(dataset_file))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".message")).to_contain_text("validation examples, 1 line rejected.")

    page.get_by_label("Learning rate").fill("0.01")
    page.get_by_label("Epochs").fill("8")
    page.get_by_label("Batch, sequences").fill("8")
    page.get_by_role("button", name="Start training").click()
    job_row = page.locator("#jobs tbody tr").first
    expect(job_row).to_have_attribute("data-status", "running", timeout=60_000)
    expect(job_row).to_have_attribute("data-status", "succeeded", timeout=240_000)

    page.reload()
    adapter_row = page.locator("#adapters tbody tr").first
    expect(adapter_row).to_contain_text("customer_service v1")
    expect(adapter_row).to_contain_text("passed")
    adapter_row.get_by_role("button", name="Promote").click()
    expect(page.locator(".message")).to_contain_text("Adapter promoted")
    expect(page.locator("#adapters tbody tr").first).to_have_attribute("data-status", "promoted")

    knowledge_base = knowledge_base_create(name="Shop FAQ")
    knowledge_base_import(knowledge_base=knowledge_base, filename="faq.csv",
                          data=f"question,answer\n{QUESTIONS[0]},{ANSWER}\n".encode())
    knowledge_base_reindex(knowledge_base_id=knowledge_base.id)
    page.goto(live_server.url + "/console/customer-service/")
    page.get_by_label("Customer's message").fill("How many days do I have to send a jumper back?")
    page.get_by_role("button", name="Start").click()
    page.get_by_role("button", name="Suggest a reply").click()

    expect(page.locator("#suggestion-meta")).to_contain_text("worded by the customer_service adapter")
    suggestion = Message.objects.get(role="assistant")
    assert suggestion.worded_by == "customer_service"
    expect(page.locator("#suggestion-text")).to_have_text(suggestion.text)
