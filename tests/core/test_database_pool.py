"""On PostgreSQL the suite's processes keep their connections in a pool (config/settings/base.py): the
requests of a web process are served one after another by the same database connection instead of
each opening its own."""
import json
import os
import subprocess
import sys

from tests.test_docker_compose import REPO

REQUESTS = 5
WORKLOAD = f"""
import json
import django
django.setup()
from django.core.signals import request_finished, request_started
from django.db import connection

def request():
    request_started.send(sender=None)  # what Django's handlers send around every request
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]
    finally:
        request_finished.send(sender=None)

if connection.pool is not None:
    connection.pool.open(wait=True)  # its first connection ready: a pool still filling opens another
backends = {{request() for _ in range({REQUESTS})}}
print(json.dumps({{"pool": connection.settings_dict["OPTIONS"].get("pool"), "backends": len(backends)}}))
"""


def served_by(pool_setting: str) -> dict:
    environment = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "HF_HUB_OFFLINE": "1",
                   "DJANGO_SETTINGS_MODULE": "config.settings.local", "DATABASE_POOL": pool_setting,
                   "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")}
    result = subprocess.run([sys.executable, "-c", WORKLOAD], cwd=REPO, env=environment, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_requests_on_postgresql_reuse_one_pooled_connection():
    assert served_by("true") == {"pool": {"min_size": 1, "max_size": 8, "timeout": 10}, "backends": 1}


def test_with_the_pool_turned_off_every_request_opens_its_own_connection():
    assert served_by("false") == {"pool": None, "backends": REQUESTS}
