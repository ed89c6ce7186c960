"""Errors outside API views are JSON under /api/ and Django's pages elsewhere."""
import pytest
from django.test import Client, RequestFactory

from apps.core import error_views


@pytest.mark.django_db
def test_an_unknown_api_route_is_a_json_404():
    response = Client().get("/api/customer-service/v1/no-such-route")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "No API route /api/customer-service/v1/no-such-route.", "code": "not_found"}


@pytest.mark.django_db
def test_a_body_over_djangos_limit_is_a_json_400(settings):
    from apps.accounts.roles import Role
    from apps.accounts.services import user_create

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    client = Client(raise_request_exception=False)
    client.force_login(user_create(username="admin", password="pw-for-tests-123", role=Role.ADMIN))

    response = client.post("/api/accounts/v1/tokens/create", data="x=" + "a" * 200,
                           content_type="application/x-www-form-urlencoded")

    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


@pytest.mark.django_db
def test_an_unhandled_error_under_api_is_a_json_500_and_elsewhere_a_page():
    api = error_views.server_error(RequestFactory().get("/api/medical/v1/status"))
    page = error_views.server_error(RequestFactory().get("/console/"))

    assert (api.status_code, api["Content-Type"]) == (500, "application/json")
    assert page["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_pages_outside_the_api_keep_djangos_html_404():
    response = Client().get("/no-such-page")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
