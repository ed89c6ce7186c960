"""Adapter training data: JSONL validation with a per-line report and a stable train/validation split.
The suite's own data (knowledge bases, accepted suggestions, indexed repositories, medical cases)
comes as training rows from each app's selectors, in the prompt that app sends the model."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from django.conf import settings

from apps.core.errors import ApplicationError
from apps.core.limits import json_loads_bounded

MAX_TEXT_CHARS = 20_000
VALIDATION_SHARE = 0.1
ROLES = {"system", "user", "assistant"}


@dataclass
class ParsedDataset:
    train: list[dict] = field(default_factory=list)
    validation: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)  # {"line", "reason"}
    content_hash: str = ""

    @property
    def report(self) -> dict:
        return {"accepted": len(self.train) + len(self.validation), "train": len(self.train),
                "validation": len(self.validation), "rejected": self.rejected}


def _problem(example) -> str:
    if not isinstance(example, dict):
        return "not a JSON object"
    if "messages" in example:
        messages = example["messages"]
        if not isinstance(messages, list) or len(messages) < 2:
            return "messages must be a list of at least two turns"
        if any(not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str)
               for m in messages):
            return "each message needs a role (system, user, assistant) and a text content"
        if messages[-1]["role"] != "assistant":
            return "the last message must be the assistant's answer"
        return ""
    if "prompt" in example or "completion" in example:
        if not isinstance(example.get("prompt"), str) or not str(example.get("completion") or "").strip():
            return "prompt and completion must both be non-empty text"
        return ""
    if "text" in example:
        return "" if isinstance(example["text"], str) and example["text"].strip() else "text is empty"
    return "needs `messages`, `prompt` and `completion`, or `text`"


def _too_long(example: dict) -> bool:
    return len(json.dumps(example)) > MAX_TEXT_CHARS


def _is_validation(example: dict) -> bool:
    digest = hashlib.sha256(json.dumps(example, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:4], "big") % 1000 < VALIDATION_SHARE * 1000


def _parse_line(line: str):
    """The line's JSON value, or ApplicationError naming what is wrong with it (too long, nested
    too deep, not JSON); the length and depth are checked before the parser runs."""
    if len(line) > settings.ADAPTER_DATASET_MAX_LINE_CHARS:
        raise ApplicationError(f"longer than {settings.ADAPTER_DATASET_MAX_LINE_CHARS:,} characters")
    try:
        return json_loads_bounded(line, max_depth=settings.ADAPTER_DATASET_MAX_DEPTH, field="line")
    except ApplicationError as error:
        if error.code == "too_deep":
            raise ApplicationError(f"nested deeper than {settings.ADAPTER_DATASET_MAX_DEPTH} levels") from None
        raise ApplicationError(f"not JSON: {error.message.partition(': ')[2]}") from None


def parse_jsonl(data: bytes) -> ParsedDataset:
    """Every line checked; bad lines are reported and left out, never half-used. A file that is not
    UTF-8, has more than ADAPTER_DATASET_MAX_LINES lines or no usable line is refused (a 400)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ApplicationError("The file is not UTF-8 text.", field="file") from None
    dataset = ParsedDataset(content_hash=hashlib.sha256(data).hexdigest())
    lines = text.splitlines()
    if len(lines) > settings.ADAPTER_DATASET_MAX_LINES:
        raise ApplicationError(f"The file has more than {settings.ADAPTER_DATASET_MAX_LINES:,} lines.",
                               code="too_many_lines", field="file")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            example = _parse_line(line)
        except ApplicationError as error:
            dataset.rejected.append({"line": number, "reason": error.message})
            continue
        problem = _problem(example) or ("longer than 20,000 characters" if _too_long(example) else "")
        if problem:
            dataset.rejected.append({"line": number, "reason": problem})
            continue
        (dataset.validation if _is_validation(example) else dataset.train).append(example)
    if not dataset.train:
        raise ApplicationError("There is no usable training example in the file.", code="no_examples", field="file")
    return dataset


def parse_examples(examples: list[dict]) -> ParsedDataset:
    """Training rows checked and split exactly as an uploaded file's lines are."""
    data = "\n".join(json.dumps(example, ensure_ascii=False) for example in examples).encode()
    return parse_jsonl(data)
