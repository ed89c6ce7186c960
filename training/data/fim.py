"""Fill-in-the-middle: code pieces rewritten as prefix-suffix-middle (PSM), so the model learns to
write the middle after seeing both sides — the form model_service sends for `suffix` requests."""
from __future__ import annotations

import random

from training.tokenizer import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX


def split_code(text: str, max_chars: int) -> list[str]:
    """Line-aligned pieces of at most about `max_chars` characters (a long line stays whole)."""
    pieces, current, size = [], [], 0
    for line in text.splitlines(keepends=True):
        if current and size + len(line) > max_chars:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        pieces.append("".join(current))
    return pieces


def to_fim(text: str, rng: random.Random) -> str:
    """PSM form with the middle between two random character positions."""
    start, end = sorted(rng.randint(0, len(text)) for _ in range(2))
    prefix, middle, suffix = text[:start], text[start:end], text[end:]
    return f"{FIM_PREFIX}{prefix}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}{middle}"
