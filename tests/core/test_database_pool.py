"""On PostgreSQL the suite's processes keep their connections in a pool (config/settings/base.py): the
requests of a web process are served one after another by the same database connection instead of
each opening its own, and requests waiting on the model hold none (apps/core/db.py)."""
import json
import os

from tests.test_settings import run_python

REQUESTS = 5
STREAMS = 6
PREAMBLE = """
import json, threading
import django
django.setup()
from django.core.signals import request_finished, request_started
from django.db import connection

def backend():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]
"""
SEQUENTIAL = PREAMBLE + f"""
def request():
    request_started.send(sender=None)  # what Django's handlers send around every request
    try:
        return backend()
    finally:
        request_finished.send(sender=None)

if connection.pool is not None:
    connection.pool.open(wait=True)  # its first connection ready: a pool still filling opens another
backends = {{request() for _ in range({REQUESTS})}}
print(json.dumps({{"pool": connection.settings_dict["OPTIONS"].get("pool"), "backends": len(backends)}}))
"""
STREAMING = PREAMBLE + f"""
from apps.core.db import release_connection

streaming, served = threading.Barrier({STREAMS}, timeout=60), []

def stream():  # a streamed suggestion: its reads, the model's tokens (all streams at once), its last write
    request_started.send(sender=None)
    try:
        backend()
        release_connection()
        streaming.wait()
        served.append(backend())
    finally:
        request_finished.send(sender=None)

threads = [threading.Thread(target=stream) for _ in range({STREAMS})]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({{"served": len(served), "pool": connection.settings_dict["OPTIONS"]["pool"]["max_size"]}}))
"""


def run_with(workload: str, **settings: str) -> dict:
    result = run_python(["-c", workload], {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"), **settings})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_requests_on_postgresql_reuse_one_pooled_connection():
    assert run_with(SEQUENTIAL) == {"pool": {"min_size": 1, "max_size": 16, "timeout": 30}, "backends": 1}


def test_with_the_pool_turned_off_every_request_opens_its_own_connection():
    assert run_with(SEQUENTIAL, DATABASE_POOL="false") == {"pool": None, "backends": REQUESTS}


def test_more_streams_than_pooled_connections_are_served_when_each_gives_its_connection_back_meanwhile():
    assert run_with(STREAMING, DATABASE_POOL_MAX_SIZE="2") == {"served": STREAMS, "pool": 2}
