"""The console in a real browser (Playwright driving Debian's Chromium)."""
import re

import pytest
from playwright.sync_api import Page, expect

from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.core.services import worker_heartbeat_record

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "browser-pw-123"
NAVIGATION = {  # written out by hand: what each role must see, in order
    "support": ["Customer service", "Status"],
    "developer": ["Code completion", "API tokens", "Status"],
    "clinician": ["Diagnosis assist", "Status"],
    "admin": ["Customer service", "Code completion", "API tokens", "Diagnosis assist", "Adapters", "Users",
              "Status", "Django admin"],
}
ROLES = {"support": Role.SUPPORT_AGENT, "developer": Role.DEVELOPER, "clinician": Role.CLINICIAN,
         "admin": Role.ADMIN}


@pytest.fixture
def accounts(transactional_db):
    return {name: user_create(username=name, password=PASSWORD, role=role) for name, role in ROLES.items()}


def log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(base_url + "/console/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name=f"Welcome, {username}")).to_be_visible()


@pytest.mark.parametrize("username", list(NAVIGATION))
def test_each_role_sees_exactly_its_navigation(page: Page, live_server, accounts, username):
    log_in(page, live_server.url, username)

    expect(page.locator("#main-nav a")).to_have_text(NAVIGATION[username])


def test_a_wrong_password_is_refused_with_a_message(page: Page, live_server, accounts):
    page.goto(live_server.url + "/console/login/")
    page.get_by_label("Username").fill("support")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_text("did not match")).to_be_visible()
    expect(page.locator("#main-nav")).to_have_count(0)


def test_a_forbidden_page_answers_403_in_the_browser(page: Page, live_server, accounts):
    log_in(page, live_server.url, "support")

    response = page.goto(live_server.url + "/console/medical/")

    assert response.status == 403


def test_status_page_shows_model_service_healthy_and_refreshes_workers(page: Page, live_server, accounts,
                                                                       transformers_server, settings):
    settings.MODEL_SERVICE_URL = transformers_server.url
    log_in(page, live_server.url, "clinician")

    page.locator("#main-nav").get_by_role("link", name="Status").click()

    expect(page.locator("#model-service-status [data-state]")).to_have_attribute("data-state", "healthy")
    expect(page.locator("#model-service-status")).to_contain_text("transformers")
    expect(page.locator("#model-service-status")).to_contain_text("random-init")
    expect(page.locator("#worker-status [data-state]")).to_have_attribute("data-state", "no-workers")
    worker_heartbeat_record(hostname="worker@demo")
    # HTMX polls the panel every 5 s: the new worker appears without a reload.
    expect(page.locator('[data-worker="worker@demo"]')).to_have_attribute("data-state", "alive", timeout=15_000)


def test_status_page_says_when_model_service_is_unreachable(page: Page, live_server, accounts):
    log_in(page, live_server.url, "support")

    page.goto(live_server.url + "/console/status/")

    expect(page.locator("#model-service-status [data-state]")).to_have_attribute("data-state", "unreachable")


def test_developer_creates_and_revokes_a_token(page: Page, live_server, accounts):
    log_in(page, live_server.url, "developer")
    page.locator("#main-nav").get_by_role("link", name="API tokens").click()

    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#new-token")).to_have_text(re.compile(r"^moe_"))
    expect(page.get_by_role("cell", name="laptop")).to_be_visible()

    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("Token revoked.")).to_be_visible()
    expect(page.get_by_text("No tokens yet.")).to_be_visible()
