"""Process counts: `make run` and docker-compose.yml start as many web and worker processes as configured."""
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from apps.core.management.commands.run_suite import web_command, worker_command

REPO = Path(__file__).resolve().parent.parent.parent


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_make_run_starts_the_configured_numbers_of_processes(settings):
    settings.WEB_PROCESSES, settings.CELERY_CONCURRENCY = 3, 2

    assert option(web_command("127.0.0.1", 8000), "--workers") == "3"
    assert option(worker_command(), "--concurrency") == "2"


def test_the_defaults_of_make_run_are_one_web_and_one_worker_process():
    assert option(web_command("127.0.0.1", 8000), "--workers") == "1"
    assert option(worker_command(), "--concurrency") == "1"


@pytest.mark.parametrize("setting", ["WEB_PROCESSES", "CELERY_CONCURRENCY"])
def test_a_count_below_one_stops_make_run_before_anything_starts(settings, tmp_path, setting):
    settings.RUN_DIR = tmp_path / "run"
    setattr(settings, setting, 0)

    with pytest.raises(CommandError, match=f"{setting} must be at least 1"):
        call_command("run_suite")

    assert not settings.RUN_DIR.exists()


def test_compose_reads_the_same_variables_for_every_web_service_and_the_worker():
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]

    for name in ("web-support", "web-codegen", "web-medical"):
        assert option(services[name]["command"], "--workers") == "${WEB_PROCESSES:-2}", name
    assert option(services["worker"]["command"], "--concurrency") == "${CELERY_CONCURRENCY:-2}"
