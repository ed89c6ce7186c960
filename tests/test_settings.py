"""Production is the default wherever the suite runs, and it holds up: `check --deploy` passes with
what docker-compose sets, HTTPS only, no development key, the API schema for signed-in users only."""
import json
import os
import re
import subprocess
import sys

import pytest

from tests.test_docker_compose import REPO, compose

PRODUCTION = "config.settings.production"
HOST_VARIABLES = {  # what an operator puts in compose's .env
    "SECRET_KEY": "tq3Xb7-a9Lr2Wm5Zc8Vn1Kp4Hd6Jf0Gs3Qe7Ty9Ui2Oo5Pa8Sd1Fg4Hj",
    "ALLOWED_HOSTS": "suite.example.org",
    "POSTGRES_PASSWORD": "0f5c2a9e7b1d4c8a6e3f",
    "MODEL_SERVICE_API_KEY": "key-for-model-service",
}
SETTINGS_PROBE = ("import json; from django.conf import settings as s; print(json.dumps({name: getattr(s, name) "
                  "for name in ['DEBUG', 'SECRET_KEY', 'ALLOWED_HOSTS', 'SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', "
                  "'SECURE_PROXY_SSL_HEADER', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'API_SCHEMA_PUBLIC']}))")


def compose_environment(service: str, variables: dict[str, str]) -> dict[str, str]:
    """The environment docker compose gives `service`, `${VAR:?...}` and `${VAR:-default}` resolved."""

    def resolve(match: re.Match) -> str:
        name, operator, default = match.groups()
        return variables[name] if operator == ":?" else variables.get(name, default)

    return {key: re.sub(r"\$\{(\w+)(:[?-])([^}]*)\}", resolve, str(value))
            for key, value in compose()["services"][service]["environment"].items()}


def run_python(args: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess:
    """`python ARGS` in the repository with only `environment` (no DJANGO_SETTINGS_MODULE from pytest)."""
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, *args], cwd=REPO, env={**base, **environment}, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("args", [
    ["manage.py", "check"],
    ["-c", "import config.asgi"],
    ["-c", "import config.wsgi"],
    ["-c", "import config.celery; from django.conf import settings; settings.DEBUG"],
], ids=["manage.py", "asgi", "wsgi", "celery"])
def test_every_entry_point_defaults_to_production_settings_which_need_a_secret_key(args):
    result = run_python(args, {})

    assert result.returncode == 1
    assert "django.core.exceptions.ImproperlyConfigured: Set the SECRET_KEY environment variable" in result.stderr


def test_production_settings_need_allowed_hosts():
    result = run_python(["-c", SETTINGS_PROBE], {"DJANGO_SETTINGS_MODULE": PRODUCTION,
                                                 "SECRET_KEY": HOST_VARIABLES["SECRET_KEY"]})

    assert "ImproperlyConfigured: Set the ALLOWED_HOSTS environment variable" in result.stderr


def test_check_deploy_passes_with_the_variables_compose_sets():
    result = run_python(["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                        compose_environment("web-codegen", HOST_VARIABLES))

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_compose_runs_debug_off_https_only_with_the_schema_for_signed_in_users():
    result = run_python(["-c", SETTINGS_PROBE], compose_environment("web-support", HOST_VARIABLES))

    assert json.loads(result.stdout) == {
        "DEBUG": False, "SECRET_KEY": HOST_VARIABLES["SECRET_KEY"], "ALLOWED_HOSTS": ["suite.example.org"],
        "SECURE_SSL_REDIRECT": True, "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"], "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True, "API_SCHEMA_PUBLIC": False}


def test_production_trusts_x_forwarded_proto_only_behind_a_tls_proxy():
    result = run_python(["-c", SETTINGS_PROBE], {"DJANGO_SETTINGS_MODULE": PRODUCTION,
                                                 "SECRET_KEY": HOST_VARIABLES["SECRET_KEY"], "ALLOWED_HOSTS": "x"})

    assert json.loads(result.stdout)["SECURE_PROXY_SSL_HEADER"] is None


def test_make_run_chooses_the_local_development_settings():
    makefile = (REPO / "Makefile").read_text()

    run_recipe = makefile.split("\nrun: setup\n", 1)[1].split("\n\n", 1)[0]
    assert run_recipe == "\tDJANGO_SETTINGS_MODULE=config.settings.local $(PY) manage.py run_suite"


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_the_api_schema_and_docs_are_for_signed_in_users_unless_made_public(client, settings, django_user_model,
                                                                          path):
    settings.API_SCHEMA_PUBLIC = False
    anonymous = client.get(path)
    client.force_login(django_user_model.objects.create(username="dev", role="developer"))
    signed_in = client.get(path)
    client.logout()
    settings.API_SCHEMA_PUBLIC = True
    public = client.get(path)

    assert (anonymous.status_code, signed_in.status_code, public.status_code) == (401, 200, 200)
