"""`make run`: prepare the embedded database and demo data, then run every process of the suite.

Starts model_service, a Celery worker (Redis from REDIS_URL, else a private redis-server, else
the server-less filesystem transport) and the ASGI web server. Ctrl-C, SIGTERM (a process manager)
and SIGHUP (a closed terminal) stop them all; children also get SIGTERM if this process is killed.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from apps.accounts.services import demo_users_create
from apps.core.model_client import ModelServiceError, get_client
from model_service.ports import free_port

PLACEHOLDER_CHECKPOINT = Path("checkpoints/tiny-random")
DEMO_CHECKPOINT = Path("checkpoints/demo-moe")
MODEL_SERVICE_START_TIMEOUT_S = 600  # vLLM compiles on first start
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # handled like Ctrl-C
PR_SET_PDEATHSIG = 1  # prctl option: a signal the kernel sends a child when its parent dies


class StopRequested(Exception):
    """A stop signal arrived: leave whatever we are doing and stop every child."""


def _raise_stop(signum, frame):
    raise StopRequested(signal.Signals(signum).name)


def _die_with_parent() -> None:
    """Runs in each child before exec (Linux): a `kill -9` of run_suite still stops its children."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: Ctrl-C, SIGTERM and SIGHUP still stop them
        pass


def process_count(setting: str) -> int:
    count = getattr(settings, setting)
    if count < 1:
        raise CommandError(f"{setting} must be at least 1 (it is {count})")
    return count


def web_command(host: str, port: int) -> list[str]:
    """uvicorn with WEB_PROCESSES processes: each holds its own search-index caches and database connections."""
    return [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", host, "--port", str(port),
            "--workers", str(process_count("WEB_PROCESSES"))]


def worker_command() -> list[str]:
    """One Celery worker of CELERY_CONCURRENCY processes, with beat inside it for the reconcile."""
    return [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel", "info",
            "--concurrency", str(process_count("CELERY_CONCURRENCY")), "--hostname", "worker@%h", "--beat",
            "--schedule", str(settings.RUN_DIR / "celerybeat-schedule")]


@dataclass
class Child:
    name: str
    process: subprocess.Popen


class Command(BaseCommand):
    help = "Run the whole suite locally (model_service, Celery worker, web server) until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--checkpoint", type=Path, default=None,
                            help="checkpoint to serve (default: checkpoints/demo-moe, else a tiny random one)")
        parser.add_argument("--backend", default="auto", choices=["auto", "vllm", "transformers"])

    def handle(self, *args, host: str, port: int, checkpoint: Path | None, backend: str, **options):
        web, worker = web_command(host, port), worker_command()  # a bad process count stops us before anything starts
        settings.RUN_DIR.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        self._print_demo_users()
        checkpoint = self._checkpoint(checkpoint)
        self.children: list[Child] = []
        for stop_signal in STOP_SIGNALS:
            signal.signal(stop_signal, _raise_stop)
        env = dict(os.environ, DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE",
                                                                       "config.settings.local"))
        env.update(self._broker_env())
        try:
            for command in ("load_demo_faq", "load_demo_repository", "load_demo_medical"):
                subprocess.run([sys.executable, "manage.py", command], env=env, check=True)
            self._start_model_service(checkpoint, backend, env)
            self._spawn("worker", worker, env)
            self._spawn("web", web, env)
            self.stdout.write(self.style.SUCCESS(f"\nConsole: http://{host}:{port}/console/  (Ctrl-C stops everything)\n"))
            self._watch()
        except (KeyboardInterrupt, StopRequested):
            self.stdout.write("\nStopping…")
        finally:
            self._stop_all()

    # --- preparation -----------------------------------------------------------------------
    def _print_demo_users(self) -> None:
        created = demo_users_create()
        if created:
            self.stdout.write(self.style.WARNING("Demo users (passwords are shown only this once):"))
            for username, password in created.items():
                self.stdout.write(f"  {username:<10} {password}")
        else:
            self.stdout.write("Demo users exist already (support, developer, clinician, admin).")

    def _checkpoint(self, requested: Path | None) -> Path:
        if requested is not None:
            return requested
        if (DEMO_CHECKPOINT / "config.json").exists():
            return DEMO_CHECKPOINT
        if not (PLACEHOLDER_CHECKPOINT / "config.json").exists():
            self.stdout.write("No trained checkpoint yet: creating a tiny random-initialised one…")
            subprocess.run([sys.executable, "-m", "training.scripts.init_checkpoint", "--out",
                            str(PLACEHOLDER_CHECKPOINT)], check=True)
        return PLACEHOLDER_CHECKPOINT

    def _broker_env(self) -> dict[str, str]:
        if os.environ.get("REDIS_URL"):
            return {"CELERY_BROKER_URL": os.environ["REDIS_URL"]}
        redis_server = shutil.which("redis-server")
        if redis_server:
            port = free_port()
            redis_dir = settings.RUN_DIR / "redis"
            redis_dir.mkdir(exist_ok=True)
            self._spawn("redis", [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--dir", str(redis_dir)], dict(os.environ))
            url = f"redis://127.0.0.1:{port}/0"
            return {"REDIS_URL": url, "CELERY_BROKER_URL": url}
        self.stdout.write(self.style.WARNING(
            "No REDIS_URL and no redis-server installed: Celery uses the filesystem transport under .run/celery "
            "(fine for one machine; install Redis for anything more)."))
        for folder in ("queue", "processed"):
            (settings.RUN_DIR / "celery" / folder).mkdir(parents=True, exist_ok=True)
        return {"CELERY_BROKER_URL": "filesystem://"}

    def _start_model_service(self, checkpoint: Path, backend: str, env: dict[str, str]) -> None:
        url = urlparse(settings.MODEL_SERVICE_URL)
        command = [sys.executable, "-m", "model_service", "serve", "--checkpoint", str(checkpoint),
                   "--host", url.hostname or "127.0.0.1", "--port", str(url.port or 8100), "--backend", backend,
                   "--adapters-dir", str(settings.SUITE_DATA_DIR / "adapters"),  # where adapter jobs write
                   "--embedders-dir", str(settings.SUITE_DATA_DIR / "embedders")]  # and retrieval tuning jobs
        service_env = dict(env)
        if settings.MODEL_SERVICE_API_KEY:
            service_env["MODEL_SERVICE_API_KEYS"] = settings.MODEL_SERVICE_API_KEY
        self._spawn("model_service", command, service_env)
        self.stdout.write(f"model_service is loading {checkpoint} at {settings.MODEL_SERVICE_URL} "
                          "(the status page shows when it is ready)")
        threading.Thread(target=self._load_promoted_adapters, name="adapters-sync", daemon=True).start()

    def _load_promoted_adapters(self) -> None:
        """Once model_service answers, load the adapters admins promoted (they live only in its memory)."""
        from apps.adapters.services import adapters_sync

        deadline = time.monotonic() + MODEL_SERVICE_START_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                try:
                    get_client(connect_retries=0).health()
                    break
                except ModelServiceError:
                    time.sleep(2)
            loaded = adapters_sync()
            if loaded:
                self.stdout.write(f"Promoted adapters loaded into model_service: {', '.join(loaded)}")
        except Exception as error:  # the suite runs on without them: apps fall back to the base model
            self.stderr.write(f"Could not load the promoted adapters into model_service: {error}")
        finally:
            connection.close()

    # --- processes -------------------------------------------------------------------------
    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        # Own process group: Ctrl-C reaches only this command, which then stops the children in order.
        process = subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=_die_with_parent)
        self.children.append(Child(name, process))

    def _watch(self) -> None:
        while True:
            for child in self.children:
                if child.process.poll() is not None:
                    self.stderr.write(f"{child.name} exited with status {child.process.returncode}; stopping the suite")
                    raise SystemExit(1)
            time.sleep(1)

    def _stop_all(self) -> None:
        for stop_signal in (signal.SIGINT, *STOP_SIGNALS):  # a second signal must not interrupt the stopping
            signal.signal(stop_signal, signal.SIG_IGN)
        for child in reversed(self.children):
            if child.process.poll() is None:
                os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
