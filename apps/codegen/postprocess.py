"""Turning a raw model continuation into a completion that fits the file.

- truncation at the end of the syntactic unit: one line for a single-line completion; for a
  multi-line one, a dedent past the starting indentation (indented languages), a closed block
  (brace languages), or a blank line followed by a top-level statement; and the language's stop words;
- filters: drop a completion that repeats the line above or what already follows the cursor;
- the syntax guard: prefix + completion + suffix may not have more tree-sitter errors than
  prefix + suffix alone; else trim to the longest error-free prefix of lines, else reject.
"""
from __future__ import annotations

from dataclasses import dataclass

from apps.codegen.languages import LANGUAGES, spec_for
from apps.codegen.parsing import error_count


def is_multiline(prefix: str, suffix: str) -> bool:
    """Multi-line when the cursor ends a blank line (a new statement or block starts there) and the
    rest of the cursor's line is empty; mid-line, only the line is completed."""
    current_line = prefix.rsplit("\n", 1)[-1]
    rest_of_line = suffix.split("\n", 1)[0]
    return not current_line.strip() and not rest_of_line.strip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def truncate(text: str, *, language: str, prefix: str, multiline: bool) -> str:
    spec = spec_for(language)
    for stop in spec.stop_words:
        position = text.find(stop)
        if position >= 0:
            text = text[:position]
    if not multiline:
        return text.split("\n", 1)[0].rstrip()
    base_indent = _indent(prefix.rsplit("\n", 1)[-1])
    lines = text.split("\n")
    kept: list[str] = []
    depth = 0
    for index, line in enumerate(lines):
        stripped = line.strip()
        if index > 0 and stripped and spec.indented_blocks and _indent(line) < base_indent:
            break  # dedent past where the completion started
        if index > 0 and not stripped and index + 1 < len(lines) and lines[index + 1] \
                and _indent(lines[index + 1]) == 0 and base_indent > 0:
            break  # blank line, then top level
        if not spec.indented_blocks:
            depth += line.count("{") + line.count("(") + line.count("[")
            depth -= line.count("}") + line.count(")") + line.count("]")
            if depth < 0:  # closes the block the cursor is in: the suffix already has that brace
                break
        kept.append(line)
    return "\n".join(kept).rstrip()


def is_repetition(text: str, *, prefix: str, suffix: str) -> bool:
    if not text.strip():
        return True
    previous_lines = [line.strip() for line in prefix.split("\n")[:-1] if line.strip()]
    first = text.strip().split("\n", 1)[0].strip()
    if previous_lines and first == previous_lines[-1] and len(first) > 3:
        return True
    return bool(suffix.strip()) and suffix.lstrip().startswith(text.strip())


@dataclass(frozen=True)
class GuardResult:
    text: str
    action: str  # "accepted", "trimmed" or "rejected"
    errors_before: int  # prefix + suffix
    errors_after: int  # with the completion as returned


def syntax_guard(text: str, *, language: str, prefix: str, suffix: str) -> GuardResult:
    if language not in LANGUAGES:  # plain text: no grammar to check against
        return GuardResult(text, "accepted", 0, 0)
    baseline = error_count(language, prefix + suffix)
    errors = error_count(language, prefix + text + suffix)
    if errors <= baseline:
        return GuardResult(text, "accepted", baseline, errors)
    lines = text.split("\n")
    for keep in range(len(lines) - 1, 0, -1):
        candidate = "\n".join(lines[:keep]).rstrip()
        if candidate.strip() and error_count(language, prefix + candidate + suffix) <= baseline:
            return GuardResult(candidate, "trimmed", baseline, errors)
    return GuardResult("", "rejected", baseline, errors)
