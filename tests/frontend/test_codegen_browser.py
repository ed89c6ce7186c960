"""A developer in Chromium: create an API token, then try a completion in the playground."""
import re

import pytest
from playwright.sync_api import Page, expect

from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.codegen.services import repository_index
from apps.codegen.models import Repository
from tests.codegen.conftest import DEMO_REPOSITORY
from tests.frontend.test_console_browser import PASSWORD, log_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def developer(transactional_db):
    return user_create(username="developer", password=PASSWORD, role=Role.DEVELOPER)


def test_token_then_playground_completion_with_context(page: Page, live_server, developer, settings, tmp_path,
                                                       transformers_server):
    settings.MODEL_SERVICE_URL = transformers_server.url
    settings.SUITE_DATA_DIR = tmp_path / "data"
    repository = Repository.objects.create(name="inventory", path=str(DEMO_REPOSITORY), shared=True)  # as the demo
    repository_index(repository_id=repository.id)  # the worker's job
    log_in(page, live_server.url, "developer")

    page.locator("#main-nav").get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("vscode")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#new-token")).to_have_text(re.compile(r"^moe_"))

    page.goto(live_server.url + "/console/codegen/")
    expect(page.locator('#repositories tr[data-status="ready"]')).to_contain_text("inventory")
    page.get_by_role("link", name="Playground").click()
    page.get_by_label("Repository for context").select_option(label="inventory")
    page.get_by_label("File path").fill("inventory/labels.py")
    code = "from inventory.models import format_price\n\n\ndef label(product):\n    return format_price("
    page.get_by_label("Code").fill(code)
    page.get_by_label("Code").press("End")
    page.get_by_role("button", name="Complete at cursor").click()

    expect(page.locator("#pg-summary")).to_have_text(re.compile(r"^(Completion|No completion) \(single line; \d+ context"),
                                                     timeout=60_000)
    expect(page.locator("#pg-debug")).to_contain_text("inventory/models.py")
    expect(page.locator("#pg-debug")).to_contain_text("def format_price(price_cents: int")
