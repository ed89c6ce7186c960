"""An IDE client that gives up on a completion (the user typed on) stops its generation: Django's ASGI
application, served by uvicorn as `make run` serves it, hangs up on model_service when its own client hangs
up. model_service is a stand-in that holds every completion until its client leaves, so what the test sees
is the hang-up itself, with no timing involved."""
import asyncio
import threading

import httpx
import pytest
from django.core.asgi import get_asgi_application

from apps.accounts.services import api_token_create
from tests.asgi_servers import ServedInThread

pytestmark = pytest.mark.slow  # two servers in a thread


class HeldModelService:
    """/v1/models answers; a POST to /v1/completions is held until its client hangs up, which sets `hung_up`."""

    def __init__(self):
        self.received = threading.Event()
        self.hung_up = threading.Event()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body",
                        "body": b'{"object": "list", "data": [{"id": "demo-moe", "object": "model"}]}'})
            return
        while (await receive()).get("more_body"):
            pass
        self.received.set()
        while (await receive())["type"] != "http.disconnect":
            pass
        self.hung_up.set()


async def give_up_once_received(url: str, token: str, received: threading.Event) -> None:
    """Ask for a completion, and hang up once model_service has the request, as an IDE does when the user types."""
    async with httpx.AsyncClient(timeout=60) as client:
        request = asyncio.ensure_future(client.post(
            url, headers={"Authorization": f"Bearer {token}"},
            json={"language": "python", "segments": {"prefix": "def total(items):\n    return ", "suffix": ""}}))
        while not received.is_set():
            assert not request.done(), request.result()
            await asyncio.sleep(0.05)
        request.cancel()


def test_a_completion_whose_client_hangs_up_hangs_up_on_model_service(transactional_db, settings, developer):
    model_service = HeldModelService()
    settings.CODEGEN_MODEL_TIMEOUT = settings.CODEGEN_SINGLE_LINE_MODEL_DEADLINE_S = 120  # only a hang-up ends it
    token = api_token_create(user=developer, name="ide").secret
    with ServedInThread(get_asgi_application(), model_service) as served:
        django_port, model_service_port = served.ports
        settings.MODEL_SERVICE_URL = f"http://127.0.0.1:{model_service_port}"
        asyncio.run(give_up_once_received(f"http://127.0.0.1:{django_port}/api/codegen/v1/completions", token,
                                          model_service.received))

        assert model_service.hung_up.wait(timeout=30)
