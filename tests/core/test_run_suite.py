"""`make run` end to end: `manage.py run_suite` brings up every process; Ctrl-C, SIGTERM and SIGHUP stop them all."""
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from model_service.ports import free_port
from tests.model_service_process import REPO

pytestmark = pytest.mark.slow


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def still_running(processes: list[psutil.Process]) -> list[str]:
    """What a stop left behind, to tell a slow stop from a stuck one."""
    alive = []
    for process in processes:
        try:
            alive.append(f"{process.pid} {process.status()} {' '.join(process.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return alive


def log_in(client: httpx.Client, base: str, username: str, password: str) -> None:
    page = client.get(base + "/console/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = client.post(base + "/console/login/", data={"username": username, "password": password,
                                                           "csrfmiddlewaretoken": token})
    assert response.status_code == 302, response.text[:500]


@pytest.mark.parametrize(("broker", "stop_signal"), [("redis-server", signal.SIGTERM), ("filesystem", signal.SIGINT),
                                                     ("redis-server", signal.SIGHUP)])
def test_run_suite_starts_everything_and_a_stop_signal_stops_it(tmp_path, tiny_checkpoint, broker, stop_signal):
    web_port, service_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "CELERY_BROKER_URL",
                                                                          "DATABASE_URL")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.local", SUITE_RUN_DIR=str(tmp_path / "run"),
               MODEL_SERVICE_URL=f"http://127.0.0.1:{service_port}", PYTHONUNBUFFERED="1")
    if broker == "filesystem":
        env["PATH"] = os.path.dirname(sys.executable)  # no redis-server to be found
    log_path = tmp_path / "run_suite.log"
    with log_path.open("w") as log:
        suite = subprocess.Popen([sys.executable, "manage.py", "run_suite", "--port", str(web_port),
                                  "--checkpoint", str(tiny_checkpoint), "--backend", "transformers"],
                                 cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{web_port}"
    children = []
    try:
        output = wait_for(lambda: "Console:" in log_path.read_text() and log_path.read_text(), 120, "the URL")
        passwords = dict(re.findall(r"^  (support|developer|clinician|admin)\s+(\S+)$", output, re.MULTILINE))
        assert sorted(passwords) == ["admin", "clinician", "developer", "support"]
        assert f"{base}/console/" in output
        assert ("filesystem transport" in output) == (broker == "filesystem")

        with httpx.Client(timeout=10) as client:
            wait_for(lambda: client.get(base + "/console/login/").status_code == 200, 60, "the web server")
            log_in(client, base, "admin", passwords["admin"])
            panel = wait_for(lambda: (text := client.get(base + "/console/status/panel/").text)
                             and 'data-state="healthy"' in text and 'data-state="alive"' in text and text,
                             120, "model_service healthy and a worker alive")
        assert "random-init" in panel  # the placeholder checkpoint says what it is
        children = psutil.Process(suite.pid).children(recursive=True)
        assert len(children) >= 3 + (broker == "redis-server")

        suite.send_signal(stop_signal)
        try:
            suite.wait(timeout=60)
        except subprocess.TimeoutExpired:
            left = still_running([psutil.Process(suite.pid), *children])
            raise AssertionError(f"run_suite still runs 60 s after {stop_signal.name}: {left}\n"
                                 f"{log_path.read_text()[-3000:]}") from None

        assert wait_for(lambda: not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE
                                        for child in children), 30, "every child to exit")
    finally:
        if suite.poll() is None:  # whatever a failed test left behind
            suite.kill()
        for child in children:
            if child.is_running():
                child.kill()
    assert "Stopping" in log_path.read_text()
