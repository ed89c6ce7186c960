"""Load benchmark: streamed support suggestions from many agents at once, some hanging up, on the embedded
SQLite default and on PostgreSQL side by side.

    .venv/bin/python benchmarks/load.py            (10 to 20 minutes on 2 cores, as busy as the machine is)
    .venv/bin/python benchmarks/load.py --sizing   (PostgreSQL with 1 and 2 web processes: WEB_PROCESSES)
    .venv/bin/python benchmarks/load.py --typing   (code completion: 16 IDE clients typing, PostgreSQL)

Starts model_service on the demo checkpoint (vLLM backend, embeddings on) and, per database, prepares a
fresh database with `make run`'s settings (config.settings.local, CUSTOMER_SERVICE_REPHRASE=1 so the model
words every suggestion), imports and indexes the demo FAQ, and serves Django with uvicorn as `make run`
does. Then, per database:

- first-event latency: agents each ask for streamed suggestions in turn, at three levels: 1 agent; 16
  agents working at once (each starts within the first STAGGER_S, so all 16 are in flight together:
  `max_in_flight`); and 16 requests sent in the same instant (one each: a burst, the worst case). The time
  from sending the request to the first `token` event, next to two baselines: model_service's own time to
  first token over the same requests (from its /metrics histogram: the mean, arrival to first token), and
  a client that sends the same schedule of requests straight to model_service, each the chat request the
  web sends for that suggestion (its time to the first generated text, p50). The second is the closer
  one: a p50 next to a p50 (the histogram gives a mean, which a few slow requests pull up), and
  model_service's HTTP handling before its clock starts is on both sides. Each level runs LATENCY_ROUNDS
  rounds, through the web and direct alternating which goes first; its figures are the medians of its
  rounds'. Also the web server's CPU time per suggestion (its processes' user and system time over the
  round). The burst is its own level because its requests queue for the web process's CPU
  behind one another, where working agents' requests arrive spread out: mixed in one level, the median
  fell on either side depending on the share of burst requests;
- the load: 64 agents ask at once, every fourth hangs up after the first event. Reported: failures (an
  error status, a broken stream, a stream without its `done` event), model_service's running requests
  once the last client is done, how the hung-up clients' messages were saved (`interrupted_marked_complete`:
  those whose client left while the model was still streaming to it, yet saved complete; the goal is 0), and
  how many completed suggestions the model worded (the others fell back to the knowledge base's text:
  the model's wording was discarded, or its first token took longer than MODEL_SERVICE_TIMEOUT).

`--typing`: 16 IDE clients type into the demo repository's files at once, a keystroke every
TYPING_KEYSTROKE_S; each keystroke asks for a completion and, as Tabby's agent does, abandons the one
still in flight. Reported: the latency of the completions that were waited for (the last keystroke of a
burst), how many were abandoned, and model_service's running requests afterwards. Then, with nothing
else running, an abandon probe: a multi-line completion is abandoned once model_service generates it,
and the tokens it generates after the client left are counted exactly: model_service logs the times of an
aborted generation's last tokens, the client the time it hung up, both on the machine's monotonic clock.
Writes benchmarks/results/load_typing.json.

PostgreSQL comes from BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres); a database
`bench_load` is created there and dropped afterwards. Writes benchmarks/results/load.json and prints a
summary line.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from model_service.ports import free_port  # noqa: E402
from tests.model_service_process import RunningServer, start_model_service, start_server_process  # noqa: E402

CHECKPOINT = REPO / "checkpoints" / "demo-moe"
RESULTS = REPO / "benchmarks" / "results" / "load.json"
SIZING_RESULTS = REPO / "benchmarks" / "results" / "load_sizing.json"
TYPING_RESULTS = REPO / "benchmarks" / "results" / "load_typing.json"
TYPING_CLIENTS = 16
TYPING_BURSTS = 4  # per client: a place in a file, then a few keystrokes typed there
TYPING_KEYSTROKES = 5
TYPING_KEYSTROKE_S = 0.08  # a brisk typist: 12 characters a second
ABANDON_PROBES = 8
DEMO_REPOSITORY = REPO / "apps" / "codegen" / "demo" / "repository"  # load_demo_repository's (no Django here)
CODEGEN_API = "/api/codegen/v1"
SIZING_PROCESSES = (1, 2)  # web processes compared by --sizing
LOAD_AGENTS = 64
HANG_UP_EVERY = 4  # every fourth agent of the load hangs up after the first event: 25 %
STAGGER_S = 1.0  # working agents start within this (a suggestion streams for longer: all are in flight at once)
LATENCY_ROUNDS = 4  # per level: through the web, then straight to model_service, alternating which goes first
LATENCY_LEVELS = {  # name: (agents, suggestions each, agents start within this many seconds)
    "1_agent": (1, 6, 0.0),
    "16_at_once": (16, 1, 0.0),
    "16_agents": (16, 3, STAGGER_S),
}
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
BENCH_DATABASE = "bench_load"
API = "/api/customer-service/v1"

SETUP = """
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from apps.accounts.models import ApiToken
from apps.accounts.roles import Role
from apps.accounts.services import api_token_create, user_create
from apps.customer_service.dialogue import WORDING_PARAMS, plan_suggestion, wording_messages
from apps.customer_service.management.commands.load_demo_faq import DEMO_FAQ
from apps.customer_service.services import (conversation_create, conversation_message_add, knowledge_base_create,
                                            knowledge_base_import, knowledge_base_reindex)
agent = user_create(username="bench-agent", password="pw-bench-agent-12345", role=Role.SUPPORT_AGENT)
token = api_token_create(user=agent, name="bench", scope=ApiToken.Scope.API).secret
kb = knowledge_base_create(name="Larkspur Market FAQ")
knowledge_base_import(knowledge_base=kb, filename="faq.json", data=DEMO_FAQ.read_bytes())
knowledge_base_reindex(knowledge_base_id=kb.id)
kb.refresh_from_db()  # the index version the reindex set: searched below
questions = list(kb.entries.order_by("id").values_list("question", flat=True))
conversations, model_requests = [], []
for i in range(COUNT):
    conversation = conversation_create(knowledge_base=kb, customer_name=f"customer {i}", assignee=agent)
    message = conversation_message_add(conversation=conversation, user=agent, role="customer",
                                       text=questions[i % len(questions)])
    conversations.append(conversation.id)
    if i >= PLANNED_FROM:  # the latency levels' conversations: what the web will ask the model for each
        plan = plan_suggestion(knowledge_base=kb, history=[message], question=message.text)
        model_requests.append({"messages": wording_messages(message.text, [hit.entry for hit in plan.search.hits]),
                               **WORDING_PARAMS, "stream": True} if plan.answers else None)
print(json.dumps({"token": token, "conversations": conversations, "model_requests": model_requests}))
"""

STATES = """
import json, django
django.setup()
from apps.customer_service.models import Message
ids = json.loads(IDS)
print(json.dumps({str(c): [state, worded_by, text] for c, state, worded_by, text
                  in Message.objects.filter(conversation_id__in=ids, role="assistant")
                  .values_list("conversation_id", "state", "worded_by", "text")}))
"""


def django_env(database_url: str, run_dir: Path, model_service: RunningServer) -> dict[str, str]:
    return dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.local", DEBUG="0", SUITE_RUN_DIR=str(run_dir),
                DATABASE_URL=database_url, MODEL_SERVICE_URL=model_service.url, CUSTOMER_SERVICE_REPHRASE="1",
                CELERY_BROKER_URL="memory://", HF_HUB_OFFLINE="1")


def django_script(script: str, env: dict[str, str], **constants) -> dict:
    prelude = "".join(f"{name} = {value!r}\n" for name, value in constants.items())
    result = subprocess.run([sys.executable, "-c", prelude + script], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


TYPING_SETUP = """
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from apps.accounts.roles import Role
from apps.accounts.services import api_token_create, user_create
from apps.codegen.management.commands.load_demo_repository import DEMO_REPOSITORY
from apps.codegen.services import repository_index, repository_register_trusted_folder
developer = user_create(username="bench-developer", password="pw-bench-developer-12345", role=Role.DEVELOPER)
token = api_token_create(user=developer, name="ide").secret
repository = repository_register_trusted_folder(name="inventory", folder=DEMO_REPOSITORY, shared=True)
repository_index(repository_id=repository.id)
print(json.dumps({"token": token, "repository": repository.id}))
"""


def start_web(env: dict[str, str], log_dir: Path, name: str, token: str, processes: int,
              ready_path: str = f"{API}/conversations/") -> RunningServer:
    port = free_port()

    def ready(server: RunningServer) -> bool:
        return httpx.get(server.url + ready_path, headers={"Authorization": f"Bearer {token}"},
                         timeout=5).status_code == 200

    return start_server_process([sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
                                 "--port", str(port), "--log-level", "warning", "--workers", str(processes)],
                                name=f"web ({name})", port=port,
                                log_path=log_dir / f"web-{name}.log", env=env, ready=ready, timeout=120)


async def suggest(client: httpx.AsyncClient, conversation_id: int, *, hang_up: bool) -> dict:
    """One streamed suggestion: the first event's latency, whether it ended with `done` (and who worded it), or
    why it failed. A client that hangs up leaves after its first event; `ended_before_hang_up` says whether the
    stream's `done` event had already arrived with it (then the suggestion was complete before it left)."""
    started = time.monotonic()
    result = {"conversation": conversation_id, "hang_up": hang_up, "first_event_s": None, "first_text": None,
              "done": False, "worded_by": None, "tokens": 0, "error": None}
    try:
        async with client.stream("POST", f"{API}/conversations/{conversation_id}/suggest?stream=1") as response:
            if response.status_code != 200:
                result["error"] = f"HTTP {response.status_code}: {(await response.aread())[:300]!r}"
                return result
            received = ""
            async for chunk in response.aiter_text():
                received += chunk
                *events, received = received.split("\n\n")
                for event in events:
                    name, _, data = event.partition("\ndata: ")
                    if result["first_event_s"] is None:
                        result["first_event_s"] = time.monotonic() - started
                    if name == "event: token":
                        result["tokens"] += 1
                        if result["first_text"] is None:
                            result["first_text"] = json.loads(data)["text"]
                    elif name == "event: done":
                        result["done"], result["worded_by"] = True, json.loads(data)["worded_by"]
                if hang_up and result["first_event_s"] is not None:
                    result["ended_before_hang_up"] = result["done"]
                    return result  # leaving the block closes the connection mid-stream
        if not result["done"]:
            result["error"] = "the stream ended without its done event"
    except httpx.HTTPError as error:
        result["error"] = repr(error)
    result["total_s"] = time.monotonic() - started
    return result


def left_mid_model_stream(result: dict, worded_by: str, text: str) -> bool:
    """Whether a hung-up client left while the model was still streaming to it: its first token was the model's
    (the saved text is the model's wording, or does not start with that token), and `done` had not come with
    it. A first token that is the knowledge base's own text (the model had failed or timed out) opened a stream
    sent in one burst, which the server may well have completed before the hang-up reached it."""
    if result.get("ended_before_hang_up") is not False or result["first_text"] is None:
        return False
    return bool(worded_by) or not text.startswith(result["first_text"])


def model_metrics(model_service: RunningServer) -> dict[str, float]:
    text = httpx.get(model_service.url + "/metrics", timeout=10).text
    values = {}
    for name in ("model_service_time_to_first_token_seconds_sum", "model_service_time_to_first_token_seconds_count",
                 "model_service_requests_aborted_total", "model_service_generation_tokens_total"):
        match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        values[name] = float(match.group(1)) if match else 0.0
    return values


def generated_tokens(model_service: RunningServer) -> float:
    return model_metrics(model_service)["model_service_generation_tokens_total"]


def model_running(model_service: RunningServer) -> dict[str, int]:
    health = httpx.get(model_service.url + "/health", timeout=10).json()
    return {"queue_running": health["queue"]["running"], "queue_waiting": health["queue"]["waiting"],
            "engine_unfinished": health["engine"]["unfinished_requests"]}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


async def scheduled(agents: int, each: int, start_within_s: float, ask) -> tuple[list[dict], int]:
    """`agents` each make `each` requests in turn (`ask(k)`: the k-th of them all), each agent starting at a
    random moment (seeded) within `start_within_s` of the first. Returns the results and the most requests
    that were in flight at once."""
    rng = random.Random(agents)
    starts = [rng.uniform(0, start_within_s) for _ in range(agents)]
    in_flight = {"now": 0, "max": 0}

    async def agent(index: int) -> list[dict]:
        await asyncio.sleep(starts[index])
        results = []
        for i in range(each):
            in_flight["now"] += 1
            in_flight["max"] = max(in_flight["max"], in_flight["now"])
            results.append(await ask(index * each + i))
            in_flight["now"] -= 1
        return results

    results = [r for rs in await asyncio.gather(*(agent(i) for i in range(agents))) for r in rs]
    return results, in_flight["max"]


async def latency_level(web: RunningServer, token: str, model_service: RunningServer, agents: int, each: int,
                        start_within_s: float, conversations: list[int]) -> dict:
    """One round of a latency level through the web: streamed suggestions on `conversations`, one each."""
    before, cpu_before = model_metrics(model_service), web_cpu_s(web)
    async with httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {token}"}, timeout=300,
                                 limits=httpx.Limits(max_connections=agents * 2)) as client:
        results, max_in_flight = await scheduled(
            agents, each, start_within_s, lambda k: suggest(client, conversations[k], hang_up=False))
    after, web_cpu = model_metrics(model_service), web_cpu_s(web) - cpu_before
    firsts = [r["first_event_s"] for r in results if r["first_event_s"] is not None]
    ttft_count = after["model_service_time_to_first_token_seconds_count"] - \
        before["model_service_time_to_first_token_seconds_count"]
    ttft_sum = after["model_service_time_to_first_token_seconds_sum"] - \
        before["model_service_time_to_first_token_seconds_sum"]
    model_ttft = ttft_sum / ttft_count if ttft_count else None
    first_p50 = percentile(firsts, 0.5)
    return {"max_in_flight": max_in_flight, "suggestions": len(results),
            "failures": sum(1 for r in results if r["error"]),
            "first_event_p50_ms": ms(first_p50), "first_event_p95_ms": ms(percentile(firsts, 0.95)),
            "model_service_ttft_mean_ms": ms(model_ttft), "model_service_generations": int(ttft_count),
            "first_event_minus_model_ttft_ms": ms(first_p50 - model_ttft) if first_p50 and model_ttft else None,
            "end_to_end_p50_ms": ms(percentile([r["total_s"] for r in results if "total_s" in r], 0.5)),
            "token_events_per_suggestion": round(sum(r["tokens"] for r in results) / len(results), 1),
            "web_cpu_ms_per_suggestion": ms(web_cpu / len(results))}


async def first_model_token(client: httpx.AsyncClient, body: dict | None) -> dict:
    """One streamed chat request straight to model_service: the time to its first generated text, read to
    the end as the web reads it. `body` None: the web asks the model nothing for that suggestion."""
    if body is None:
        return {"first_token_s": None, "error": None}
    started, first = time.monotonic(), None
    try:
        async with client.stream("POST", "/v1/chat/completions", json=body) as response:
            if response.status_code != 200:
                return {"first_token_s": None, "error": f"HTTP {response.status_code}"}
            async for line in response.aiter_lines():
                if first is None and line.startswith("data: {"):
                    choices = json.loads(line[len("data: "):])["choices"]
                    if choices and choices[0]["delta"].get("content"):
                        first = time.monotonic() - started
    except httpx.HTTPError as error:
        return {"first_token_s": None, "error": repr(error)}
    return {"first_token_s": first, "error": None if first is not None else "no generated text"}


async def direct_level(model_service: RunningServer, agents: int, each: int, start_within_s: float,
                       model_requests: list[dict | None]) -> dict:
    """The baseline round of a latency level: the same schedule of requests sent straight to model_service,
    each the chat request the web sends for that suggestion."""
    async with httpx.AsyncClient(base_url=model_service.url, timeout=300,
                                 limits=httpx.Limits(max_connections=agents * 2)) as client:
        results, max_in_flight = await scheduled(
            agents, each, start_within_s, lambda k: first_model_token(client, model_requests[k]))
    firsts = [r["first_token_s"] for r in results if r["first_token_s"] is not None]
    return {"max_in_flight": max_in_flight, "requests": len(firsts), "failures": sum(1 for r in results if r["error"]),
            "first_token_p50_ms": ms(percentile(firsts, 0.5)), "first_token_p95_ms": ms(percentile(firsts, 0.95))}


def latency_rounds(web: RunningServer, token: str, model_service: RunningServer, level: tuple[int, int, float],
                   conversations: list[int], model_requests: list[dict | None]) -> dict:
    """LATENCY_ROUNDS rounds of one level, each through the web and straight to model_service (which goes
    first alternates, so a drift of the machine, or a prompt the other round left in the prefix cache, favours
    neither), on conversations of their own; the level's figures are the medians of its rounds'."""
    agents, each, start_within_s = level
    web_rounds, direct_rounds = [], []
    for round_index in range(LATENCY_ROUNDS):
        share = slice(round_index * agents * each, (round_index + 1) * agents * each)
        both = [(web_rounds, latency_level(web, token, model_service, agents, each, start_within_s,
                                           conversations[share])),
                (direct_rounds, direct_level(model_service, agents, each, start_within_s, model_requests[share]))]
        for rounds, measure in (reversed(both) if round_index % 2 else both):
            rounds.append(asyncio.run(measure))

    def median(key: str, rounds: list[dict]) -> float | None:
        values = [r[key] for r in rounds if r[key] is not None]
        return round(statistics.median(values), 1) if values else None

    first_event, direct_first = median("first_event_p50_ms", web_rounds), median("first_token_p50_ms", direct_rounds)
    return {"agents": agents, "suggestions_each": each, "start_within_s": start_within_s,
            "max_in_flight": max(r["max_in_flight"] for r in web_rounds), "rounds": LATENCY_ROUNDS,
            "failures": sum(r["failures"] for r in web_rounds + direct_rounds),
            "first_event_p50_ms": first_event, "direct_first_token_p50_ms": direct_first,
            "first_event_minus_direct_ms": round(first_event - direct_first, 1) if first_event and direct_first else None,
            "first_event_minus_model_ttft_ms": median("first_event_minus_model_ttft_ms", web_rounds),
            "web_cpu_ms_per_suggestion": median("web_cpu_ms_per_suggestion", web_rounds),
            "through_web": web_rounds, "direct": direct_rounds}


async def load(web: RunningServer, token: str, model_service: RunningServer, conversations: list[int]) -> dict:
    before = model_metrics(model_service)
    async with httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {token}"}, timeout=600,
                                 limits=httpx.Limits(max_connections=LOAD_AGENTS * 2)) as client:
        results = await asyncio.gather(*(suggest(client, conversation, hang_up=i % HANG_UP_EVERY == 0)
                                         for i, conversation in enumerate(conversations[:LOAD_AGENTS])))
    deadline = time.monotonic() + 120
    running = model_running(model_service)
    while any(running.values()) and time.monotonic() < deadline:  # hung-up requests still being aborted
        await asyncio.sleep(0.2)
        running = model_running(model_service)
    after = model_metrics(model_service)
    failures = [r for r in results if r["error"]]
    completed = [r for r in results if not r["hang_up"] and r["done"]]
    return {"results": results, "failures": len(failures), "failure_examples": [r["error"] for r in failures[:5]],
            "hung_up": sum(1 for r in results if r["hang_up"]), "completed": len(completed),
            "first_event_p50_ms": ms(percentile([r["first_event_s"] for r in results if r["first_event_s"]], 0.5)),
            "end_to_end_p50_ms": ms(percentile([r["total_s"] for r in completed], 0.5)),
            "end_to_end_p95_ms": ms(percentile([r["total_s"] for r in completed], 0.95)),
            "model_service_after": running,
            "model_service_aborted": int(after["model_service_requests_aborted_total"]
                                         - before["model_service_requests_aborted_total"])}


def web_processes(web: RunningServer) -> list:
    """The web server's processes: uvicorn and, with several processes, each of its workers."""
    import psutil

    process = psutil.Process(web.process.pid)
    return [process, *process.children(recursive=True)]


def web_rss_mib(web: RunningServer) -> float:
    return round(sum(p.memory_info().rss for p in web_processes(web)) / 2**20, 1)


def web_cpu_s(web: RunningServer) -> float:
    """CPU seconds the web server has used (user and system, all its processes)."""
    return sum(times.user + times.system for times in (p.cpu_times() for p in web_processes(web)))


def run_database(name: str, database_url: str, model_service: RunningServer, log_dir: Path,
                 web_processes: int = 1) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix=f"load-{name}-"))
    env = django_env(database_url, run_dir, model_service)
    latency_conversations = LATENCY_ROUNDS * sum(agents * each for agents, each, _ in LATENCY_LEVELS.values())
    started = time.monotonic()
    prepared = django_script(SETUP, env, COUNT=LOAD_AGENTS + latency_conversations, PLANNED_FROM=LOAD_AGENTS)
    print(f"[{name}] database prepared in {time.monotonic() - started:.0f} s", flush=True)
    token, conversations = prepared["token"], prepared["conversations"]
    web = start_web(env, log_dir, name, token, web_processes)
    try:
        load_ids = conversations[:LOAD_AGENTS]
        latency_ids, model_requests = conversations[LOAD_AGENTS:], prepared["model_requests"]
        if not any(model_requests):
            raise RuntimeError("no suggestion would ask the model: the demo knowledge base has no dense index")
        levels = {}
        for level, (agents, each, start_within_s) in LATENCY_LEVELS.items():
            levels[level] = latency_rounds(web, token, model_service, (agents, each, start_within_s), latency_ids,
                                           model_requests)
            used = LATENCY_ROUNDS * agents * each  # each level on conversations no suggestion has answered
            latency_ids, model_requests = latency_ids[used:], model_requests[used:]
            summary = {key: value for key, value in levels[level].items() if key not in ("through_web", "direct")}
            print(f"[{name}] {level}: {summary}", flush=True)
        loaded = asyncio.run(load(web, token, model_service, load_ids))
        loaded["web_rss_mib"] = web_rss_mib(web)
    finally:
        web.stop()
    states = django_script(STATES, env, IDS=json.dumps(load_ids))
    results = loaded.pop("results")
    hung_up = [(r, *states.get(str(r["conversation"]), ["missing", "", ""])) for r in results if r["hang_up"]]
    saved = [state for _, state, _, _ in hung_up]
    loaded["hung_up_saved"] = {state: saved.count(state) for state in sorted(set(saved))}
    mid_model = [state for r, state, worded_by, text in hung_up if left_mid_model_stream(r, worded_by, text)]
    loaded["hung_up_mid_model_stream"] = len(mid_model)
    loaded["interrupted_marked_complete"] = mid_model.count("complete")  # the goal: 0
    loaded["hung_up_after_a_burst_complete"] = saved.count("complete") - mid_model.count("complete")
    completed = [r for r in results if not r["hang_up"] and r["done"]]
    loaded["completed_worded_by_model"] = sum(1 for r in completed if r["worded_by"])
    loaded["completed_grounded_text"] = sum(1 for r in completed if not r["worded_by"])
    print(f"[{name}] load: {loaded}", flush=True)
    return {"latency": levels, "load": loaded}


def postgres_database() -> tuple[str, callable]:
    import psycopg

    admin = psycopg.connect(POSTGRES_URL, autocommit=True)
    admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE}")
    admin.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    url = urlparse(POSTGRES_URL)._replace(path=f"/{BENCH_DATABASE}").geturl()

    def drop():
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        admin.close()

    return url, drop


def latency_summary(levels: dict[str, dict]) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {level['first_event_minus_model_ttft_ms']:+} ms over model TTFT, "
                     f"{level['first_event_minus_direct_ms']:+} ms over a direct client "
                     f"({level['max_in_flight']} in flight)" for name, level in levels.items())


def sizing(model_service: RunningServer, log_dir: Path) -> int:
    """The same measurements on PostgreSQL (compose's database) with 1 and 2 web processes, side by side."""
    report = {"benchmark": "load sizing", "checkpoint": "demo-moe", "backend": "vllm", "database": "postgresql",
              "machine": f"{os.cpu_count()} CPUs", "load_agents": LOAD_AGENTS, "web_processes": {}}
    for processes in SIZING_PROCESSES:
        url, drop = postgres_database()
        try:
            report["web_processes"][str(processes)] = run_database(f"postgresql-{processes}", url, model_service,
                                                                   log_dir, processes)
        finally:
            drop()
    SIZING_RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print("summary: " + " | ".join(
        f"{processes} web processes: first event p50 "
        + latency_summary(result["latency"])
        + f"; load end-to-end p50 {result['load']['end_to_end_p50_ms']} ms, p95 {result['load']['end_to_end_p95_ms']} ms, "
        f"{result['load']['failures']}/{LOAD_AGENTS} failed, web RSS {result['load']['web_rss_mib']} MiB"
        for processes, result in report["web_processes"].items()))
    return 0


def typing_places(seed: int = 0) -> list[tuple[str, str, str]]:
    """(file, text before the place, the characters typed there): the start of a non-blank line."""
    import random

    rng = random.Random(seed)
    files = sorted(DEMO_REPOSITORY.rglob("*.py"))
    places = []
    while len(places) < TYPING_CLIENTS * TYPING_BURSTS:
        path = rng.choice(files)
        text = path.read_text()
        starts = [m.end() for m in re.finditer(r"\n[ ]*", text) if len(text[m.end():].split("\n", 1)[0]) >
                  TYPING_KEYSTROKES + 2]
        if not starts:
            continue
        start = rng.choice(starts)
        places.append((str(path.relative_to(DEMO_REPOSITORY)), text[:start], text[start:start + TYPING_KEYSTROKES]))
    return places


async def typing_client(client: httpx.AsyncClient, repository: int, places: list[tuple[str, str, str]]) -> dict:
    """Types each place's characters one by one; each keystroke abandons the completion in flight and asks for
    one, and the last keystroke's completion is waited for."""
    waited, abandoned, failures = [], 0, []
    for filepath, before, typed in places:
        for count in range(1, len(typed) + 1):
            body = {"language": "python", "repository": repository,
                    "segments": {"prefix": before + typed[:count], "suffix": "\n", "filepath": filepath}}
            started = time.monotonic()
            request = asyncio.ensure_future(client.post(f"{CODEGEN_API}/completions", json=body))
            if count < len(typed):
                await asyncio.wait({request}, timeout=TYPING_KEYSTROKE_S)
                if not request.done():
                    request.cancel()  # closes the connection: the IDE gave up on it
                    abandoned += 1
                    continue
            try:
                response = await request
                if response.status_code != 200:
                    failures.append(f"HTTP {response.status_code}: {response.text[:200]}")
                elif count == len(typed):
                    waited.append(time.monotonic() - started)
            except httpx.HTTPError as error:
                failures.append(repr(error))
            if count < len(typed):
                await asyncio.sleep(max(0.0, TYPING_KEYSTROKE_S - (time.monotonic() - started)))
    return {"waited": waited, "abandoned": abandoned, "failures": failures}


async def typing_level(web: RunningServer, token: str, repository: int, model_service: RunningServer) -> dict:
    places = typing_places()
    before = model_metrics(model_service)
    async with httpx.AsyncClient(base_url=web.url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=120) as client:
        results = await asyncio.gather(*(typing_client(client, repository, places[i::TYPING_CLIENTS])
                                         for i in range(TYPING_CLIENTS)))
    await asyncio.sleep(2)  # what was abandoned last has been hung up on by now
    after = model_metrics(model_service)
    waited = [t for r in results for t in r["waited"]]
    failures = [f for r in results for f in r["failures"]]
    return {"clients": TYPING_CLIENTS, "keystrokes": TYPING_CLIENTS * TYPING_BURSTS * TYPING_KEYSTROKES,
            "keystroke_s": TYPING_KEYSTROKE_S, "waited_for": len(waited),
            "waited_p50_ms": ms(percentile(waited, 0.5)), "waited_p95_ms": ms(percentile(waited, 0.95)),
            "abandoned": sum(r["abandoned"] for r in results), "failures": len(failures),
            "failure_examples": failures[:3],
            "model_service_aborted": int(after["model_service_requests_aborted_total"]
                                         - before["model_service_requests_aborted_total"]),
            "model_service_after": model_running(model_service)}


def abandon_probe(web: RunningServer, token: str, repository: int, model_service: RunningServer) -> dict:
    """Tokens generated after the client left, per abandoned multi-line completion, with nothing else running.
    Greedy, so one sequence is generated (three samples would each count). Exact: model_service logs the
    times of an aborted generation's last tokens on the machine's monotonic clock, and the client notes the
    time it hangs up on the same clock."""
    headers = {"Authorization": f"Bearer {token}"}

    async def abandon(body: dict, start_tokens: float) -> float | None:
        """Hang up once model_service generates; the time of the hang-up, or None: it finished first."""
        async with httpx.AsyncClient(base_url=web.url, headers=headers, timeout=120) as client:
            request = asyncio.ensure_future(client.post(f"{CODEGEN_API}/completions", json=body))
            while not request.done():
                if await asyncio.to_thread(generated_tokens, model_service) > start_tokens:
                    left_at = time.monotonic()
                    request.cancel()
                    await asyncio.wait({request})
                    return left_at
                await asyncio.sleep(0.005)
            return None

    after_leaving, propagation_ms, finished_first, unlogged = [], [], 0, 0
    for probe in range(ABANDON_PROBES):
        body = {"language": "python", "repository": repository, "seed": probe,
                "temperature": 0,  # greedy: one sequence, so the count is per sequence
                "debug_options": {"disable_repository_candidates": True},  # the model is asked
                "segments": {"prefix": f"def restock_{probe}(items):\n    ", "suffix": "\n", "filepath": "probe.py"}}
        logged_before = len(model_service.aborted_generations())
        left_at = asyncio.run(abandon(body, generated_tokens(model_service)))
        deadline = time.monotonic() + 30
        while model_running(model_service)["queue_running"] and time.monotonic() < deadline:
            time.sleep(0.05)
        if left_at is None:
            finished_first += 1
            continue
        records = model_service.aborted_generations()[logged_before:]
        if not records:  # the generation ended on its own just as the client left
            unlogged += 1
            continue
        record = records[0]
        after_leaving.append(sum(1 for t in record["last_token_times"] if t > left_at))
        propagation_ms.append(round((record["aborted_at"] - left_at) * 1000, 1))
    return {"probes": ABANDON_PROBES, "finished_before_the_hang_up": finished_first,
            "ended_without_abort": unlogged, "tokens_after_leaving": after_leaving,
            "tokens_after_leaving_max": max(after_leaving) if after_leaving else None, "goal_max": 2,
            "hang_up_to_abort_ms": propagation_ms}


def typing_benchmark(model_service: RunningServer, log_dir: Path) -> int:
    url, drop = postgres_database()
    try:
        env = django_env(url, Path(tempfile.mkdtemp(prefix="load-typing-")), model_service)
        prepared = django_script(TYPING_SETUP, env)
        token, repository = prepared["token"], prepared["repository"]
        web = start_web(env, log_dir, "typing", token, 1, ready_path=f"{CODEGEN_API}/health")
        try:
            level = asyncio.run(typing_level(web, token, repository, model_service))
            probe = abandon_probe(web, token, repository, model_service)
        finally:
            web.stop()
    finally:
        drop()
    report = {"benchmark": "load --typing", "checkpoint": "demo-moe", "backend": "vllm", "database": "postgresql",
              "machine": f"{os.cpu_count()} CPUs", "typing": level, "abandon_probe": probe}
    TYPING_RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"summary: {TYPING_CLIENTS} typing clients: waited-for completions p50 {level['waited_p50_ms']} ms, "
          f"p95 {level['waited_p95_ms']} ms, {level['abandoned']} abandoned, {level['failures']} failures, "
          f"model_service running after {level['model_service_after']['queue_running']}; tokens generated after "
          f"the client left: max {probe['tokens_after_leaving_max']} of {probe['probes']} probes "
          f"({probe['tokens_after_leaving']}; hang-up to abort {probe['hang_up_to_abort_ms']} ms)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizing", action="store_true",
                        help=f"PostgreSQL only, with {' and '.join(map(str, SIZING_PROCESSES))} web processes")
    parser.add_argument("--typing", action="store_true", help=f"code completion: {TYPING_CLIENTS} IDE clients typing")
    args = parser.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="load-logs-"))
    started = time.monotonic()
    model_service = start_model_service(CHECKPOINT, backend="vllm", log_dir=log_dir, timeout=900,
                                        extra_args=("--log-level", "info") if args.typing else ())  # aborts logged
    print(f"model_service ready in {time.monotonic() - started:.0f} s (logs in {log_dir})", flush=True)
    if args.sizing or args.typing:
        try:
            return sizing(model_service, log_dir) if args.sizing else typing_benchmark(model_service, log_dir)
        finally:
            model_service.stop()
    report = {"benchmark": "load", "checkpoint": "demo-moe", "backend": "vllm", "machine": f"{os.cpu_count()} CPUs",
              "load_agents": LOAD_AGENTS, "hang_up_share": 1 / HANG_UP_EVERY, "latency_rounds": LATENCY_ROUNDS,
              "latency_levels": {name: {"agents": agents, "suggestions_each": each, "start_within_s": start_within_s}
                                 for name, (agents, each, start_within_s) in LATENCY_LEVELS.items()},
              "databases": {}}
    try:
        report["databases"]["sqlite"] = run_database("sqlite", f"sqlite:///{tempfile.mkdtemp()}/db.sqlite3",
                                                     model_service, log_dir)
        url, drop = postgres_database()
        try:
            report["databases"]["postgresql"] = run_database("postgresql", url, model_service, log_dir)
        finally:
            drop()
    finally:
        model_service.stop()
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    parts = []
    for name, result in report["databases"].items():
        loaded, levels = result["load"], result["latency"]
        parts.append(f"{name}: {loaded['failures']}/{LOAD_AGENTS} failed, model_service running after "
                     f"{loaded['model_service_after']['queue_running']}, marked complete "
                     f"{loaded['interrupted_marked_complete']}/{loaded['hung_up_mid_model_stream']} of the clients "
                     f"that left mid model stream, first event p50 "
                     + latency_summary(levels))
    print("summary: " + " | ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
