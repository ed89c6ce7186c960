"""Fill-in-the-middle prompt formats, detected from a checkpoint's tokenizer or named explicitly.

Each family's tokens and order as its public documentation gives them: the model writes the middle
after the last token of the template. Detection looks for all of a family's tokens in the vocabulary."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from model_service.errors import InvalidRequest

OVERRIDE_FILE = "fim_format.json"  # {"format": "<name>"} next to the checkpoint; "none" turns FIM off
NONE = "none"


@dataclass(frozen=True)
class FimFormat:
    name: str
    template: str  # with {prefix} and {suffix}
    tokens: tuple[str, ...]  # all must be in the vocabulary for detection

    def prompt(self, prefix: str, suffix: str) -> str:
        return self.template.format(prefix=prefix, suffix=suffix)


FORMATS = {
    fmt.name: fmt for fmt in (
        # the demo tokenizer's, also Qwen2.5-Coder's
        FimFormat("fim-pipes", "<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>",
                  ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")),
        # DeepSeek-Coder and DeepSeek-Coder-V2: fullwidth bar ｜ (U+FF5C) and ▁ (U+2581)
        FimFormat("deepseek-coder", "<｜fim▁begin｜>{prefix}<｜fim▁hole｜>{suffix}<｜fim▁end｜>",
                  ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>")),
        # StarCoder / SantaCoder
        FimFormat("starcoder", "<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>",
                  ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")),
        # CodeLlama (7B/13B base and instruct); its sentencepiece vocabulary spells them ▁<PRE> ...
        FimFormat("codellama", "<PRE> {prefix} <SUF>{suffix} <MID>", ("<PRE>", "<SUF>", "<MID>")),
    )
}


def detect(vocab: dict[str, int]) -> FimFormat | None:
    """The first family whose tokens are all in the vocabulary (CodeLlama's may carry a leading ▁)."""
    for fmt in FORMATS.values():
        if all(token in vocab or f"▁{token}" in vocab for token in fmt.tokens):
            return fmt
    return None


def by_name(name: str) -> FimFormat | None:
    if name == NONE:
        return None
    if name not in FORMATS:
        raise ValueError(f"unknown FIM format {name!r}: choose one of {', '.join([*FORMATS, NONE])}")
    return FORMATS[name]


def resolve(path: Path, vocab: dict[str, int], override: str | None = None) -> FimFormat | None:
    """The explicit override (option, then fim_format.json), else what the tokenizer holds."""
    override_file = path / OVERRIDE_FILE
    if override is None and override_file.is_file():
        override = json.loads(override_file.read_text())["format"]
    if override is not None:
        return by_name(override)
    return detect(vocab)


def refuse_without(fmt: FimFormat | None) -> FimFormat:
    if fmt is None:
        raise InvalidRequest("this model has no fill-in-the-middle format: send no suffix", param="suffix")
    return fmt
