"""Measure an exported checkpoint: validation perplexity per corpus part, parameter counts.

The validation documents are chosen from the corpus by content hash (the same rule as training),
tokenised with the checkpoint's own tokenizer, so any machine can re-measure a checkpoint without
its training data.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from training.data.corpus import corpus_documents, is_validation


def parameter_counts(config: dict) -> dict[str, int]:
    """Total parameters, and those active per token (shared parts + top-k of the routed experts)."""
    from transformers import DeepseekV3Config, DeepseekV3ForCausalLM

    with torch.device("meta"):
        model = DeepseekV3ForCausalLM(DeepseekV3Config(**{k: v for k, v in config.items()
                                                           if k not in ("architectures", "transformers_version")}))
    total = sum(p.numel() for p in model.parameters())
    expert = 3 * config["hidden_size"] * config["moe_intermediate_size"]
    moe_layers = config["num_hidden_layers"] - config["first_k_dense_replace"]
    idle = (config["n_routed_experts"] - config["num_experts_per_tok"]) * expert * moe_layers
    return {"total": total, "active": total - idle}


@torch.no_grad()
def validation_perplexity(checkpoint: Path, *, sources: tuple[str, ...], fraction: float, sequence_length: int,
                          max_tokens_per_source: int = 50_000) -> dict[str, dict[str, float]]:
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    results = {}
    for source in sources:
        stream: list[int] = []
        for document in corpus_documents((source,)):
            if is_validation(document, fraction):
                stream += [tokenizer.bos_token_id, *tokenizer.encode(document.text, add_special_tokens=False),
                           tokenizer.eos_token_id]
            if len(stream) >= max_tokens_per_source:
                break
        rows = len(stream) // (sequence_length + 1)
        if rows == 0:
            continue
        data = torch.tensor(stream[: rows * (sequence_length + 1)]).view(rows, sequence_length + 1)
        total, count = 0.0, 0
        for batch in data.split(8):
            logits = model(input_ids=batch[:, :-1]).logits
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1),
                                                     reduction="sum")
            total, count = total + float(loss), count + batch[:, 1:].numel()
        results[source] = {"loss": round(total / count, 4), "perplexity": round(math.exp(total / count), 2),
                           "tokens": count}
    return results


def checkpoint_config(checkpoint: Path) -> dict:
    return json.loads((checkpoint / "config.json").read_text())
