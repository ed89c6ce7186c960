"""Repeated failed log-ins lock the account (django-axes), on the console and the Django admin alike."""
from django.core.management import call_command
from django.urls import reverse

PASSWORD = "pw-for-tests-123"  # tests/accounts/conftest.py
LOCKED = "Too many failed log-ins (5 in a row): this account is\n    locked for 15 minutes."


def log_in(client, username: str, password: str, path: str | None = None, address: str = "10.0.0.1"):
    return client.post(path or reverse("frontend:login"), {"username": username, "password": password},
                       REMOTE_ADDR=address)


def test_five_failed_log_ins_lock_the_account_even_for_the_right_password(client, users):
    failures = [log_in(client, "developer", "wrong") for _ in range(5)]

    locked = log_in(client, "developer", PASSWORD)

    assert [r.status_code for r in failures[:4]] == [200] * 4  # the form again, "did not match"
    assert "did not match" in failures[0].content.decode()
    assert locked.status_code == 429
    assert LOCKED in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_lock_holds_from_any_address_and_only_for_that_account(client, users):
    for _ in range(5):
        log_in(client, "developer", "wrong", address="10.0.0.1")

    elsewhere = log_in(client, "developer", PASSWORD, address="192.0.2.7")
    other_account = log_in(client, "clinician", PASSWORD, address="10.0.0.1")

    assert elsewhere.status_code == 429
    assert other_account.status_code == 302
    assert other_account["Location"] == reverse("frontend:home")


def test_a_success_before_the_limit_starts_the_count_again(client, users):
    for _ in range(4):
        log_in(client, "developer", "wrong")
    assert log_in(client, "developer", PASSWORD).status_code == 302
    client.logout()

    for _ in range(4):
        log_in(client, "developer", "wrong")
    again = log_in(client, "developer", PASSWORD)

    assert again.status_code == 302


def test_failures_on_the_django_admin_count_and_lock_it_too(client, users):
    for _ in range(3):
        log_in(client, "admin", "wrong", path="/admin/login/")
    for _ in range(2):
        log_in(client, "admin", "wrong")

    admin_site = log_in(client, "admin", PASSWORD, path="/admin/login/")
    console = log_in(client, "admin", PASSWORD)

    assert (admin_site.status_code, console.status_code) == (429, 429)
    assert LOCKED in admin_site.content.decode()


def test_an_admin_unlocks_an_account_with_axes_reset_username(client, users):
    for _ in range(5):
        log_in(client, "developer", "wrong")

    call_command("axes_reset_username", "developer")

    assert log_in(client, "developer", PASSWORD).status_code == 302
