"""Every page and API against every role: allowed ones answer 200, the rest 403."""
import pytest
from django.urls import reverse

from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_create

# What each role may open, written out by hand (not derived from the code under test).
PAGE_ACCESS = {
    "frontend:customer_service": {"support", "admin"},
    "frontend:cs_knowledge_bases": {"support", "admin"},
    "frontend:codegen": {"developer", "admin"},
    "frontend:cg_playground": {"developer", "admin"},
    "frontend:tokens": {"developer", "admin"},
    "frontend:medical": {"clinician", "admin"},
    "frontend:adapters": {"admin"},
    "frontend:medical_audit": {"admin"},
    "frontend:users": {"admin"},
    "frontend:home": {"support", "developer", "clinician", "admin"},
    "frontend:status": {"support", "developer", "clinician", "admin"},
}
API_ACCESS = {
    ("get", "/api/customer-service/v1/status"): {"support", "admin"},
    ("get", "/api/customer-service/v1/knowledge-bases/"): {"support", "admin"},
    ("get", "/api/customer-service/v1/conversations/"): {"support", "admin"},
    ("get", "/api/customer-service/v1/stats"): {"support", "admin"},
    ("get", "/api/codegen/v1/status"): {"developer", "admin"},
    ("get", "/api/codegen/v1/repositories"): {"developer", "admin"},
    ("get", "/api/codegen/v1/stats"): {"developer", "admin"},
    ("get", "/api/medical/v1/status"): {"clinician", "admin"},
    ("get", "/api/accounts/v1/tokens"): {"developer", "admin"},
    ("post", "/api/accounts/v1/tokens/create"): {"developer", "admin"},
}
ROLES = ("support", "developer", "clinician", "admin")
# No token may manage tokens, whatever its scope: that takes the console session.
TOKEN_MANAGEMENT = {"/api/accounts/v1/tokens", "/api/accounts/v1/tokens/create"}


@pytest.mark.parametrize("username", ROLES)
@pytest.mark.parametrize("page_name", sorted(PAGE_ACCESS))
def test_page_access_by_role(client, users, page_name, username):
    client.force_login(users[username])

    response = client.get(reverse(page_name))

    assert response.status_code == (200 if username in PAGE_ACCESS[page_name] else 403)


@pytest.mark.parametrize("page_name", sorted(PAGE_ACCESS))
def test_pages_send_anonymous_visitors_to_log_in(client, db, page_name):
    response = client.get(reverse(page_name))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("frontend:login"))


@pytest.mark.parametrize("username", ROLES)
@pytest.mark.parametrize("method,path", sorted(API_ACCESS))
def test_api_access_by_role_with_the_console_session(client, users, method, path, username):
    client.force_login(users[username])

    response = getattr(client, method)(path, {"name": "ide"} if method == "post" else None)

    expected = (201 if method == "post" else 200) if username in API_ACCESS[(method, path)] else 403
    assert response.status_code == expected


@pytest.mark.parametrize("username", ROLES)
@pytest.mark.parametrize("method,path", sorted(API_ACCESS))
def test_api_access_by_role_with_a_full_api_token(client, users, method, path, username):
    secret = api_token_create(user=users[username], name="script", scope=ApiToken.Scope.API).secret

    response = getattr(client, method)(path, {"name": "ide"} if method == "post" else None,
                                       HTTP_AUTHORIZATION=f"Bearer {secret}")

    allowed = username in API_ACCESS[(method, path)] and path not in TOKEN_MANAGEMENT
    assert response.status_code == ((201 if method == "post" else 200) if allowed else 403)


@pytest.mark.parametrize("method,path", sorted(API_ACCESS))
def test_apis_refuse_anonymous_clients_with_401(client, db, method, path):
    response = getattr(client, method)(path)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("username", ROLES)
def test_only_admins_reach_the_django_admin(client, users, username):
    client.force_login(users[username])

    response = client.get("/admin/")

    assert response.status_code == (200 if username == "admin" else 302)


def test_navigation_shows_each_role_exactly_its_areas(client, users):
    expected = {
        "support": ["customer_service", "status"],
        "developer": ["codegen", "api_tokens", "status"],
        "clinician": ["medical", "status"],
        "admin": ["customer_service", "codegen", "api_tokens", "medical", "adapters", "users", "status",
                  "django_admin"],
    }
    for username, keys in expected.items():
        client.force_login(users[username])
        html = client.get(reverse("frontend:home")).content.decode()
        shown = [part.split('"')[0] for part in html.split('data-nav="')[1:]]
        assert shown == keys, username
