from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_create


def test_create_api_token_command_prints_a_working_token(client, users):
    out = StringIO()

    call_command("create_api_token", "developer", "--name", "laptop", stdout=out)
    secret = out.getvalue().strip()

    token = ApiToken.objects.get(user=users["developer"])
    assert token.name == "laptop"
    assert token.digest == ApiToken.digest_of(secret)
    assert secret not in (token.digest, token.hint)
    response = client.get("/api/codegen/v1/status", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200


def test_create_api_token_command_rejects_an_unknown_user(db):
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("create_api_token", "ghost")


def test_unknown_or_revoked_tokens_get_401(client, users):
    created = api_token_create(user=users["developer"], name="old")
    created.token.delete()

    for header in (f"Bearer {created.secret}", "Bearer moe_nonsense", "Bearer"):
        response = client.get("/api/codegen/v1/status", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401, header


def test_a_deactivated_users_token_stops_working(client, users):
    secret = api_token_create(user=users["developer"], name="ide").secret
    users["developer"].is_active = False
    users["developer"].save()

    assert client.get("/api/codegen/v1/status", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401


def test_token_api_creates_lists_and_deletes_own_tokens(client, users):
    client.force_login(users["developer"])

    created = client.post("/api/accounts/v1/tokens/create", {"name": "vscode"}).json()
    listed = client.get("/api/accounts/v1/tokens").json()
    other = api_token_create(user=users["admin"], name="admins")
    deleted_other = client.delete(f"/api/accounts/v1/tokens/{other.token.id}")
    deleted_own = client.delete(f"/api/accounts/v1/tokens/{created['id']}")

    assert created["token"].startswith("moe_")
    assert [t["name"] for t in listed] == ["vscode"]
    assert "token" not in listed[0]
    assert deleted_other.status_code == 404
    assert deleted_own.status_code == 204
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["admins"]


def test_token_api_requires_a_name(client, users):
    client.force_login(users["developer"])

    response = client.post("/api/accounts/v1/tokens/create", {"name": ""})

    assert response.status_code == 400
    assert "name" in response.json()


def test_console_shows_a_new_token_once(client, users):
    client.force_login(users["developer"])

    page = client.post(reverse("frontend:token_create"), {"name": "laptop"}).content.decode()
    secret = page.split('<code id="new-token">')[1].split("</code>")[0]
    again = client.get(reverse("frontend:tokens")).content.decode()

    assert ApiToken.objects.get().digest == ApiToken.digest_of(secret)
    assert secret not in again
    assert "laptop" in again


def test_demo_users_are_created_once_per_role(db):
    from apps.accounts.models import User
    from apps.accounts.services import demo_users_create

    first = demo_users_create()
    second = demo_users_create()

    assert sorted(first) == ["admin", "clinician", "developer", "support"]
    assert second == {}
    assert {u.username: u.role for u in User.objects.all()} == {
        "support": "support_agent", "developer": "developer", "clinician": "clinician", "admin": "admin"}
    assert User.objects.get(username="admin").check_password(first["admin"])
