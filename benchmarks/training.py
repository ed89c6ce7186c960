"""Training throughput: the demo model's configuration in four setups, side by side, on this machine.

    .venv/bin/python benchmarks/training.py          (about 4 minutes on 2 cores)

1. the project's Trainer, single process (2 threads);
2. the project's Trainer, 2 ranks under the deepspeed launcher with ZeRO stage 3 (gloo, 1 thread each);
3. the project's Trainer, 2 ranks under torchrun with DDP (gloo, 1 thread each);
4. the same model in a bare PyTorch loop (AdamW, no Trainer, no DeepSpeed), the baseline.

Tokens/s are measured after WARMUP steps. Writes benchmarks/results/training.json.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CONFIG = "training/configs/demo.yaml"
STEPS = 30
WARMUP = 5
RESULTS = REPO / "benchmarks" / "results" / "training.json"


def data_settings(work: Path) -> list[str]:
    """A slice of the demo corpus: enough sequences for the run, quick to build."""
    return [f"data.dir={work / 'data'}", "data.sources=[stdlib]", "data.max_documents_per_source=80"]


def overrides(work: Path, name: str, micro_batch: int) -> list[str]:
    settings = [*data_settings(work), f"train.work_dir={work / name}", f"train.out_dir={work / name / 'export'}",
                f"train.max_steps={STEPS}", "train.eval_interval=100000", "train.save_interval=100000",
                "train.log_interval=100000", "train.export_on_save=false", f"train.micro_batch_size={micro_batch}"]
    return [part for setting in settings for part in ("--set", setting)]


def tokens_per_s(work: Path, name: str) -> float:
    records = [json.loads(line) for line in (work / name / "metrics.jsonl").read_text().splitlines()]
    start, end = records[WARMUP - 1], records[-1]
    return (end["tokens"] - start["tokens"]) / (end["elapsed_s"] - start["elapsed_s"])


def run_trainer(work: Path, name: str, launcher: list[str], micro_batch: int, extra: list[str] = ()) -> float:
    env = dict(os.environ, DS_ACCELERATOR="cpu", PYTHONPATH=str(REPO))
    command = [*launcher, "--config", CONFIG, *overrides(work, name, micro_batch), "--no-export", *extra]
    subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return tokens_per_s(work, name)


def run_bare_pytorch(work: Path) -> float:
    """The model alone: forward, cross-entropy, backward, AdamW step. No Trainer, no balancing, no DeepSpeed."""
    import torch
    from transformers import AutoTokenizer, DeepseekV3ForCausalLM

    from training.config import load_config
    from training.data.batches import load_packed

    config = load_config(CONFIG, data_settings(work))
    tokenizer = AutoTokenizer.from_pretrained(work / "data" / "tokenizer")
    torch.manual_seed(0)
    model = DeepseekV3ForCausalLM(config.model.to_hf(bos_token_id=tokenizer.bos_token_id,
                                                     eos_token_id=tokenizer.eos_token_id,
                                                     pad_token_id=tokenizer.pad_token_id))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.lr)
    rows = load_packed(work / "data" / "train.bin", config.data.sequence_length)
    batch_size = config.train.micro_batch_size
    started = None
    for step in range(STEPS):
        if step == WARMUP:
            started = time.perf_counter()
        batch = torch.from_numpy(rows[step * batch_size:(step + 1) * batch_size].astype("int64"))
        logits = model(input_ids=batch[:, :-1], use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (STEPS - WARMUP) * batch_size * config.data.sequence_length / (time.perf_counter() - started)


def main() -> int:
    from training.config import load_config
    from training.data.prepare import prepare_data

    work = Path(tempfile.mkdtemp(prefix="training-bench-"))
    demo = load_config(CONFIG)
    micro = demo.train.micro_batch_size
    prepare_data(load_config(CONFIG, data_settings(work)).data)
    bin_dir = Path(sys.executable).parent
    started = time.perf_counter()
    results = {
        "trainer_single_process": run_trainer(work, "single", [sys.executable, "-m", "training.pretrain"], micro),
        "trainer_deepspeed_zero3_2_ranks": run_trainer(
            work, "zero3", [str(bin_dir / "deepspeed"), "--num_gpus", "2", "--master_port", "29561", "--module",
                            "training.pretrain"], micro // 2, ["--deepspeed", "training/deepspeed/zero3_cpu.json"]),
        "trainer_torchrun_ddp_2_ranks": run_trainer(
            work, "ddp", [str(bin_dir / "torchrun"), "--nproc_per_node", "2", "--master_port", "29562", "-m",
                          "training.pretrain"], micro // 2),
        "bare_pytorch_single_process": run_bare_pytorch(work),
    }
    results = {name: round(value, 1) for name, value in results.items()}
    baseline = results["bare_pytorch_single_process"]
    report = {
        "benchmark": "training", "config": CONFIG, "machine": f"{os.cpu_count()} CPUs",
        "global_batch_sequences": micro, "sequence_length": demo.data.sequence_length, "steps": STEPS,
        "warmup_steps": WARMUP, "tokens_per_s": results,
        "ratio_to_bare_pytorch": {name: round(value / baseline, 3) for name, value in results.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(" | ".join(f"{name} {value:,.0f} tok/s (x{report['ratio_to_bare_pytorch'][name]})"
                     for name, value in results.items()))
    print(f"wrote {RESULTS.relative_to(REPO)} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
