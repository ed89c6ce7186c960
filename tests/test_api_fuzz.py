"""Property-based fuzzing of every documented API route (schemathesis over the OpenAPI schemas).

Each operation of the Django APIs gets FUZZ_EXAMPLES generated requests, as an admin with a full-API
token (so every area's code runs, not just the permission check), against objects that exist; every
response must be a non-5xx answer that matches the schema. model_service's own routes are fuzzed the
same way against a real server on the tiny checkpoint.
"""
import os
import time

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance
from schemathesis.checks import not_a_server_error

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))  # per operation; CI keeps the default
CHECKS = [not_a_server_error, response_schema_conformance]
# No shrinking: a failure is reported as found, and the run time stays bounded.
FUZZ_SETTINGS = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
MAX_FUZZ_TOKENS = 16  # generated requests may ask for thousands of tokens; the checks are the same with 16


def django_schema() -> schemathesis.schemas.BaseSchema:
    generated = SchemaGenerator().get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(generated)
    schema.app = WSGIHandler()
    return schema


django_api = django_schema()


@pytest.fixture(autouse=True)
def keep_the_test_transaction():
    """The WSGI handler closes database connections after each request, as in production; inside a
    test transaction that would end it (Django's test client disconnects the same signals)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def admin_token(db):
    from apps.accounts.models import ApiToken
    from apps.accounts.roles import Role
    from apps.accounts.services import api_token_create, user_create

    user = user_create(username="fuzz-admin", password="pw-for-tests-123", role=Role.ADMIN)
    return api_token_create(user=user, name="fuzz", scope=ApiToken.Scope.API).secret


@pytest.fixture
def medical_demo(db, settings, tmp_path):
    """The demo medical knowledge base and model, so generated requests reach the diagnosis code
    (without them the medical routes rightly answer 503)."""
    from django.core.management import call_command

    settings.SUITE_DATA_DIR = tmp_path / "data"
    call_command("load_demo_medical", verbosity=0)


@django_api.parametrize()
@FUZZ_SETTINGS
@pytest.mark.django_db
def test_django_api_routes_never_fail_and_answer_their_schema(case, admin_token, request):
    if case.path.startswith("/api/medical/"):
        request.getfixturevalue("medical_demo")  # set up once per route, not per example
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_token}"}, checks=CHECKS)



def bound_generation(case) -> None:
    """Keep generated generation requests short, so the run time does not depend on the draw."""
    if not isinstance(case.body, dict) or "/v1/" not in case.path or "completions" not in case.path:
        return
    if case.body.get("max_tokens") is None:  # absent, a chat request generates to the end of the context
        case.body["max_tokens"] = MAX_FUZZ_TOKENS
    for field in ("max_tokens", "max_completion_tokens"):
        if isinstance(case.body.get(field), int) and case.body[field] > MAX_FUZZ_TOKENS:
            case.body[field] = MAX_FUZZ_TOKENS


@pytest.mark.slow
def test_model_service_routes_never_fail_and_answer_their_schema(vllm_server):
    """model_service's routes, valid and invalid requests alike (its schema is known only once it runs,
    so the routes are looped over here rather than parametrized)."""
    schema = schemathesis.openapi.from_url(vllm_server.url + "/openapi.json")
    failures, routes = {}, 0
    for result in schema.get_all_operations():
        operation = result.ok()
        routes += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @FUZZ_SETTINGS
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case):
                bound_generation(case)
                case.call_and_validate(base_url=vllm_server.url, checks=CHECKS, timeout=120)

            started = time.monotonic()
            try:
                fuzz()
            except Unsatisfiable:  # nothing to vary in this mode (a route without parameters)
                pass
            except Exception as failure:  # noqa: BLE001 - every route is tried; all failures are reported
                failures[f"{operation.label} ({mode.value})"] = str(failure)[:2000]
            print(f"{operation.label} {mode.value}: {time.monotonic() - started:.1f} s")

    assert routes >= 8
    assert failures == {}, "\n\n".join(f"{route}: {text}" for route, text in failures.items())
