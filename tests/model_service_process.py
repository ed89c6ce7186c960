"""model_service as a child process, for tests (and the benchmarks that measure a real server):
started on a free port, healthy before use."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from model_service.ports import free_port

REPO = Path(__file__).resolve().parent.parent


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def aborted_generations(self) -> list[dict]:
        """model_service's log records of generations aborted because their client left (logged at the info
        level), oldest first."""
        marker = "generation aborted: "
        return [json.loads(line.split(marker, 1)[1]) for line in self.log().splitlines() if marker in line]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_model_service(checkpoint: Path, *, backend: str, log_dir: Path, extra_args: tuple[str, ...] = (),
                        env: dict[str, str] | None = None, timeout: float = 240.0,
                        adapters_dir: Path | None = None, embedders_dir: Path | None = None) -> RunningServer:
    """Start `python -m model_service serve` and wait until /health says ok.

    `adapters_dir`: the folder adapters may be loaded from (none: adapters are refused); `embedders_dir`:
    the folder tuned embedders are served from (none: only the base embedding model)."""
    port = free_port()
    command = [sys.executable, "-m", "model_service", "serve", "--checkpoint", str(checkpoint), "--port", str(port),
               "--backend", backend, "--log-level", "warning", *extra_args]
    if adapters_dir is not None:
        command += ["--adapters-dir", str(adapters_dir)]
    if embedders_dir is not None:
        command += ["--embedders-dir", str(embedders_dir)]

    def healthy(server: RunningServer) -> bool:
        health = httpx.get(server.url + "/health", timeout=2).json()
        if health["status"] == "error":
            raise RuntimeError(f"model_service failed to start: {health['error']}")
        return health["status"] == "ok"

    return start_server_process(command, name="model_service", port=port,
                                log_path=log_dir / f"model_service-{backend}-{port}.log",
                                env=dict(os.environ, HF_HUB_OFFLINE="1", **(env or {})), ready=healthy,
                                timeout=timeout)


def start_server_process(command: list[str], *, name: str, port: int, log_path: Path, env: dict[str, str],
                         ready: Callable[[RunningServer], bool], timeout: float) -> RunningServer:
    """Run `command` (a server listening on `port`) in a process group of its own, its output in `log_path`,
    and return once `ready(server)` says so; a `ready` that raises, an exit or the timeout stops it."""
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    server = RunningServer(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{server.log()[-3000:]}")
        try:
            if ready(server):
                return server
        except httpx.HTTPError:
            pass
        except BaseException:
            server.stop()
            raise
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"{name} did not become healthy in {timeout}s:\n{server.log()[-3000:]}")
