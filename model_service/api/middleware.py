"""Pure ASGI middleware (no response buffering, so streams and disconnects pass straight through)."""
import hmac
import json

from model_service.api.errors import error_body
from model_service.errors import RequestTooLarge, ServiceError, Unauthorized
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
        await _send_error(send, Unauthorized("Missing or invalid API key: send 'Authorization: Bearer <key>'."),
                          (b"www-authenticate", b"Bearer"))


class BodySizeLimitMiddleware:
    """Refuses a request body over `max_bytes` with 413 while it arrives, never buffering more.

    A declared Content-Length over the limit is refused before a byte is read; a chunked body is
    counted as it comes. The accepted body is replayed to the app in one message; later `receive`
    calls go to the server, so the app still hears the client disconnect.
    """

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left before sending its body
                return
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await self._refuse(send)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send) -> None:
        error = RequestTooLarge(f"The request body is larger than this server's limit of {self.max_bytes} bytes.")
        await _send_error(send, error, (b"connection", b"close"))


async def _send_error(send, error: ServiceError, *headers: tuple[bytes, bytes]) -> None:
    """Answer `error` in the OpenAI shape before the app has seen the request."""
    await send({"type": "http.response.start", "status": error.status,
                "headers": [(b"content-type", b"application/json"), *headers]})
    await send({"type": "http.response.body", "body": json.dumps(error_body(error)).encode()})
