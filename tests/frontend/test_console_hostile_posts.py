"""Every console form, posted hostile values by an admin, answers a page or a redirect: never a 500.

The fields each view reads are taken from its source (`request.POST["x"]`, `.get("x")`,
`.getlist("x")`), so a new view or field is covered without editing this test.
"""
import inspect
import re

import pytest
from django.test import Client
from django.urls import URLPattern, get_resolver

from apps.accounts.roles import Role
from apps.accounts.services import user_create

HOSTILE_VALUES = ["abc", "", "-1", "9" * 40, "1e309", "NaN", "0x10", "\u0000", "[]", "{\"a\": [[[[]]]]}"]
POSTED_FIELD = re.compile(r"""request\.POST(?:\.get|\.getlist)?[\[(]\s*["']([\w-]+)["']""")


def console_views() -> list[tuple[str, object]]:
    frontend = next(pattern for pattern in get_resolver().url_patterns if getattr(pattern, "namespace", "") == "frontend")
    routes = []
    for pattern in frontend.url_patterns:
        if isinstance(pattern, URLPattern) and "request.POST" in _source(pattern.callback):
            routes.append((str(pattern.pattern), pattern.callback))
    return routes


def _source(view) -> str:
    view = getattr(view, "view_class", view)
    while hasattr(view, "__wrapped__"):
        view = view.__wrapped__
    try:
        return inspect.getsource(view)
    except (OSError, TypeError):
        return ""


def _url(route: str, object_id: str) -> str:
    return "/" + re.sub(r"<int:\w+>", object_id, route)


@pytest.fixture
def admin_client(db, settings, tmp_path):
    settings.SUITE_DATA_DIR = tmp_path / "data"
    client = Client(raise_request_exception=False)
    client.force_login(user_create(username="admin", password="pw-for-tests-123", role=Role.ADMIN))
    return client


def test_the_console_has_forms_to_post_to():
    assert len(console_views()) >= 10


@pytest.mark.parametrize(("route", "view"), console_views(), ids=[route for route, _ in console_views()])
def test_hostile_form_values_never_give_a_server_error(admin_client, route, view):
    fields = sorted(set(POSTED_FIELD.findall(_source(view))))
    statuses = {}
    for value in HOSTILE_VALUES:
        for object_id in ("1", "999999"):
            response = admin_client.post(_url(route, object_id), {field: value for field in fields})
            statuses[(value, object_id)] = response.status_code

    assert {key: status for key, status in statuses.items() if status >= 500} == {}
