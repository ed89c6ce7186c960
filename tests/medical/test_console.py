"""The console's case pages go through the same visibility selector as the API."""
import pytest

from apps.medical.models import AuditEvent, CaseShare

PAGES = [("get", "frontend:medical_case"), ("get", "frontend:medical_report"), ("post", "frontend:medical_answer"),
         ("post", "frontend:medical_share")]


def url(name: str, case_id: int) -> str:
    from django.urls import reverse

    return reverse(name, kwargs={"case_id": case_id})


@pytest.mark.parametrize("method,name", PAGES)
def test_another_clinicians_case_is_not_found_on_every_page(client, case, colleague, method, name):
    client.force_login(colleague)

    response = getattr(client, method)(url(name, case.id), {"evidence": "E_91", "answer": "yes", "username": "x"})

    assert response.status_code == 404
    assert AuditEvent.objects.count() == 0


def test_a_shared_case_opens_and_is_listed_for_the_colleague(client, case, clinician, colleague):
    CaseShare.objects.create(case=case, clinician=colleague, shared_by=clinician)
    client.force_login(colleague)

    page = client.get(url("frontend:medical_case", case.id))
    report = client.get(url("frontend:medical_report", case.id))

    assert page.status_code == report.status_code == 200
    assert b'id="break-glass"' not in page.content
    assert b"Share with clinician" not in page.content  # only the creator decides who sees it


def test_the_creator_shares_from_the_case_page(client, case, clinician, colleague):
    client.force_login(clinician)

    response = client.post(url("frontend:medical_share", case.id), {"username": "colleague"}, follow=True)
    refused = client.post(url("frontend:medical_share", case.id), {"username": "nobody"}, follow=True)
    nul = client.post(url("frontend:medical_share", case.id), {"username": "col\x00league"}, follow=True)
    stopped = client.post(url("frontend:medical_share", case.id), {"username": "colleague", "unshare": "1"},
                          follow=True)

    assert f"Case {case.id} is shared with colleague." in response.content.decode()
    assert "no clinician is called &#x27;nobody&#x27;" in refused.content.decode()
    assert (nul.status_code, nul.content) == (400, b"Text may not contain NUL (\\x00) characters.")
    assert f"Case {case.id} is no longer shared with colleague." in stopped.content.decode()
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "case.share", "case.view", "case.view", "case.unshare", "case.view"]


def test_an_admin_breaks_glass_with_a_reason_from_the_console(client, case, admin):
    from django.urls import reverse

    client.force_login(admin)
    without = client.get(url("frontend:medical_case", case.id))
    no_reason = client.post(reverse("frontend:medical_break_glass"), {"case": str(case.id), "reason": " "})
    not_a_number = client.post(reverse("frontend:medical_break_glass"), {"case": "١٢", "reason": "audit"})

    opened = client.post(reverse("frontend:medical_break_glass"), {"case": str(case.id), "reason": "incident review"},
                         follow=True)

    assert without.status_code == 404
    assert no_reason.status_code == not_a_number.status_code == 302
    assert opened.status_code == 200
    assert "stating: “incident review”" in opened.content.decode()
    assert "report/?reason=incident+review" in opened.content.decode()  # the report page is audited with it too
    assert list(AuditEvent.objects.order_by("id").values_list("actor__username", "action", "details")) == [
        ("admin", "case.break_glass", {"reason": "incident review"}), ("admin", "case.view", {})]


def test_a_clinician_cannot_use_the_break_glass_form(client, case, colleague):
    from django.urls import reverse

    client.force_login(colleague)

    response = client.post(reverse("frontend:medical_break_glass"), {"case": str(case.id), "reason": "curious"})

    assert response.status_code == 403


def test_note_proposals_are_chips_to_accept_or_reject_and_only_accepted_ones_are_recorded(client, clinician,
                                                                                          ddxplus_model):
    from django.urls import reverse

    from apps.medical.models import Case

    client.force_login(clinician)
    form = {"age": "58", "sex": "M", "evidence": ["E_66"], "note": "Cough, no fever. Possible pneumonia."}

    read = client.post(reverse("frontend:medical"), {**form, "action": "propose"})

    page = read.content.decode()
    assert read.status_code == 200 and Case.objects.count() == 0  # reading the note records nothing
    assert 'data-token="E_201" data-status="present"' in page and 'data-token="E_91" data-status="absent"' in page
    assert '<input type="checkbox" name="evidence" value="E_201">' in page  # unticked: proposed, not accepted
    assert '<input type="checkbox" name="absent" value="E_91">' in page
    assert '<input type="hidden" name="evidence" value="E_66">' in page and 'value="58"' in page  # the form kept
    chips = page.split('id="note-proposals"')[1].split("</ul>")[0]
    assert chips.count('class="chip proposal') == 2  # "possible pneumonia" is no finding
    assert list(AuditEvent.objects.filter(actor=clinician).values_list("action", flat=True)) == ["api.note_findings"]

    created = client.post(reverse("frontend:medical"), {**form, "absent": ["E_91"]})  # E_91 accepted, E_201 rejected

    case = Case.objects.get()
    assert created.status_code == 302
    assert (case.evidence, case.negatives, case.unknown) == (["E_66"], ["E_91"], [])
