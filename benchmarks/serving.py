"""Serving benchmark: model_service over HTTP vs the bare vLLM engine vs the transformers backend.

    .venv/bin/python benchmarks/serving.py            (about 3 minutes on 2 cores)

Starts model_service on the tiny random checkpoint with the vLLM backend and drives it with N
concurrent streaming clients (closed loop) for N in 1, 4, 16; sends the same workload straight to
an in-process vLLM engine (no HTTP) and to model_service with the transformers backend. Writes
benchmarks/results/serving.json and prints the ratios: gateway overhead (engine / HTTP output
tokens per second) and the vLLM speedup over transformers.
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

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.model_service_process import start_model_service  # noqa: E402

CONCURRENCY = (1, 4, 16)
REQUESTS_PER_CLIENT = 4
MAX_TOKENS = 32
PROMPT_TOKENS = 200  # approximate prompt length, cut from standard-library source
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
    """Distinct prompts of PROMPT_TOKENS tokens each (distinct: no prefix-cache shortcuts)."""
    import sysconfig

    source = (Path(sysconfig.get_paths()["stdlib"]) / "argparse.py").read_text()
    ids = tokenizer.encode(source, add_special_tokens=False)
    step = max(1, (len(ids) - PROMPT_TOKENS) // count)
    return [ids[i * step:i * step + PROMPT_TOKENS] for i in range(count)]


def summarise(concurrency: int, results: list[RequestResult], seconds: float) -> LevelResult:
    ttfts = sorted(r.ttft for r in results)
    p99 = ttfts[min(len(ttfts) - 1, int(round(0.99 * (len(ttfts) - 1))))]
    return LevelResult(concurrency, len(results), round(seconds, 3), round(len(results) / seconds, 3),
                       round(sum(r.tokens for r in results) / seconds, 1),
                       round(statistics.median(ttfts) * 1000, 1), round(p99 * 1000, 1))


async def closed_loop(concurrency: int, workload: list[list[int]], send) -> LevelResult:
    """`concurrency` clients, each sending its share of `workload` one request after another."""
    queue = list(workload[:concurrency * REQUESTS_PER_CLIENT])
    results: list[RequestResult] = []

    async def client():
        while queue:
            results.append(await send(queue.pop()))

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return summarise(concurrency, results, time.perf_counter() - started)


def http_sender(base_url: str, client: httpx.AsyncClient):
    async def send(prompt: list[int]) -> RequestResult:
        body = {"prompt": prompt, "max_tokens": MAX_TOKENS, "temperature": 0, "stream": True,
                "stream_options": {"include_usage": True}}
        started = time.perf_counter()
        ttft, tokens = None, 0
        async with client.stream("POST", base_url + "/v1/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if chunk["choices"] and ttft is None:
                    ttft = time.perf_counter() - started
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
        return RequestResult(ttft, time.perf_counter() - started, tokens)

    return send


async def run_http(base_url: str, workload: list[list[int]]) -> list[LevelResult]:
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=64)) as client:
        await http_sender(base_url, client)(workload[0])  # warm-up
        return [await closed_loop(c, workload, http_sender(base_url, client)) for c in CONCURRENCY]


async def run_engine(checkpoint: Path, workload: list[list[int]]) -> list[LevelResult]:
    """The same workload on vLLM's AsyncLLM in this process: no HTTP, no gateway."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt
    from vllm.sampling_params import RequestOutputKind

    from model_service.backends.vllm_backend import VllmBackend
    from model_service.checkpoint import Checkpoint

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
        await send(workload[0])  # warm-up
        return [await closed_loop(c, workload, send) for c in CONCURRENCY]
    finally:
        await backend.stop()


def served(checkpoint: Path, backend: str, workload: list[list[int]], log_dir: Path) -> list[LevelResult]:
    server = start_model_service(checkpoint, backend=backend, log_dir=log_dir, extra_args=("--no-embeddings",))
    try:
        return asyncio.run(run_http(server.url, workload))
    finally:
        server.stop()


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def main() -> int:
    from transformers import AutoTokenizer

    from training.scripts.init_checkpoint import init_checkpoint

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    checkpoint = init_checkpoint(work / "tiny-random", seed=0)
    workload = prompts(AutoTokenizer.from_pretrained(checkpoint), max(CONCURRENCY) * REQUESTS_PER_CLIENT)
    started = time.perf_counter()

    http_vllm = served(checkpoint, "vllm", workload, work)
    engine_vllm = asyncio.run(run_engine(checkpoint, workload))
    http_transformers = served(checkpoint, "transformers", workload, work)

    levels = {}
    for http, engine, fallback in zip(http_vllm, engine_vllm, http_transformers):
        levels[str(http.concurrency)] = {
            "model_service_vllm": asdict(http), "vllm_engine_in_process": asdict(engine),
            "model_service_transformers": asdict(fallback),
            "gateway_overhead": ratio(engine.output_tokens_per_s, http.output_tokens_per_s),
            "vllm_speedup_over_transformers": ratio(http.output_tokens_per_s, fallback.output_tokens_per_s),
        }
    report = {
        "benchmark": "serving", "checkpoint": "tiny random DeepseekV3 (bf16, 2 layers, 8 experts)",
        "machine": f"{os.cpu_count()} CPUs", "prompt_tokens": PROMPT_TOKENS, "max_tokens": MAX_TOKENS,
        "requests_per_client": REQUESTS_PER_CLIENT, "levels": levels,
        "seconds": round(time.perf_counter() - started, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for level, row in levels.items():
        http = row["model_service_vllm"]
        print(f"c={level:>2}: model_service+vLLM {http['output_tokens_per_s']} tok/s "
              f"(TTFT p50 {http['ttft_p50_ms']} ms, p99 {http['ttft_p99_ms']} ms) | "
              f"engine {row['vllm_engine_in_process']['output_tokens_per_s']} tok/s | "
              f"transformers {row['model_service_transformers']['output_tokens_per_s']} tok/s | "
              f"gateway overhead x{row['gateway_overhead']} | vLLM/transformers x{row['vllm_speedup_over_transformers']}")
    print(f"wrote {RESULTS.relative_to(REPO)} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
