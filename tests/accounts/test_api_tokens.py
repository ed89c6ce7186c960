from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import ApiToken
from apps.accounts.services import TOKEN_LAST_USE_RESOLUTION, api_token_create
from apps.core.errors import ApplicationError

EVENTS = "/api/codegen/v1/events"
# Every API an IDE token must not reach, with the role that could otherwise call it.
NOT_FOR_IDE_TOKENS = {
    ("get", "/api/codegen/v1/status"): "developer",
    ("get", "/api/codegen/v1/repositories"): "developer",
    ("get", "/api/codegen/v1/stats"): "developer",
    ("get", "/api/customer-service/v1/knowledge-bases/"): "admin",
    ("get", "/api/medical/v1/status"): "admin",
    ("get", "/api/adapters/v1/adapters"): "admin",
    ("get", "/api/schema/"): "developer",
}


def lifetime_days(token: ApiToken) -> int:
    return round((token.expires_at - token.created_at) / timedelta(days=1))


def bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_create_api_token_command_prints_a_working_ide_token(client, users):
    out = StringIO()
    before = timezone.now()

    call_command("create_api_token", "developer", "--name", "laptop", stdout=out)
    secret = out.getvalue().strip()

    token = ApiToken.objects.get(user=users["developer"])
    assert token.name == "laptop"
    assert token.digest == ApiToken.digest_of(secret)
    assert secret not in (token.digest, token.hint)
    assert token.scope == ApiToken.Scope.COMPLETION
    assert before + timedelta(days=90) <= token.expires_at <= timezone.now() + timedelta(days=90)
    response = client.post(EVENTS, {"type": "view", "completion_id": "cmpl-nope"}, **bearer(secret))
    assert response.status_code == 400  # past authentication and permission: the completion is unknown


def test_create_api_token_command_takes_a_scope_and_a_lifetime(users):
    out = StringIO()

    call_command("create_api_token", "admin", "--scope", "api", "--days", "7", stdout=out)

    token = ApiToken.objects.get(user=users["admin"])
    assert token.scope == ApiToken.Scope.API
    assert lifetime_days(token) == 7


def test_create_api_token_command_refuses_a_lifetime_out_of_bounds(users):
    with pytest.raises(CommandError, match="A token lasts from 1 to 365 days."):
        call_command("create_api_token", "developer", "--days", "366")


def test_create_api_token_command_rejects_an_unknown_user(db):
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("create_api_token", "ghost")


def test_an_ide_token_reaches_completions_and_events_and_nothing_else(client, users):
    developer = bearer(api_token_create(user=users["developer"], name="ide").secret)
    admin = bearer(api_token_create(user=users["admin"], name="ide").secret)

    refused = {(method, path): getattr(client, method)(path, **(developer if role == "developer" else admin))
               for (method, path), role in NOT_FOR_IDE_TOKENS.items()}
    event = client.post(EVENTS, {"type": "view", "completion_id": "cmpl-nope"}, **developer)
    completion = client.post("/api/codegen/v1/completions", {"language": "python", "segments": {"suffix": "x"}},
                             content_type="application/json", **developer)

    assert {key: response.status_code for key, response in refused.items()} == dict.fromkeys(NOT_FOR_IDE_TOKENS, 403)
    assert refused[("get", "/api/codegen/v1/stats")].json()["detail"] == (
        "This token's scope (completion) does not cover this API; create a token with the 'api' scope.")
    assert event.status_code == 400
    assert completion.status_code == 422  # the missing prefix, not the token, is refused


@pytest.mark.parametrize("scope", list(ApiToken.Scope))
def test_no_token_can_list_mint_or_revoke_tokens(client, users, scope):
    created = api_token_create(user=users["admin"], name="any", scope=scope)
    headers = bearer(created.secret)

    responses = [client.get("/api/accounts/v1/tokens", **headers),
                 client.post("/api/accounts/v1/tokens/create", {"name": "minted", "scope": "api"}, **headers),
                 client.delete(f"/api/accounts/v1/tokens/{created.token.id}", **headers)]

    assert [r.status_code for r in responses] == [403, 403, 403]
    assert responses[1].json()["detail"] == "API tokens may not manage tokens; use the console."
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["any"]


def test_an_expired_token_gets_401_saying_so(client, users):
    created = api_token_create(user=users["developer"], name="old", expires_in_days=1)
    ApiToken.objects.filter(id=created.token.id).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client.post(EVENTS, {"type": "view", "completion_id": "cmpl-nope"}, **bearer(created.secret))

    assert response.status_code == 401
    assert response.json()["detail"].startswith("This API token expired on ")
    assert ApiToken.objects.get().last_used_at is None


def test_a_token_records_its_last_use_only_when_it_is_accepted(client, users):
    created = api_token_create(user=users["developer"], name="ide")

    client.get("/api/codegen/v1/stats", **bearer(created.secret))
    refused_use = ApiToken.objects.get().last_used_at
    client.post(EVENTS, {"type": "view", "completion_id": "cmpl-nope"}, **bearer(created.secret))

    assert refused_use is None
    assert ApiToken.objects.get().last_used_at is not None


def test_a_token_in_steady_use_writes_its_last_use_once_a_minute(client, users):
    created = api_token_create(user=users["developer"], name="ide")
    client.post(EVENTS, {"type": "view", "completion_id": "cmpl-nope"}, **bearer(created.secret))
    first_use = ApiToken.objects.get().last_used_at

    with CaptureQueriesContext(connection) as queries:
        client.post(EVENTS, {"type": "view", "completion_id": "cmpl-nope"}, **bearer(created.secret))
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "accounts_apitoken"')]
    ApiToken.objects.update(last_used_at=first_use - TOKEN_LAST_USE_RESOLUTION)
    client.post(EVENTS, {"type": "view", "completion_id": "cmpl-nope"}, **bearer(created.secret))

    assert updates == []
    assert ApiToken.objects.get().last_used_at > first_use


@pytest.mark.parametrize("days", [0, 366])
def test_a_token_lifetime_is_between_one_day_and_the_maximum(users, days):
    with pytest.raises(ApplicationError) as error:
        api_token_create(user=users["developer"], name="ide", expires_in_days=days)

    assert (error.value.field, error.value.message) == ("expires_in_days", "A token lasts from 1 to 365 days.")


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
    assert created["scope"] == "completion"
    assert [t["name"] for t in listed] == ["vscode"]
    assert "token" not in listed[0]
    assert deleted_other.status_code == 404
    assert deleted_own.status_code == 204
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["admins"]


def test_token_api_creates_a_token_with_the_chosen_scope_and_lifetime(client, users):
    client.force_login(users["developer"])

    created = client.post("/api/accounts/v1/tokens/create", {"name": "ci", "scope": "api", "expires_in_days": 30})
    too_long = client.post("/api/accounts/v1/tokens/create", {"name": "ci", "expires_in_days": 366})

    token = ApiToken.objects.get()
    assert created.status_code == 201
    assert (token.scope, lifetime_days(token)) == ("api", 30)
    assert created.json()["expires_at"].startswith(f"{token.expires_at:%Y-%m-%d}")
    assert too_long.status_code == 400
    assert list(too_long.json()) == ["expires_in_days"]


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

    token = ApiToken.objects.get()
    assert token.digest == ApiToken.digest_of(secret)
    assert token.scope == ApiToken.Scope.COMPLETION
    assert secret not in again
    assert "laptop" in again
    assert "Code completion (IDE)" in again


def test_console_creates_a_token_with_the_chosen_scope_and_lifetime(client, users):
    client.force_login(users["developer"])

    client.post(reverse("frontend:token_create"), {"name": "ci", "scope": "api", "expires_in_days": "14"})

    token = ApiToken.objects.get()
    assert (token.scope, lifetime_days(token)) == ("api", 14)


@pytest.mark.parametrize("fields,message", [
    ({"expires_in_days": "soon"}, "Give the lifetime in whole days."),
    ({"expires_in_days": "0"}, "A token lasts from 1 to 365 days."),
    ({"scope": "everything"}, "Unknown scope 'everything'; choose one of: completion, api, retrieval."),
])
def test_console_refuses_a_bad_scope_or_lifetime_with_a_message(client, users, fields, message):
    client.force_login(users["developer"])

    response = client.post(reverse("frontend:token_create"), {"name": "ci", **fields}, follow=True)

    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == [message]
    assert not ApiToken.objects.exists()


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
