"""Back-pressure, API keys, client disconnects and metrics, on real model_service processes."""
import json
import re
import socket
import threading
import time
from contextlib import contextmanager

import httpx
import openai
import pytest

from tests.model_service_process import start_model_service

pytestmark = pytest.mark.slow

LONG = {"prompt": "def main():", "max_tokens": 1500, "temperature": 0, "stream": True}


def metric(server, name: str, labels: str = "", **kwargs) -> float:
    text = httpx.get(server.url + "/metrics", timeout=10, **kwargs).text
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name}{labels} not in /metrics"
    return float(match.group(1))


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def tight_server(tiny_checkpoint, server_logs):
    """One request runs, one may wait, the third is refused."""
    server = start_model_service(tiny_checkpoint, backend="transformers", log_dir=server_logs,
                                 extra_args=("--max-running", "1", "--max-waiting", "1", "--no-embeddings",
                                             "--max-request-bytes", "65536"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keyed_server(tiny_checkpoint, server_logs):
    server = start_model_service(tiny_checkpoint, backend="transformers", log_dir=server_logs,
                                 extra_args=("--no-embeddings",), env={"MODEL_SERVICE_API_KEYS": "key-one,key-two"})
    yield server
    server.stop()


@contextmanager
def full_queue(server):
    """One request generating, one waiting for its slot, for the body of the with-block.

    Yields a dict that holds the waiting request's status once the block has ended.
    """
    waiting_result = {}
    with httpx.Client(timeout=60) as running_client, httpx.Client(timeout=60) as waiting_client:
        with running_client.stream("POST", server.url + "/v1/completions", json=LONG) as running:
            lines = running.iter_lines()  # keep the iterator: dropping it closes the stream
            next(lines)  # generating now
            waiter = threading.Thread(target=lambda: waiting_result.update(
                status=waiting_client.post(server.url + "/v1/completions",
                                           json={"prompt": "x", "max_tokens": 2}).status_code))
            waiter.start()
            wait_until(lambda: metric(server, "model_service_num_requests_waiting") == 1)
            yield waiting_result
        waiter.join(timeout=60)


def test_requests_beyond_the_queue_limit_get_429_with_retry_after(tight_server):
    with full_queue(tight_server) as waiting_result:
        refused = httpx.post(tight_server.url + "/v1/completions", json={"prompt": "x", "max_tokens": 2})

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert waiting_result == {"status": 200}  # the waiting request ran once the slot was free


def test_openai_client_sees_the_429_as_a_rate_limit_error(tight_server):
    client = openai.OpenAI(base_url=tight_server.url + "/v1", api_key="unused", max_retries=0)

    with full_queue(tight_server):
        with pytest.raises(openai.RateLimitError):
            client.completions.create(model="tiny-random", prompt="x", max_tokens=1)


def test_disconnecting_mid_stream_frees_the_request_in_the_engine(any_server):
    aborted_before = metric(any_server, "model_service_requests_aborted_total")
    tokens_before = metric(any_server, "model_service_generation_tokens_total")

    with httpx.stream("POST", any_server.url + "/v1/completions", json=LONG, timeout=60) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
    # the client is gone after 1 chunk of 1500 tokens

    wait_until(lambda: engine_idle(any_server))
    assert metric(any_server, "model_service_requests_aborted_total") == aborted_before + 1
    assert metric(any_server, "model_service_generation_tokens_total") - tokens_before < 1500


@pytest.fixture(scope="module")
def info_server(tiny_checkpoint, server_logs):
    """Logging at the info level, where aborted generations are logged (the other servers log warnings only)."""
    server = start_model_service(tiny_checkpoint, backend="transformers", log_dir=server_logs,
                                 extra_args=("--no-embeddings", "--log-level", "info"))
    yield server
    server.stop()


def test_an_aborted_generation_logs_its_tokens_and_their_times(info_server):
    tokens_before = metric(info_server, "model_service_generation_tokens_total")

    with httpx.stream("POST", info_server.url + "/v1/completions", json=LONG, timeout=60) as response:
        lines = response.iter_lines()
        next(lines)
        left_at = time.monotonic()
    wait_until(lambda: engine_idle(info_server))

    records = info_server.aborted_generations()
    assert len(records) == 1
    record = records[0]
    generated = metric(info_server, "model_service_generation_tokens_total") - tokens_before
    assert record["generated_tokens"] == generated
    assert len(record["last_token_times"]) == min(generated, 64)
    assert record["last_token_times"] == sorted(record["last_token_times"])
    assert record["last_token_times"][-1] <= record["aborted_at"]
    assert left_at < record["aborted_at"]  # time.monotonic() is one clock for every process on the machine


def test_disconnecting_from_a_non_streaming_request_aborts_it_in_the_engine(any_server):
    aborted_before = metric(any_server, "model_service_requests_aborted_total")
    tokens_before = metric(any_server, "model_service_generation_tokens_total")
    body = json.dumps(dict(LONG, stream=False)).encode()
    host, port = any_server.url.removeprefix("http://").split(":")

    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: model-service\r\n"
                           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        wait_until(lambda: metric(any_server, "model_service_generation_tokens_total") > tokens_before)
    # the client is gone while its 1500 tokens are being generated

    wait_until(lambda: engine_idle(any_server))
    assert metric(any_server, "model_service_requests_aborted_total") == aborted_before + 1
    assert metric(any_server, "model_service_num_requests_running") == 0
    assert metric(any_server, "model_service_generation_tokens_total") - tokens_before < 1500


def engine_idle(server) -> bool:
    health = httpx.get(server.url + "/health").json()
    return health["engine"]["unfinished_requests"] == 0 and health["queue"]["running"] == 0


def test_a_body_over_max_request_bytes_gets_413_in_the_openai_shape(tight_server):
    response = httpx.post(tight_server.url + "/v1/completions", json={"prompt": "x" * 70_000, "max_tokens": 1})

    assert response.status_code == 413
    assert response.json() == {"error": {
        "message": "The request body is larger than this server's limit of 65536 bytes.",
        "type": "invalid_request_error", "param": None, "code": "request_too_large"}}
    assert metric(tight_server, "model_service_requests_total", '{route="/v1/completions",status="413"}') == 1


def test_without_a_key_only_health_answers(keyed_server):
    assert httpx.get(keyed_server.url + "/health").status_code == 200
    for path in ("/v1/models", "/metrics"):
        response = httpx.get(keyed_server.url + path)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    wrong = httpx.get(keyed_server.url + "/v1/models", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_each_configured_key_is_accepted(keyed_server):
    for key in ("key-one", "key-two"):
        client = openai.OpenAI(base_url=keyed_server.url + "/v1", api_key=key, max_retries=0)
        assert client.completions.create(model="tiny-random", prompt="x", max_tokens=2).usage.completion_tokens == 2
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=keyed_server.url + "/v1", api_key="wrong", max_retries=0).models.list()


METRIC_NAMES = [
    "model_service_requests_total", "model_service_time_to_first_token_seconds",
    "model_service_inter_token_latency_seconds", "model_service_e2e_request_latency_seconds",
    "model_service_generation_tokens_total", "model_service_prompt_tokens_total",
    "model_service_num_requests_running", "model_service_num_requests_waiting",
]


def test_metrics_are_exposed_and_count_each_request(any_server):
    text = httpx.get(any_server.url + "/metrics").text
    for name in METRIC_NAMES:
        assert re.search(rf"^# TYPE {name} (counter|gauge|histogram)$", text, re.MULTILINE), name
    ok_label = '{route="/v1/completions",status="200"}'
    requests_before = _metric_or_zero(any_server, "model_service_requests_total", ok_label)
    ttft_before = metric(any_server, "model_service_time_to_first_token_seconds_count")
    e2e_before = metric(any_server, "model_service_e2e_request_latency_seconds_count")
    tokens_before = metric(any_server, "model_service_generation_tokens_total")
    prompt_before = metric(any_server, "model_service_prompt_tokens_total")

    completion = openai.OpenAI(base_url=any_server.url + "/v1", api_key="unused").completions.create(
        model="tiny-random", prompt="import sys", max_tokens=7, temperature=0)

    assert metric(any_server, "model_service_requests_total", ok_label) == requests_before + 1
    assert metric(any_server, "model_service_time_to_first_token_seconds_count") == ttft_before + 1
    assert metric(any_server, "model_service_e2e_request_latency_seconds_count") == e2e_before + 1
    assert metric(any_server, "model_service_generation_tokens_total") == tokens_before + 7
    assert metric(any_server, "model_service_prompt_tokens_total") == prompt_before + completion.usage.prompt_tokens


def test_metrics_count_errors_by_status(any_server):
    label = '{route="/v1/completions",status="400"}'
    before = _metric_or_zero(any_server, "model_service_requests_total", label)

    httpx.post(any_server.url + "/v1/completions", json={"prompt": "x", "max_tokens": 0})

    assert metric(any_server, "model_service_requests_total", label) == before + 1


def _metric_or_zero(server, name: str, labels: str) -> float:
    try:
        return metric(server, name, labels)
    except AssertionError:
        return 0.0
