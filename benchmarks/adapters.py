"""Adapter training on the demo model: time and tokens/s for 1,000 chat examples, and the evaluation
gate's numbers (base model vs the new adapter) on held-out examples.

    .venv/bin/python benchmarks/adapters.py        (about 5 minutes on 2 cores)

The examples are the demo FAQ's questions and phrasings, each asked in a few ways ("Hi! ...",
"... Thanks.") until there are 1,000, in the prompt the customer-service app sends the model (as a
dataset built from a knowledge base is), answered with the entry's answer; the split holds out by
content hash.
Results: benchmarks/results/adapters.json.
"""
from __future__ import annotations

import json
import os
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
from training.adapters import train_adapter  # noqa: E402
from training.data.corpus import DEMO_FAQ  # noqa: E402

CHECKPOINT = REPO / "checkpoints" / "demo-moe"
RESULTS = REPO / "benchmarks" / "results" / "adapters.json"
EXAMPLES = 1_000
FRAMES = ("{q}", "Hi! {q}", "{q} Thanks.", "Hello, quick question: {q}")


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


def main() -> int:
    started = time.perf_counter()
    dataset = parse_examples(chat_examples())
    config = AdapterConfig()  # the recommended defaults: lr 2e-5, 256 sequences per step, 3 epochs
    out = Path(tempfile.mkdtemp(prefix="adapter-bench-")) / "customer_service"
    summary = train_adapter(CHECKPOINT, dataset.train, out, config)
    gate = evaluation_gate(checkpoint=CHECKPOINT, examples=dataset.validation, new_adapter=out, current_adapter=None)
    report = {"benchmark": "adapters", "checkpoint": "checkpoints/demo-moe", "examples": EXAMPLES,
              "train_examples": len(dataset.train), "validation_examples": len(dataset.validation),
              "config": summary["config"], "training_seconds": summary["seconds"], "steps": summary["steps"],
              "tokens": summary["tokens"], "tokens_per_s": round(summary["tokens"] / summary["seconds"], 1),
              "final_loss": round(summary["final_loss"], 4), "gate": gate,
              "seconds": round(time.perf_counter() - started, 1)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"trained on {len(dataset.train)} examples in {report['training_seconds']} s "
          f"({report['tokens_per_s']} tokens/s, {summary['steps']} steps); validation loss base "
          f"{gate['base']['validation_loss']} -> adapter {gate['new']['validation_loss']}, answer F1 "
          f"{gate['base']['answer_f1']} -> {gate['new']['answer_f1']}; gate {'passed' if gate['gate']['passed'] else 'refused'}")
    print(f"wrote {RESULTS.relative_to(REPO)} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
