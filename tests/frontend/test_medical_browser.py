"""A clinician's full case in Chromium: findings from the autocomplete, the differential with red
flags and explanations, a next question answered in place, the handover report."""
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.medical.models import AuditEvent, Case, Evidence
from tests.frontend.test_console_browser import PASSWORD, log_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def clinician(transactional_db, settings, tmp_path):
    settings.SUITE_DATA_DIR = tmp_path / "data"
    call_command("load_demo_medical")
    return user_create(username="clinician", password=PASSWORD, role=Role.CLINICIAN)


def add_finding(page: Page, label: str) -> None:
    page.get_by_label("Add a finding").fill(label)
    page.get_by_role("button", name="Add finding").click()


def test_a_full_case(page: Page, live_server, clinician):
    fever = Evidence.objects.get(code="D_FEVER").question_en
    dyspnea = Evidence.objects.get(code="D_DYSPNEA").question_en
    log_in(page, live_server.url, "clinician")
    page.locator("#main-nav").get_by_role("link", name="Diagnosis assist").click()
    expect(page.get_by_role("note")).to_contain_text("Decision support, not a diagnosis.")

    page.get_by_label("Age").fill("67")
    page.get_by_label("Sex").select_option("M")
    add_finding(page, fever)
    add_finding(page, dyspnea)
    expect(page.locator("#findings li")).to_have_count(2)
    page.get_by_label("Note").fill("Mr. Arthur Dent, phone 020 7946 0958, unwell since yesterday.")
    page.get_by_role("button", name="Compute differential").click()

    expect(page.locator("#differential tbody tr").first).to_be_visible()
    expect(page.locator("#urgency")).to_have_attribute("data-level", re.compile(
        "^(emergency|see a doctor today|routine)$"))
    expect(page.locator(".explanation").first).to_contain_text("For:")
    case = Case.objects.get()
    assert case.note == "[NAME], phone [PHONE], unwell since yesterday."
    assert sorted(case.evidence) == ["D_DYSPNEA", "D_FEVER"]

    first_question = page.locator("#next-questions li").first
    asked = first_question.get_attribute("data-evidence")
    first_question.get_by_role("button", name="Yes").click()
    expect(page.locator(f'#next-questions li[data-evidence="{asked}"]')).to_have_count(0)  # updated in place
    case.refresh_from_db()
    assert asked in case.evidence

    with page.expect_popup() as popup:
        page.get_by_role("link", name="Handover report").click()
    expect(popup.value.get_by_role("heading", name=f"Handover report — case {case.id}")).to_be_visible()
    assert list(AuditEvent.objects.filter(case=case).order_by("id").values_list("action", flat=True)) == [
        "case.create", "diagnosis.compute", "case.view", "case.answer", "diagnosis.compute", "case.report"]


def test_other_roles_cannot_open_the_medical_area(page: Page, live_server, clinician):
    user_create(username="support", password=PASSWORD, role=Role.SUPPORT_AGENT)
    log_in(page, live_server.url, "support")

    response = page.goto(live_server.url + "/console/medical/")

    assert response.status == 403
