"""Prometheus metrics of the gateway, on a registry of its own (served at /metrics)."""
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("model_service_requests_total", "HTTP requests by route and status",
                                ["route", "status"], registry=self.registry)
        self.time_to_first_token = Histogram(
            "model_service_time_to_first_token_seconds", "From request arrival to the first generated token",
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self.inter_token_latency = Histogram(
            "model_service_inter_token_latency_seconds", "Between consecutive generated tokens",
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self.e2e_latency = Histogram(
            "model_service_e2e_request_latency_seconds", "From request arrival to the last token",
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self.prompt_tokens = Counter("model_service_prompt_tokens", "Prompt tokens processed",
                                     registry=self.registry)
        self.generation_tokens = Counter("model_service_generation_tokens", "Tokens generated",
                                         registry=self.registry)
        self.aborted = Counter("model_service_requests_aborted", "Generations stopped because the client left",
                               registry=self.registry)
        self.running = Gauge("model_service_num_requests_running", "Requests generating now",
                             registry=self.registry)
        self.waiting = Gauge("model_service_num_requests_waiting", "Requests waiting for a generation slot",
                             registry=self.registry)
