"""The LoRA adapter training settings, torch-free: the web processes (the adapters API and console)
read and check them without importing torch or peft; `training.adapters` trains with them.

Two sets of defaults, chosen for the data an admin has:
- demo-sized datasets (hundreds to a few thousand examples, the demo knowledge base's ~900): the
  dataclass defaults below, chosen by measured runs of benchmarks/adapters.py on the demo knowledge
  base (its docstring and the README give the figures): a LoRA learning rate with warmup and cosine
  decay, small batches so that a few hundred examples still make dozens of optimizer steps;
- large datasets (tens of thousands of examples and more, real DeepSeek checkpoints): the seed's
  table, `LARGE_DATASET`: lr 1e-5 to 3e-5, 256 to 1,024 sequences per step, 3 to 5 epochs.
`recommended_config(examples)` picks between them by dataset size.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class AdapterConfig:
    rank: int = 16  # LoRA rank
    alpha: int = 32  # LoRA scaling numerator (scale = alpha / rank)
    dropout: float = 0.0
    routed_experts: bool = False  # also adapt the routed experts' weights
    lr: float = 1e-2  # peak learning rate (demo-sized data, measured; large datasets: LARGE_DATASET)
    schedule: str = "cosine"  # "cosine": linear warmup, then cosine decay to min_lr_ratio * lr; "constant": flat lr
    warmup_ratio: float = 0.1  # share of the optimizer steps spent warming up linearly from 0 (cosine schedule)
    min_lr_ratio: float = 0.1  # the cosine schedule ends at this share of the peak lr
    epochs: int = 2
    batch_sequences: int = 16  # sequences per optimizer step, reached by accumulation
    micro_batch: int = 8
    max_length: int = 256  # tokens per example
    seed: int = 0
    checkpoint_every_steps: int = 10  # resume state saved this often (a restarted job loses at most these)

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {self.schedule!r}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError("warmup_ratio must be at least 0 and below 1")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError("min_lr_ratio must be between 0 and 1")

    def lr_at(self, step: int, total: int) -> float:
        """The learning rate of optimizer step `step` (0-based) of `total`."""
        if self.schedule == "constant":
            return self.lr
        warmup = math.ceil(self.warmup_ratio * total)
        if step < warmup:
            return self.lr * (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total - warmup - 1)
        floor = self.min_lr_ratio * self.lr
        return floor + (self.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# The seed's table, for large datasets and large models: what the defaults were before they were
# measured on demo-sized data.
LARGE_DATASET = AdapterConfig(rank=8, alpha=16, lr=2e-5, epochs=3, batch_sequences=256)
LARGE_DATASET_EXAMPLES = 20_000  # from this many training examples on, the seed's table applies


def recommended_config(examples: int) -> AdapterConfig:
    """The defaults that suit a dataset of `examples` training examples."""
    return LARGE_DATASET if examples >= LARGE_DATASET_EXAMPLES else AdapterConfig()


def adapter_config_fields() -> set[str]:
    """The names an adapter job's `config` may set."""
    return {field.name for field in dataclasses.fields(AdapterConfig)}


# --- merged checkpoints (training.adapters.merge_adapter writes them; model_service serves them) -------
MERGED_DIR = "merged"  # inside the adapter's folder: the base checkpoint with the adapter merged in
# how model_service serves an adapter, as /health and the load response name it
# (model_service.backends.adapter_hosting says when each applies)
MERGED_VLLM, PEFT, PEFT_BESIDE = "merged-vllm", "peft", "peft-beside"
MERGE_RECORD = "merge.json"  # inside MERGED_DIR: the fingerprint of the adapter files it was merged from
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def adapter_fingerprint(adapter_dir: Path) -> str:
    """sha256 over the adapter's config and weights: what a merged checkpoint was made from."""
    digest = hashlib.sha256()
    for name in ADAPTER_FILES:
        digest.update(name.encode() + b"\0" + (Path(adapter_dir) / name).read_bytes() + b"\0")
    return digest.hexdigest()


def merged_checkpoint_problem(adapter_dir: Path) -> str:
    """Why `adapter_dir/merged` is not a complete merge of the adapter's current weights; "" when it is."""
    merged = Path(adapter_dir) / MERGED_DIR
    try:
        if not merged.is_dir():
            return "no merged checkpoint in the adapter's folder"
        if not all((merged / name).is_file() for name in ("config.json", "model.safetensors", MERGE_RECORD)):
            return "its merged checkpoint is incomplete"
        if json.loads((merged / MERGE_RECORD).read_text()).get("adapter_fingerprint") != \
                adapter_fingerprint(adapter_dir):
            return "its merged checkpoint was made from other adapter weights"
    except (OSError, ValueError) as error:
        return f"its merged checkpoint cannot be read ({type(error).__name__})"
    return ""


def merged_is_current(adapter_dir: Path) -> bool:
    """Whether `adapter_dir/merged` holds a complete merge of the adapter's current weights."""
    return not merged_checkpoint_problem(adapter_dir)
