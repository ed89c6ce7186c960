"""The LoRA adapter training settings, torch-free: the web processes (the adapters API and console)
read and check them without importing torch or peft; `training.adapters` trains with them."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class AdapterConfig:
    rank: int = 8  # LoRA rank
    alpha: int = 16  # LoRA scaling numerator (scale = alpha / rank)
    dropout: float = 0.0
    routed_experts: bool = False  # also adapt the routed experts' weights
    lr: float = 2e-5  # learning rate (1e-5 to 3e-5 for real adapters)
    epochs: int = 3
    batch_sequences: int = 256  # sequences per optimizer step, reached by accumulation
    micro_batch: int = 8
    max_length: int = 256  # tokens per example
    seed: int = 0
    checkpoint_every_steps: int = 10  # resume state saved this often (a restarted job loses at most these)


def adapter_config_fields() -> set[str]:
    """The names an adapter job's `config` may set."""
    return {field.name for field in dataclasses.fields(AdapterConfig)}
