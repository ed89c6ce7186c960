"""Adapters on the demo model, side by side in one run: what training with the defaults gains, and what
serving a promoted adapter costs.

    .venv/bin/python benchmarks/adapters.py                     (about 15 minutes on 2 busy cores)
    .venv/bin/python benchmarks/adapters.py --part training     (the gain only)
    .venv/bin/python benchmarks/adapters.py --part serving      (the speed only, with a short-trained adapter)

Training: 1,000 chat examples from the demo FAQ's questions and phrasings, each asked in a few ways
("Hi! ...", "... Thanks.") in the prompt the customer-service app sends the model (as a dataset built from
a knowledge base is), answered with the entry's answer; the split holds out by content hash. The adapter
is trained with the defaults (training.adapter_config.AdapterConfig) and the evaluation gate scores the
base model and the adapter on the held-out examples: validation loss and answer F1.

Serving: the adapter merged into the base weights (training.adapters.merge_adapter, as promotion does)
and, under another name, the same adapter without its merged checkpoint, loaded into one model_service
on the vLLM backend: `merged-vllm` (its own vLLM engine) and `peft-beside` (PEFT in a transformers engine
beside vLLM). The base model, the merged adapter and the PEFT adapter are driven in ROUNDS interleaved
rounds by 1 and 4 concurrent streaming clients (closed loop, ~300-token prompts, 32 output tokens, the
workload of benchmarks/serving.py); medians over the rounds, and ratios adapter / base. The memory each
strategy costs is the resident memory (RSS) of model_service and its engine processes before and after
each load.
Results: benchmarks/results/adapters.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import django

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
django.setup()  # settings only (the app's prompt depends on them); no database is used

from apps.adapters.datasets import parse_examples  # noqa: E402
from apps.adapters.evaluation import evaluation_gate  # noqa: E402
from apps.customer_service.dialogue import wording_messages  # noqa: E402
from training.adapter_config import AdapterConfig  # noqa: E402
from training.adapters import merge_adapter, train_adapter  # noqa: E402
from training.data.corpus import DEMO_FAQ  # noqa: E402

CHECKPOINT = REPO / "checkpoints" / "demo-moe"
RESULTS = REPO / "benchmarks" / "results" / "adapters.json"
EXAMPLES = 1_000
FRAMES = ("{q}", "Hi! {q}", "{q} Thanks.", "Hello, quick question: {q}")
LEVELS = (1, 4)  # concurrent clients
# Interleaved rounds over base, merged adapter, PEFT adapter. 4 clients send only 16 requests a round, so one
# round's TTFT p50 is noisy (the base's ranged from 49 to 86 ms in one run); the ratios use medians over rounds.
ROUNDS = 7
SERVING_ONLY_EXAMPLES = 64  # --part serving trains on this many (one epoch): any adapter measures speed


def chat_examples() -> list[dict]:
    entries = json.loads(DEMO_FAQ.read_text())
    examples = []
    while len(examples) < EXAMPLES:
        frame = FRAMES[len(examples) // sum(1 + len(e["phrasings"]) for e in entries) % len(FRAMES)]
        for entry in entries:
            for question in [entry["question"], *entry["phrasings"]]:
                prompt = wording_messages(frame.format(q=question), [SimpleNamespace(**entry)])
                examples.append({"messages": [*prompt, {"role": "assistant", "content": entry["answer"]}]})
    return examples[:EXAMPLES]


def train(out: Path, config: AdapterConfig, *, evaluate: bool, limit: int | None = None) -> dict:
    dataset = parse_examples(chat_examples())
    summary = train_adapter(CHECKPOINT, dataset.train[:limit], out, config)
    report = {"examples": EXAMPLES, "train_examples": len(dataset.train),
              "validation_examples": len(dataset.validation), "config": summary["config"],
              "training_seconds": summary["seconds"], "steps": summary["steps"], "tokens": summary["tokens"],
              "tokens_per_s": round(summary["tokens"] / summary["seconds"], 1),
              "final_loss": round(summary["final_loss"], 4)}
    if evaluate:
        gate = evaluation_gate(checkpoint=CHECKPOINT, examples=dataset.validation, new_adapter=out,
                               current_adapter=None)
        report["gate"] = gate
        report["answer_f1_gain"] = round(gate["new"]["answer_f1"] - gate["base"]["answer_f1"], 4)
    return report


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants (model_service and its engine processes)."""
    import psutil

    process = psutil.Process(pid)
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return round(total / 2**20, 1)


def serve(adapter: Path, log_dir: Path) -> dict:
    """The merged adapter and the PEFT adapter beside the base model in one model_service, measured."""
    import httpx
    from transformers import AutoTokenizer

    from benchmarks.serving import prompts
    from tests.model_service_process import start_model_service

    adapters_dir = adapter.parent
    merge_adapter(CHECKPOINT, adapter)
    peft_only = adapters_dir / "customer_service_peft"
    shutil.rmtree(peft_only, ignore_errors=True)
    peft_only.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy2(adapter / name, peft_only / name)
    server = start_model_service(CHECKPOINT, backend="vllm", log_dir=log_dir, extra_args=("--no-embeddings",),
                                 adapters_dir=adapters_dir, timeout=600)
    try:
        time.sleep(5)  # let the start settle before reading memory
        memory = {"base_only_mib": tree_rss_mib(server.process.pid)}
        served = {}
        for name, folder, key in (("customer_service", adapter.name, "with_merged_engine_mib"),
                                  ("customer_service_peft", peft_only.name, "with_peft_beside_too_mib")):
            loaded = httpx.post(server.url + "/v1/load_lora_adapter", json={"lora_name": name, "lora_path": folder},
                                timeout=600).json()
            served[name] = loaded["serving"]
            time.sleep(5)
            memory[key] = tree_rss_mib(server.process.pid)
        memory["merged_engine_mib"] = round(memory["with_merged_engine_mib"] - memory["base_only_mib"], 1)
        memory["peft_beside_mib"] = round(memory["with_peft_beside_too_mib"] - memory["with_merged_engine_mib"], 1)
        tokenizer = AutoTokenizer.from_pretrained(CHECKPOINT)
        workload = prompts(tokenizer, 64)
        models = {"base": CHECKPOINT.name, "merged": "customer_service", "peft_beside": "customer_service_peft"}
        rounds = asyncio.run(_rounds(server.url, tokenizer, workload, models))
    finally:
        server.stop()
    medians = {side: {str(level): _median(rounds, side, level) for level in LEVELS} for side in models}
    ratios = {side: {str(level): {
        "output_tokens_per_s": round(medians[side][str(level)]["output_tokens_per_s"] /
                                     medians["base"][str(level)]["output_tokens_per_s"], 2),
        "ttft_p50": round(medians[side][str(level)]["ttft_p50_ms"] / medians["base"][str(level)]["ttft_p50_ms"], 2)}
        for level in LEVELS} for side in ("merged", "peft_beside")}
    return {"strategies": served, "memory": memory, "medians": medians, "ratios_to_base": ratios, "rounds": rounds}


async def _rounds(url: str, tokenizer, workload: list[list[int]], models: dict[str, str]) -> list[dict]:
    import aiohttp

    from benchmarks.serving import closed_loop, http_sender, tagged

    results = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64),
                                     timeout=aiohttp.ClientTimeout(total=600)) as session:
        senders = {side: http_sender(url, model, session) for side, model in models.items()}
        for side, send in senders.items():  # warm-up
            await send(tagged(tokenizer, workload[:1], f"{side} warm-up")[0])
        sides = list(models)
        for index in range(ROUNDS):
            order = sides[index % len(sides):] + sides[:index % len(sides)]  # who goes first rotates
            row = {}
            for side in order:
                row[side] = {str(level): _level(await closed_loop(
                    level, tagged(tokenizer, workload, f"{side} round {index} level {level}"), senders[side]))
                    for level in LEVELS}
            results.append(row)
            print(f"round {index + 1}/{ROUNDS}: " + "; ".join(
                f"{side} {row[side]['1']['output_tokens_per_s']}/{row[side]['4']['output_tokens_per_s']} tok/s"
                for side in sides), flush=True)
    return results


def _level(result) -> dict:
    return {"output_tokens_per_s": result.output_tokens_per_s, "ttft_p50_ms": result.ttft_p50_ms,
            "requests": result.requests}


def _median(rounds: list[dict], side: str, level: int) -> dict:
    return {key: round(statistics.median(row[side][str(level)][key] for row in rounds), 1)
            for key in ("output_tokens_per_s", "ttft_p50_ms")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("all", "training", "serving"), default="all")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="adapter-bench-"))
    out = work / "adapters" / "customer_service"
    report = {"benchmark": "adapters", "checkpoint": "checkpoints/demo-moe",
              "load_average_at_start": [round(load, 1) for load in os.getloadavg()],  # a busy machine skews speed
              "cpus": os.cpu_count()}
    if RESULTS.exists():  # a part run keeps the other part's last figures
        report.update({k: v for k, v in json.loads(RESULTS.read_text()).items() if k in ("training", "serving")})
    if args.part in ("all", "training"):
        report["training"] = training = train(out, AdapterConfig(), evaluate=True)
        gate = training["gate"]
        print(f"trained on {training['train_examples']} examples in {training['training_seconds']} s "
              f"({training['tokens_per_s']} tokens/s, {training['steps']} steps); validation loss base "
              f"{gate['base']['validation_loss']} -> adapter {gate['new']['validation_loss']}, answer F1 "
              f"{gate['base']['answer_f1']} -> {gate['new']['answer_f1']} ({training['answer_f1_gain']:+.3f}); "
              f"gate {'passed' if gate['gate']['passed'] else 'refused'}", flush=True)
    if args.part in ("all", "serving"):
        if not (out / "adapter_model.safetensors").exists():
            train(out, AdapterConfig(epochs=1), evaluate=False, limit=SERVING_ONLY_EXAMPLES)
        report["serving"] = serving = serve(out, work)
        for side in ("merged", "peft_beside"):
            r = serving["ratios_to_base"][side]
            print(f"{side}: tokens/s x{r['1']['output_tokens_per_s']} / x{r['4']['output_tokens_per_s']} of the base "
                  f"at 1 / 4 clients, TTFT p50 x{r['1']['ttft_p50']} / x{r['4']['ttft_p50']}")
        print(f"memory: base {serving['memory']['base_only_mib']} MiB, merged engine "
              f"+{serving['memory']['merged_engine_mib']} MiB, PEFT beside +{serving['memory']['peft_beside_mib']} MiB")
    report["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
