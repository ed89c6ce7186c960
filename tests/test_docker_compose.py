"""docker-compose.yml stays valid and every service runs a command that exists in the project."""
import importlib.util
import re
from pathlib import Path

import yaml
from django.core.management import get_commands

REPO = Path(__file__).resolve().parent.parent
SERVICES = {"postgres", "redis", "migrate", "model_service", "web-support", "web-codegen", "web-medical",
            "worker", "beat"}


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def project_command_exists(command: list[str]) -> bool:
    match command:
        case ["python", "-m", module, *_]:
            return module_exists(f"{module}.__main__") or module_exists(module)
        case ["python", "manage.py", name, *_]:
            return name in get_commands()
        case ["celery", "-A", app, *_]:
            return module_exists(f"{app}.celery")
        case ["uvicorn", target, *_]:
            module, _, attribute = target.partition(":")
            return module_exists(module) and attribute in (REPO / (module.replace(".", "/") + ".py")).read_text()
    return False


def test_compose_declares_every_service():
    assert set(compose()["services"]) == SERVICES


def test_every_suite_service_runs_an_existing_project_command():
    for name, service in compose()["services"].items():
        if name in ("postgres", "redis"):
            continue
        assert service["build"] == "."
        assert project_command_exists(service["command"]), name


def test_web_services_each_mount_one_use_case():
    services = compose()["services"]

    mounted = {name: services[name]["environment"]["SUITE_APPS"] for name in ("web-support", "web-codegen",
                                                                              "web-medical")}

    assert mounted == {"web-support": "customer_service", "web-codegen": "codegen", "web-medical": "medical"}


def compose_default(argument: str) -> int:
    """The default of the one `${VARIABLE:-default}` in a command's argument."""
    return int(re.search(r":-(\d+)\}", argument).group(1))


def test_postgres_admits_every_pool_at_its_largest(settings):
    """Each web process and each worker child may hold DATABASE_POOL_MAX_SIZE connections; the worker's
    parent, beat and migrate one each."""
    services = compose()["services"]
    web = sum(compose_default(services[name]["command"][-1]) for name in ("web-support", "web-codegen", "web-medical"))
    workers = compose_default(services["worker"]["command"][-1])

    assert compose_default(services["postgres"]["command"][-1]) >= settings.DATABASE_POOL_MAX_SIZE * (web + workers) + 3


def test_the_image_builds_from_the_pinned_requirements():
    dockerfile = (REPO / "Dockerfile").read_text()

    assert "-r requirements/base.txt -c requirements/constraints.txt" in dockerfile
    assert "frontend/package-lock.json" in dockerfile


def test_an_unknown_command_is_not_taken_for_a_project_command():
    assert not project_command_exists(["python", "manage.py", "no_such_command"])
    assert not project_command_exists(["python", "-m", "no_such_module"])
    assert not project_command_exists(["uvicorn", "config.asgi:no_such_app"])


DJANGO_SERVICES = ("migrate", "web-support", "web-codegen", "web-medical", "worker", "beat")
REQUIRED = ("SECRET_KEY", "ALLOWED_HOSTS", "POSTGRES_PASSWORD", "MODEL_SERVICE_API_KEY")


def test_compose_sets_no_insecure_default_and_requires_the_secrets_and_hosts():
    text = (REPO / "docker-compose.yml").read_text()
    services = compose()["services"]

    for name in REQUIRED:
        assert f"${{{name}:?" in text, name
    for name in DJANGO_SERVICES:
        environment = services[name]["environment"]
        assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?"), name
        assert environment["ALLOWED_HOSTS"].startswith("${ALLOWED_HOSTS:?"), name
        assert environment["MODEL_SERVICE_API_KEY"].startswith("${MODEL_SERVICE_API_KEY:?"), name
        assert environment["DATABASE_URL"].startswith("postgres://suite:${POSTGRES_PASSWORD:?"), name
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert services["model_service"]["environment"]["MODEL_SERVICE_API_KEYS"].startswith("${MODEL_SERVICE_API_KEY:?")
    assert "change-me" not in text
    assert '"*"' not in text
    assert ":-suite" not in text


def test_compose_runs_production_settings_with_secure_cookies_behind_a_tls_proxy():
    services = compose()["services"]

    for name in DJANGO_SERVICES:
        environment = services[name]["environment"]
        assert environment["DJANGO_SETTINGS_MODULE"] == "config.settings.production", name
        assert (environment["SESSION_COOKIE_SECURE"], environment["CSRF_COOKIE_SECURE"]) == ("true", "true"), name
        assert environment["BEHIND_TLS_PROXY"] == "true", name
    # only the host's TLS proxy reaches the plain-HTTP web ports
    assert [services[name]["ports"] for name in ("web-support", "web-codegen", "web-medical")] == [
        ["127.0.0.1:8001:8000"], ["127.0.0.1:8002:8000"], ["127.0.0.1:8003:8000"]]


def test_the_image_defaults_to_production_settings():
    dockerfile = (REPO / "Dockerfile").read_text()

    assert "DJANGO_SETTINGS_MODULE=config.settings.production" in dockerfile.split("RUN", 1)[0]


def test_one_data_volume_holds_indexes_repositories_adapters_and_embedders_for_every_service_that_needs_them():
    document = compose()
    services = document["services"]

    mounts = {name: services[name]["volumes"] for name in ("worker", "web-support", "web-codegen", "web-medical",
                                                           "model_service")}

    assert "suite-data" in document["volumes"]
    assert mounts == {"worker": ["suite-data:/data"], "web-support": ["suite-data:/data"],
                      "web-codegen": ["suite-data:/data"], "web-medical": ["suite-data:/data"],
                      "model_service": ["./checkpoints:/app/checkpoints:ro", "suite-data:/data:ro"]}
    assert {services[name]["environment"]["SUITE_DATA_DIR"] for name in DJANGO_SERVICES} == {"/data"}
    assert services["model_service"]["environment"]["MODEL_SERVICE_ADAPTERS_DIR"] == "/data/adapters"
    assert services["model_service"]["environment"]["MODEL_SERVICE_EMBEDDERS_DIR"] == "/data/embedders"


def test_the_build_context_leaves_out_local_environments_and_build_outputs():
    """`COPY . .` comes after the image's own pip and npm installs: a local .venv or node_modules would
    otherwise be copied over them."""
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}

    assert {".git", ".venv", "**/node_modules", "frontend/static/vendor", ".run"} <= ignored
