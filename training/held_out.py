"""Bits per byte on source the corpus never holds, next to `xz -9e`: how well a checkpoint predicts code.

The held-out text: Python files of the packages held out for evaluation (Django, Django REST framework,
Celery and Kombu, as installed here; training/data/packages.py keeps them out of every corpus), chosen by a
seeded shuffle, MAX_FILES of them, each cut to MAX_FILE_BYTES. Per checkpoint, each file is tokenized with
the checkpoint's own tokenizer and scored in windows of the model's context (each window after the first
overlaps the last STRIDE_OVERLAP tokens, which are read again but not counted): the summed negative
log-likelihood in bits over the files' UTF-8 bytes. `xz -9e` is the same files compressed one by one
(bits of each file's .xz over its bytes).
"""
from __future__ import annotations

import lzma
import math
import random
import sysconfig
import time
from pathlib import Path

from training.data.packages import HELD_OUT_MODULES

MAX_FILES = 40
MAX_FILE_BYTES = 8_000
STRIDE_OVERLAP = 128


def held_out_files(seed: int = 0) -> list[tuple[str, str]]:
    """(name, text) of MAX_FILES seeded files of the held-out packages, tests and migrations left out."""
    found = []
    for package in HELD_OUT_MODULES:
        root = Path(sysconfig.get_paths()["purelib"]) / package  # on disk: kombu, once imported, has no __spec__
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root.parent)
            if {"tests", "migrations", "locale"} & set(relative.parts):
                continue
            text = path.read_bytes()[:MAX_FILE_BYTES].decode("utf-8", errors="ignore")
            if len(text) > 200:
                found.append((str(relative), text))
    random.Random(seed).shuffle(found)
    return found[:MAX_FILES]


def xz_bits_per_byte(files: list[tuple[str, str]]) -> float:
    size = sum(len(text.encode()) for _, text in files)
    compressed = sum(len(lzma.compress(text.encode(), preset=9 | lzma.PRESET_EXTREME)) for _, text in files)
    return 8 * compressed / size


def model_bits_per_byte(checkpoint: Path, files: list[tuple[str, str]]) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    context = model.config.max_position_embeddings
    nll_nats, size, tokens = 0.0, 0, 0
    started = time.perf_counter()
    with torch.no_grad():
        for _, text in files:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            bos = tokenizer.bos_token_id
            ids = ([bos] if bos is not None else []) + ids
            nll_nats += _sequence_nll(model, ids, context)
            size += len(text.encode())
            tokens += len(ids) - 1
    return {"bits_per_byte": round(nll_nats / math.log(2) / size, 4), "tokens": tokens, "bytes": size,
            "bytes_per_token": round(size / tokens, 3), "seconds": round(time.perf_counter() - started, 1)}


def _sequence_nll(model, ids: list[int], context: int) -> float:
    """The summed negative log-likelihood (nats) of ids[1:], in windows of `context` tokens that overlap."""
    import torch

    total, scored_to = 0.0, 1  # ids[0] (the bos token) is given, not scored
    while scored_to < len(ids):
        start = max(0, scored_to - STRIDE_OVERLAP) if scored_to > 1 else 0
        window = torch.tensor([ids[start:start + context]])
        logits = model(window).logits[0, :-1].float()
        targets = window[0, 1:]
        losses = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
        first_new = scored_to - start - 1  # the loss index of ids[scored_to]
        total += float(losses[first_new:].sum())
        scored_to = start + window.shape[1]
    return total


def held_out_summary(files: list[tuple[str, str]]) -> dict:
    """What the held-out files are, with `xz -9e`'s bits per byte on them: a report's fields besides a model's."""
    return {"packages": list(HELD_OUT_MODULES), "files": len(files), "bytes": sum(len(text.encode()) for _, text in files),
            "xz_9e_bits_per_byte": round(xz_bits_per_byte(files), 4)}


def held_out_report(checkpoint: Path) -> dict:
    """The checkpoint's bits per byte on the held-out files, with `xz -9e`'s on the same files."""
    files = held_out_files()
    return {**held_out_summary(files), **model_bits_per_byte(checkpoint, files)}
