"""Pure ASGI middleware (no response buffering, so streams and disconnects pass straight through)."""
import hmac
import json

from model_service.metrics import Metrics

ROUTES = ("/health", "/metrics", "/v1/models", "/v1/completions", "/v1/chat/completions", "/v1/embeddings",
          "/v1/load_lora_adapter", "/v1/unload_lora_adapter")
PUBLIC_ROUTES = ("/health",)


class RequestMetricsMiddleware:
    """Counts every request by route and final status."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500

        async def send_recording_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            route = scope["path"] if scope["path"] in ROUTES else "other"
            self.metrics.requests.labels(route=route, status=str(status)).inc()


class ApiKeyMiddleware:
    """With API keys configured, every route but /health needs `Authorization: Bearer <key>`."""

    def __init__(self, app, api_keys: tuple[str, ...]):
        self.app = app
        self.api_keys = tuple(key.encode() for key in api_keys)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.api_keys or scope["path"] in PUBLIC_ROUTES:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        scheme, _, key = headers.get(b"authorization", b"").partition(b" ")
        if scheme.lower() == b"bearer" and any(hmac.compare_digest(key.strip(), k) for k in self.api_keys):
            return await self.app(scope, receive, send)
        body = json.dumps({"error": {"message": "Missing or invalid API key: send 'Authorization: Bearer <key>'.",
                                     "type": "authentication_error", "param": None,
                                     "code": "invalid_api_key"}}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})
