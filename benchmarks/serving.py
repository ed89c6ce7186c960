"""Serving benchmark: model_service over HTTP vs the raw vLLM OpenAI server, the bare vLLM engine and
the transformers backend.

    .venv/bin/python benchmarks/serving.py            (2 to 6 minutes on 2 cores, as busy as the machine is)

Starts model_service on the tiny random checkpoint with the vLLM backend and, as a process of its
own, vLLM's OpenAI server with the engine settings model_service uses (same checkpoint, bfloat16,
eager mode, max_num_seqs, prefix caching, the CPU environment, the rotary-embedding override). Both
are driven with the same prompts (token ids) by N concurrent streaming clients (closed loop) for N in 1, 4,
16, in ROUNDS interleaved rounds that alternate which server goes first, so machine noise hits both
alike; the ratios model_service / raw vLLM (TTFT p50 and p99, requests/s) are reported per round
with their median and spread. Then, once each: the same workload straight to an in-process vLLM
engine (no HTTP) and to model_service with the transformers backend. Writes
benchmarks/results/serving.json and prints a summary line.
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from model_service.backends.vllm_backend import (  # noqa: E402
    CPU_ENVIRONMENT, STRUCTURED_OUTPUTS, VllmBackend, VllmOptions)
from model_service.checkpoint import Checkpoint  # noqa: E402
from model_service.ports import free_port  # noqa: E402
from tests.model_service_process import RunningServer, start_model_service, start_server_process  # noqa: E402

CONCURRENCY = (1, 4, 16)
REQUESTS_PER_CLIENT = {1: 6, 4: 4, 16: 3}
ROUNDS = 3  # interleaved model_service / raw vLLM rounds
MAX_TOKENS = 32
PROMPT_TOKENS = 300  # approximate prompt length, cut from standard-library source
RESULTS = REPO / "benchmarks" / "results" / "serving.json"


@dataclass
class RequestResult:
    ttft: float  # seconds from sending to the first generated text
    latency: float  # seconds from sending to the end
    tokens: int  # output tokens


@dataclass
class LevelResult:
    concurrency: int
    requests: int
    seconds: float
    requests_per_s: float
    output_tokens_per_s: float
    ttft_p50_ms: float
    ttft_p99_ms: float


def prompts(tokenizer, count: int) -> list[list[int]]:
    """Prompts of PROMPT_TOKENS token ids each, cut from standard-library source. Token ids, as the issue's
    comparison sent them: the raw server then tokenizes nothing, the strictest test of the gateway."""
    import sysconfig

    source = (Path(sysconfig.get_paths()["stdlib"]) / "argparse.py").read_text()
    ids = tokenizer.encode(source, add_special_tokens=False)
    step = max(1, (len(ids) - PROMPT_TOKENS) // count)
    return [ids[i * step:i * step + PROMPT_TOKENS] for i in range(count)]


def tagged(tokenizer, workload: list[list[int]], tag: str) -> list[list[int]]:
    """`workload` made distinct from every other run's by leading tokens naming `tag`, so no request finds
    its prompt in the prefix cache (each server sees each tagged prompt once)."""
    return [tokenizer.encode(f"# {tag}, request {i}\n", add_special_tokens=False) + prompt
            for i, prompt in enumerate(workload)]


def summarise(concurrency: int, results: list[RequestResult], seconds: float) -> LevelResult:
    ttfts = sorted(r.ttft for r in results)
    p99 = ttfts[min(len(ttfts) - 1, int(round(0.99 * (len(ttfts) - 1))))]
    return LevelResult(concurrency, len(results), round(seconds, 3), round(len(results) / seconds, 3),
                       round(sum(r.tokens for r in results) / seconds, 1),
                       round(statistics.median(ttfts) * 1000, 1), round(p99 * 1000, 1))


async def closed_loop(concurrency: int, workload: list, send) -> LevelResult:
    """`concurrency` clients, each sending its share of `workload` one request after another."""
    queue = list(workload[:concurrency * REQUESTS_PER_CLIENT[concurrency]])
    results: list[RequestResult] = []

    async def client():
        while queue:
            results.append(await send(queue.pop()))

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return summarise(concurrency, results, time.perf_counter() - started)


def http_sender(base_url: str, model: str, session: aiohttp.ClientSession):
    async def send(prompt: list[int]) -> RequestResult:
        body = {"model": model, "prompt": prompt, "max_tokens": MAX_TOKENS, "temperature": 0, "stream": True,
                "stream_options": {"include_usage": True}}
        started = time.perf_counter()
        ttft, tokens = None, 0
        async with session.post(base_url + "/v1/completions", json=body) as response:
            response.raise_for_status()
            async for raw in response.content:
                line = raw.decode().strip()
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if chunk["choices"] and ttft is None:
                    ttft = time.perf_counter() - started
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
        return RequestResult(ttft, time.perf_counter() - started, tokens)

    return send


async def run_http(server: RunningServer, tokenizer, workload: list[list[int]], tag: str,
                   levels: tuple[int, ...] = CONCURRENCY) -> list[LevelResult]:
    """The closed loop at each of `levels` clients; prompts tagged with `tag` and the level."""
    model = Path(tokenizer.name_or_path).name
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=300)) as session:
        send = http_sender(server.url, model, session)
        await send(tagged(tokenizer, workload[:1], f"{tag} warm-up")[0])
        return [await closed_loop(c, tagged(tokenizer, workload, f"{tag} level {c}"), send) for c in levels]


def raw_vllm_arguments(checkpoint: Path) -> list[str]:
    """vLLM server flags for the engine settings model_service's vLLM backend uses (its engine_args)."""
    backend = VllmBackend(Checkpoint.load(checkpoint), VllmOptions())
    args = backend.engine_args()
    flags = ["--model", args.model, "--dtype", args.dtype, "--max-model-len", str(args.max_model_len),
             "--max-num-seqs", str(args.max_num_seqs), "--seed", str(args.seed),
             "--compilation-config", json.dumps(backend._compilation_config()),  # args hold it parsed
             "--structured-outputs-config", json.dumps(STRUCTURED_OUTPUTS)]
    flags.append("--enable-prefix-caching" if args.enable_prefix_caching else "--no-enable-prefix-caching")
    if args.enforce_eager:
        flags.append("--enforce-eager")
    if args.disable_log_stats:
        flags.append("--disable-log-stats")
    return flags


def start_raw_vllm(checkpoint: Path, log_dir: Path, timeout: float = 300.0) -> RunningServer:
    """vLLM's own OpenAI server in a process of its own, with the engine settings and CPU environment
    model_service uses."""
    port = free_port()
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", *raw_vllm_arguments(checkpoint),
               "--served-model-name", checkpoint.name, "--host", "127.0.0.1", "--port", str(port),
               "--uvicorn-log-level", "warning", "--disable-uvicorn-access-log"]
    return start_server_process(command, name="vLLM's server", port=port, log_path=log_dir / f"raw-vllm-{port}.log",
                                env=dict(os.environ, HF_HUB_OFFLINE="1", **CPU_ENVIRONMENT), timeout=timeout,
                                ready=lambda server: httpx.get(server.url + "/health", timeout=2).status_code == 200)


async def run_engine(checkpoint: Path, tokenizer, workload: list[list[int]]) -> list[LevelResult]:
    """The same workload on vLLM's AsyncLLM in this process: no HTTP, no gateway."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt
    from vllm.sampling_params import RequestOutputKind

    backend = VllmBackend(Checkpoint.load(checkpoint))  # same engine arguments as model_service
    await backend.start()
    params = SamplingParams(max_tokens=MAX_TOKENS, temperature=0, output_kind=RequestOutputKind.DELTA)
    counter = iter(range(10**9))

    async def send(prompt: list[int]) -> RequestResult:
        started = time.perf_counter()
        ttft, tokens = None, 0
        async for output in backend.engine.generate(TokensPrompt(prompt_token_ids=prompt), params,
                                                    f"bench-{next(counter)}"):
            if ttft is None and output.outputs[0].token_ids:
                ttft = time.perf_counter() - started
            tokens += len(output.outputs[0].token_ids)
        return RequestResult(ttft, time.perf_counter() - started, tokens)

    try:
        await send(tagged(tokenizer, workload[:1], "engine warm-up")[0])
        return [await closed_loop(c, tagged(tokenizer, workload, f"engine level {c}"), send) for c in CONCURRENCY]
    finally:
        await backend.stop()


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "min": min(values), "max": max(values)}


def compare_with_raw_vllm(checkpoint: Path, tokenizer, workload: list[list[int]], log_dir: Path) -> dict:
    """ROUNDS interleaved rounds of model_service and raw vLLM; both servers run throughout."""
    ours = start_model_service(checkpoint, backend="vllm", log_dir=log_dir, extra_args=("--no-embeddings",))
    try:
        raw = start_raw_vllm(checkpoint, log_dir)
    except BaseException:
        ours.stop()
        raise
    rounds = []
    try:
        for number in range(ROUNDS):
            order = [("model_service", ours), ("raw_vllm", raw)]
            if number % 2:
                order.reverse()
            rounds.append({name: asyncio.run(run_http(server, tokenizer, workload, f"round {number}"))
                           for name, server in order})
    finally:
        ours.stop()
        raw.stop()
    levels = {}
    for index, concurrency in enumerate(CONCURRENCY):
        mine = [r["model_service"][index] for r in rounds]
        theirs = [r["raw_vllm"][index] for r in rounds]
        levels[str(concurrency)] = {
            "model_service_vllm": [asdict(level) for level in mine],
            "raw_vllm_server": [asdict(level) for level in theirs],
            "ttft_p50_ratio": spread([ratio(a.ttft_p50_ms, b.ttft_p50_ms) for a, b in zip(mine, theirs)]),
            "ttft_p99_ratio": spread([ratio(a.ttft_p99_ms, b.ttft_p99_ms) for a, b in zip(mine, theirs)]),
            "requests_per_s_ratio": spread([ratio(a.requests_per_s, b.requests_per_s) for a, b in zip(mine, theirs)]),
        }
    return levels


def others(checkpoint: Path, tokenizer, workload: list[list[int]], log_dir: Path) -> dict:
    """One pass each of the in-process engine and model_service with the transformers backend."""
    engine = asyncio.run(run_engine(checkpoint, tokenizer, workload))
    fallback_server = start_model_service(checkpoint, backend="transformers", log_dir=log_dir,
                                          extra_args=("--no-embeddings",))
    try:
        fallback = asyncio.run(run_http(fallback_server, tokenizer, workload, "transformers"))
    finally:
        fallback_server.stop()
    return {str(e.concurrency): {"vllm_engine_in_process": asdict(e), "model_service_transformers": asdict(t)}
            for e, t in zip(engine, fallback)}


def main() -> int:
    from transformers import AutoTokenizer

    from training.scripts.init_checkpoint import init_checkpoint

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    checkpoint = init_checkpoint(work / "tiny-random", seed=0)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    workload = prompts(tokenizer, max(c * REQUESTS_PER_CLIENT[c] for c in CONCURRENCY))
    started = time.perf_counter()

    levels = compare_with_raw_vllm(checkpoint, tokenizer, workload, work)
    for level, row in others(checkpoint, tokenizer, workload, work).items():
        levels[level].update(row)
        ours = statistics.median(r["output_tokens_per_s"] for r in levels[level]["model_service_vllm"])
        row = levels[level]
        row["vllm_speedup_over_transformers"] = ratio(ours, row["model_service_transformers"]["output_tokens_per_s"])
        row["engine_over_model_service_tokens_per_s"] = ratio(row["vllm_engine_in_process"]["output_tokens_per_s"],
                                                              ours)
    report = {
        "benchmark": "serving", "checkpoint": "tiny random DeepseekV3 (bf16, 2 layers, 8 experts)",
        "machine": f"{os.cpu_count()} CPUs", "prompt_tokens": PROMPT_TOKENS, "max_tokens": MAX_TOKENS,
        "requests_per_client": REQUESTS_PER_CLIENT, "rounds": ROUNDS,
        "ratios": "model_service / raw vLLM server, per round: median, min, max", "levels": levels,
        "seconds": round(time.perf_counter() - started, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for level, row in levels.items():
        ours = statistics.median(r["ttft_p50_ms"] for r in row["model_service_vllm"])
        theirs = statistics.median(r["ttft_p50_ms"] for r in row["raw_vllm_server"])
        p50, p99, rps = row["ttft_p50_ratio"], row["ttft_p99_ratio"], row["requests_per_s_ratio"]
        print(f"c={level:>2}: TTFT p50 model_service {ours} ms vs raw vLLM {theirs} ms | ratios (median [min-max]) "
              f"TTFT p50 x{p50['median']} [{p50['min']}-{p50['max']}], p99 x{p99['median']} "
              f"[{p99['min']}-{p99['max']}], req/s x{rps['median']} [{rps['min']}-{rps['max']}] | "
              f"vLLM/transformers x{row['vllm_speedup_over_transformers']}")
    top = levels[str(max(CONCURRENCY))]
    print(f"summary: {max(CONCURRENCY)} clients, model_service / raw vLLM: "
          f"TTFT p50 x{top['ttft_p50_ratio']['median']}, "
          f"p99 x{top['ttft_p99_ratio']['median']}, req/s x{top['requests_per_s_ratio']['median']} "
          f"(median of {ROUNDS} rounds); wrote {RESULTS.relative_to(REPO)} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
