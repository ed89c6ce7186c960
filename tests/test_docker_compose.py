"""docker-compose.yml stays valid and every service runs a command that exists in the project."""
import importlib.util
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


def test_the_image_builds_from_the_pinned_requirements():
    dockerfile = (REPO / "Dockerfile").read_text()

    assert "-r requirements/base.txt -c requirements/constraints.txt" in dockerfile
    assert "frontend/package-lock.json" in dockerfile


def test_an_unknown_command_is_not_taken_for_a_project_command():
    assert not project_command_exists(["python", "manage.py", "no_such_command"])
    assert not project_command_exists(["python", "-m", "no_such_module"])
    assert not project_command_exists(["uvicorn", "config.asgi:no_such_app"])
