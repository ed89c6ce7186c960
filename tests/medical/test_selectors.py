import pytest

from apps.core.errors import ApplicationError, NotFoundError
from apps.medical.models import AuditEvent, Case, CaseShare
from apps.medical.selectors import case_get_for_user, case_list_for_user


def test_the_creator_and_those_it_is_shared_with_see_a_case(case, clinician, colleague):
    CaseShare.objects.create(case=case, clinician=colleague, shared_by=clinician)

    assert case_get_for_user(user=clinician, case_id=case.id) == case
    assert case_get_for_user(user=colleague, case_id=str(case.id)) == case
    assert AuditEvent.objects.count() == 0  # seeing one's own or a shared case is not break-glass


def test_another_clinician_is_told_the_case_does_not_exist(case, colleague):
    with pytest.raises(NotFoundError) as hidden:
        case_get_for_user(user=colleague, case_id=case.id, reason="curious")
    with pytest.raises(NotFoundError) as unknown:
        case_get_for_user(user=colleague, case_id=case.id + 1000)

    assert (hidden.value.status, hidden.value.message) == (unknown.value.status, unknown.value.message) == (
        404, "No such case.")


@pytest.mark.parametrize("case_id", ["abc", "", "1.5", "-1", "0", " {id}", "{id}\n", "{arabic}", str(2**63), "9" * 40])
def test_ids_that_are_not_case_numbers_are_not_found(case, clinician, case_id):
    arabic = str(case.id).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))

    with pytest.raises(NotFoundError):
        case_get_for_user(user=clinician, case_id=case_id.format(id=case.id, arabic=arabic))


def test_an_admin_needs_a_reason_and_the_access_is_audited(case, admin):
    with pytest.raises(NotFoundError):
        case_get_for_user(user=admin, case_id=case.id)
    with pytest.raises(NotFoundError):
        case_get_for_user(user=admin, case_id=case.id, reason="   ")

    opened = case_get_for_user(user=admin, case_id=case.id, reason=" second opinion requested by the ward ")

    assert opened == case
    assert list(AuditEvent.objects.values_list("actor__username", "action", "case_id", "details")) == [
        ("admin", "case.break_glass", case.id, {"reason": "second opinion requested by the ward"})]


@pytest.mark.parametrize("reason", ["x" * 501, "ward\x00round", "ward\nround"])
def test_a_break_glass_reason_is_one_bounded_line(case, admin, reason):
    with pytest.raises(ApplicationError) as raised:
        case_get_for_user(user=admin, case_id=case.id, reason=reason)

    assert (raised.value.status, raised.value.field) == (422, "reason")
    assert AuditEvent.objects.count() == 0


def test_the_list_holds_own_and_shared_cases_only_even_for_an_admin(case, clinician, colleague, admin):
    theirs = Case.objects.create(clinician=colleague, age=30, sex="M", evidence=[])
    shared = Case.objects.create(clinician=colleague, age=40, sex="M", evidence=[])
    CaseShare.objects.create(case=shared, clinician=clinician, shared_by=colleague)

    assert set(case_list_for_user(user=clinician)) == {case, shared}
    assert set(case_list_for_user(user=colleague)) == {theirs, shared}
    assert list(case_list_for_user(user=admin)) == []
