"""Measure a trained checkpoint and write its MODEL_CARD.md (and evaluation.json beside it).

    python -m training.scripts.model_card --config training/configs/demo.yaml
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.config import load_config
from training.evaluate import checkpoint_config, parameter_counts, validation_perplexity
from training.held_out import held_out_report
from training.scripts.samples import samples

SOURCES = {  # what each corpus part is, for the card's data section
    "stdlib": "the CPython standard library source (PSF licence)",
    "python_docs": "Python's documentation sources (PSF licence)",
    "packages": "the Python source of the installed packages whose licence metadata is permissive (each package "
                "and licence in the data manifest; Django, Django REST framework, Celery and Kombu held out)",
    "domain": "the suite's own demo FAQ (as text and as chat examples) and medical demo knowledge",
}


def training_metrics(work_dir: Path) -> list[dict]:
    path = work_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def measure(config_path: str) -> dict:
    config = load_config(config_path)
    checkpoint = Path(config.train.out_dir)
    state = json.loads((checkpoint / "training_state.json").read_text())
    metrics = training_metrics(Path(config.train.work_dir))
    last = metrics[-1] if metrics else state.get("final", {})
    loads = next((m["expert_load"] for m in reversed(metrics) if "expert_load" in m), last.get("expert_load"))
    validation = validation_perplexity(checkpoint, sources=config.data.sources,
                                       fraction=config.data.validation_fraction,
                                       sequence_length=config.data.sequence_length)
    model = checkpoint_config(checkpoint)
    return {
        "config": config_path, "routed_experts": model["n_routed_experts"],
        "parameters": parameter_counts(model),
        "steps": state["steps"], "planned_steps": config.train.max_steps, "training_tokens": state["trained_tokens"],
        "wall_time_s": last.get("elapsed_s") or round(last.get("tokens", 0) / max(last.get("tokens_per_s", 1), 1)),
        "tokens_per_s": last.get("tokens_per_s"), "final_training_loss": last.get("loss"),
        "validation": validation, "held_out": held_out_report(checkpoint),
        "expert_load_max_over_mean": loads["max_over_mean"] if loads else None,
        "samples": samples(checkpoint),
    }


def render(config_path: str, result: dict) -> str:
    params = result["parameters"]
    lines = [
        "# Model card: demo-moe",
        "",
        "A small DeepSeek-V3-architecture Mixture-of-Experts model (transformers' `DeepseekV3ForCausalLM`: "
        f"multi-head latent attention, one shared and {result['routed_experts']} routed experts, sigmoid top-2 "
        "routing with "
        "auxiliary-loss-free load balancing), trained from scratch by this project on 2 CPU cores. "
        "It is a demonstration of the pipeline: its prose and code are weak, and the suite never shows "
        "its text without facts the suite computed itself.",
        "",
        f"Reproduce: `python -m training.pretrain --config {config_path}`; re-measure: "
        f"`python -m training.scripts.model_card --config {config_path}`; samples: "
        "`python -m training.scripts.samples --checkpoint checkpoints/demo-moe`.",
        "",
        "## Measured",
        "",
        "| | |",
        "|---|---|",
        f"| parameters | {params['total']:,} total, {params['active']:,} active per token |",
        f"| training | {result['steps']:,} steps, {result['training_tokens']:,} tokens "
        f"({result['training_tokens'] / params['total']:.1f} tokens per parameter) |",
        f"| wall time | {result['wall_time_s'] / 3600:.2f} h at {result['tokens_per_s']:,.0f} tokens/s "
        "(2 CPU cores, float32, single process) |",
        f"| final training loss | {result['final_training_loss']:.3f} |",
    ]
    if result["steps"] < result["planned_steps"]:
        lines[2:2] = [f"These weights are the export at step {result['steps']:,} of the {result['planned_steps']:,} "
                      "steps the config plans: the run stopped there and is not finished, so the learning rate "
                      "had not yet decayed to its floor.", ""]
    if result["expert_load_max_over_mean"]:
        loads = ", ".join(f"{value:.2f}" for value in result["expert_load_max_over_mean"])
        lines.append(f"| expert load, max/mean per MoE layer (last window; 1.00 = perfectly balanced) | {loads} |")
    lines += ["", "## Validation (held-out documents, 2% of each corpus part by content hash)", "",
              "| corpus part | loss | perplexity | tokens |", "|---|---|---|---|"]
    for source, row in result["validation"].items():
        lines.append(f"| {source} | {row['loss']:.3f} | {row['perplexity']:.2f} | {row['tokens']:,} |")
    held_out = result["held_out"]
    lines += ["", "## Held-out source (bits per byte; lower is better)", "",
              f"{held_out['files']} Python files ({held_out['bytes']:,} bytes) of packages the corpus never holds "
              f"({', '.join(held_out['packages'])}), scored with the model's own tokenizer "
              "(`benchmarks/bits_per_byte.py` measures the same files):", "",
              "| | bits per byte |", "|---|---|",
              f"| this model | {held_out['bits_per_byte']:.3f} |",
              f"| `xz -9e`, each file alone | {held_out['xz_9e_bits_per_byte']:.3f} |"]
    lines += ["", "## Sample completions (greedy)", ""]
    for sample in result["samples"]:
        lines += [f"**{sample['kind']}** — prompt:", "```", sample["prompt"], "```", "completion:", "```",
                  sample["completion"], "```", ""]
    parts = [SOURCES[source] for source in result["validation"]]
    data = f"{'; '.join(parts[:-1])}; and {parts[-1]}" if len(parts) > 1 else parts[0]
    lines += ["## Data", "", f"{data[0].upper()}{data[1:]}. Deduplicated across parts; see the manifest written by "
              "`python -m training.data.prepare`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="training/configs/demo.yaml")
    args = parser.parse_args(argv)
    result = measure(args.config)
    checkpoint = Path(load_config(args.config).train.out_dir)
    (checkpoint / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n")
    (checkpoint / "MODEL_CARD.md").write_text(render(args.config, result))
    print(render(args.config, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
