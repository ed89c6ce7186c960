"""Suggestions stream for real: Django's ASGI application served by uvicorn, as `make run` serves it, with
model_service behind a gate that holds a chat stream after its first token until the test opens it. What
the client reads while the gate is shut was sent before the model had finished: no timing involved."""
import asyncio
import json
import threading
import time

import httpx
import pytest
from django.core.asgi import get_asgi_application

from asgiref.sync import async_to_sync

from apps.accounts.models import ApiToken
from apps.accounts.roles import Role
from apps.accounts.services import api_token_create
from apps.core.errors import ApplicationError
from apps.core.model_client import ModelServiceUnavailable
from apps.customer_service.dialogue import ModelWording
from apps.customer_service.models import Conversation, KnowledgeBase, Message
from apps.customer_service.services.conversations import _stream
from apps.customer_service.services import (conversation_create, conversation_message_add, knowledge_base_create,
                                            knowledge_base_import, knowledge_base_reindex, message_feedback)
from tests.asgi_servers import ServedInThread
from tests.users import user_fixture

agent = user_fixture("agent", Role.SUPPORT_AGENT)
CSV = ("question,answer,phrasings,tags\n"
       "How long do I have to return an item?,You can return items within 30 days of delivery.,"
       "What is the return window?|How many days to send something back?,returns\n"
       "Do you ship to the UK?,Yes: UK delivery takes 3 to 5 working days.,Can I order from Britain?,shipping\n")
QUESTION = "How many days do I have to send a jumper back?"  # answered confidently: the model words it


class Gate:
    """A pass-through proxy to model_service (an ASGI app), except that a chat stream stops after its first
    event with text until `open()`; `hung_up` is set when the stream's client leaves while it waits."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.loop: asyncio.AbstractEventLoop | None = None
        self.opened: asyncio.Event | None = None
        self.hung_up = threading.Event()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop it is served on (ServedInThread's on_loop)."""
        self.loop, self.opened = loop, asyncio.Event()

    def open(self) -> None:
        self.loop.call_soon_threadsafe(self.opened.set)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        async with httpx.AsyncClient(timeout=120) as client:
            request = client.build_request(scope["method"], self.upstream + scope["path"], content=body,
                                           headers={"content-type": "application/json"})
            response = await client.send(request, stream=True)
            try:
                await send({"type": "http.response.start", "status": response.status_code,
                            "headers": [(b"content-type", response.headers["content-type"].encode())]})
                gated = scope["path"] == "/v1/chat/completions"
                async for line in response.aiter_lines():
                    await send({"type": "http.response.body", "body": line.encode() + b"\n", "more_body": True})
                    if gated and line.startswith("data: {") and _has_text(line):
                        gated = False
                        if not await self._wait_for_opening(receive):
                            self.hung_up.set()
                            return  # closing the upstream response hangs up on model_service
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                await response.aclose()

    async def _wait_for_opening(self, receive) -> bool:
        """True once opened; False when the client hung up first."""
        opened = asyncio.ensure_future(self.opened.wait())
        disconnected = asyncio.ensure_future(_disconnect(receive))
        await asyncio.wait({opened, disconnected}, return_when=asyncio.FIRST_COMPLETED)
        opened.cancel()
        disconnected.cancel()
        return self.opened.is_set()


def _has_text(line: str) -> bool:
    choices = json.loads(line.removeprefix("data: "))["choices"]
    return bool(choices and choices[0]["delta"].get("content"))


async def _disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class Servers(ServedInThread):
    """Django's ASGI application and the gate."""

    def __init__(self, gate: Gate):
        super().__init__(get_asgi_application(), gate, on_loop=gate.bind)
        self.gate = gate
        self.django_port, self.gate_port = self.ports


@pytest.fixture
def shop_kb(transactional_db, with_model_service):
    """Two entries, indexed (a small knowledge base indexes in a moment, the demo FAQ takes a while)."""
    knowledge_base = knowledge_base_create(name="Shop FAQ")
    knowledge_base_import(knowledge_base=knowledge_base, filename="faq.csv", data=CSV.encode())
    knowledge_base_reindex(knowledge_base_id=knowledge_base.id)
    return knowledge_base


@pytest.fixture
def servers(settings, shop_kb, with_model_service):
    """Rephrasing on, so the suggestion streams model_service's tokens, through the gate."""
    gate = Gate(with_model_service.url)
    with Servers(gate) as running:
        settings.MODEL_SERVICE_URL = f"http://127.0.0.1:{running.gate_port}"
        settings.CUSTOMER_SERVICE_REPHRASE = True
        yield running


@pytest.fixture
def conversation(shop_kb, agent):
    conversation = conversation_create(knowledge_base=shop_kb, customer_name="Ada", assignee=agent)
    conversation_message_add(conversation=conversation, user=agent, role="customer", text=QUESTION)
    return conversation


@pytest.fixture
def api(servers, agent):
    secret = api_token_create(user=agent, name="console", scope=ApiToken.Scope.API).secret
    with httpx.Client(base_url=f"http://127.0.0.1:{servers.django_port}",
                      headers={"Authorization": f"Bearer {secret}"}, timeout=60) as client:
        yield client  # the timeout fails a stream that sends nothing before the gate opens


def events(response):
    """(event, data) of a Server-Sent Events response, as they arrive."""
    name = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield name, json.loads(line.removeprefix("data: "))


def suggestion(conversation) -> Message:
    return conversation.messages.get(role=Message.Role.ASSISTANT)


@pytest.mark.slow
def test_the_first_token_reaches_the_client_while_the_model_is_still_generating(api, servers, conversation):
    with api.stream("POST", f"/api/customer-service/v1/conversations/{conversation.id}/suggest?stream=1") as response:
        stream = events(response)
        first = next(stream)
        state_while_gated = suggestion(conversation).state
        servers.gate.open()
        rest = list(stream)

    message = suggestion(conversation)
    tokens = [data["text"] for name, data in [first, *rest] if name == "token"]
    done = rest[-1][1]
    assert response.status_code == 200
    assert first[0] == "token" and first[1]["text"]
    assert state_while_gated == "streaming"
    assert [name for name, _ in rest] == ["token"] * (len(rest) - 1) + ["done"]
    assert (done["state"], message.state) == ("complete", "complete")
    assert done["text"] == message.text
    assert "".join(tokens).endswith("[replaced by the knowledge-base answer]\n" + message.text) or \
        ("".join(tokens).strip(), message.worded_by) == (message.text, "base model")


@pytest.mark.slow
def test_a_client_that_hangs_up_mid_stream_leaves_the_suggestion_interrupted(api, servers, conversation, agent):
    with api.stream("POST", f"/api/customer-service/v1/conversations/{conversation.id}/suggest?stream=1") as response:
        first = next(events(response))
    # the client has left while model_service's stream waits at the gate

    assert servers.gate.hung_up.wait(timeout=60)  # Django hung up on model_service in turn
    deadline = time.monotonic() + 30
    while suggestion(conversation).state == "streaming" and time.monotonic() < deadline:
        time.sleep(0.05)
    message = suggestion(conversation)
    with pytest.raises(ApplicationError) as refused:
        message_feedback(message=message, user=agent, action="accepted")
    listed = api.get(f"/api/customer-service/v1/conversations/{conversation.id}").json()["messages"]
    assert first[0] == "token"
    assert (message.state, message.worded_by) == ("interrupted", "")
    assert (refused.value.status, refused.value.code) == (409, "suggestion_incomplete")
    assert [m["state"] for m in listed] == ["complete", "interrupted"]


async def _timed_out(*parts: str):
    for part in parts:
        yield part
    raise ModelServiceUnavailable("model_service did not answer in time: ReadTimeout")


@async_to_sync
async def _streamed(stream) -> list[str]:
    return [part async for part in stream]


def test_a_model_that_fails_streams_the_grounded_text_instead(db):
    """Before its first token (too slow under load) or mid-stream: the client is never left without the text."""
    conversation = Conversation.objects.create(knowledge_base=KnowledgeBase.objects.create(name="kb"))
    grounded = "Returns are free within 30 days of delivery."
    early, late = (Message.objects.create(conversation=conversation, role="assistant", text=grounded,
                                          state="streaming") for _ in range(2))

    before_first_token = _streamed(_stream(early, grounded, ModelWording("shop", _timed_out())))
    mid_stream = _streamed(_stream(late, grounded, ModelWording("shop", _timed_out("Good news: ", "returns "))))

    early.refresh_from_db()
    late.refresh_from_db()
    assert "".join(before_first_token) == grounded
    assert "".join(mid_stream) == "Good news: returns \n\n[replaced by the knowledge-base answer]\n" + grounded
    assert [(m.text, m.worded_by, m.state) for m in (early, late)] == [(grounded, "", "complete")] * 2
