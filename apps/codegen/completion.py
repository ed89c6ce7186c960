"""The completion domain core, free of Django: what a completion is asked for, the cross-file context
and cursor window of its fill-in-the-middle prompt within their budgets, and the choice among the
model's candidates (truncation, filters, the syntax guard). The service that runs the pipeline with
the repository index and model_service is `apps.codegen.services.completion_create`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from apps.codegen.languages import spec_for
from apps.codegen.parsing import IDENTIFIER
from apps.codegen.postprocess import is_repetition, syntax_guard, truncate

if TYPE_CHECKING:
    from apps.codegen.models import Repository

CONTEXT_CHARS = 1_500  # the budget for cross-file context, like Tabby's snippet budget
PREFIX_CHARS = 4_000  # the model sees this much of the file before the cursor (cut at a line start)
SUFFIX_CHARS = 1_500  # and this much after it
# A prompt still longer than the model's context (model_service says so) is sent again with the
# three budgets halved, at most this many times; the syntax guard always sees the whole file.
SHRINK_RETRIES = 3
NEARBY_LINES = 15  # identifiers of the last lines before the cursor are looked up in the index
SNIPPET_QUERY_LINES = 10
CANDIDATES = 3  # samples asked for; the syntax guard tries them in order
MAX_TOKENS = {False: 48, True: 160}  # single-line, multi-line


@dataclass
class Snippet:
    filepath: str
    body: str
    source: str  # "declaration", "definition", "snippet" (BM25), "changed_file"
    score: float = 0.0


@dataclass
class CompletionRequestData:
    language: str
    prefix: str
    suffix: str = ""
    filepath: str = ""
    repository: Repository | None = None
    declarations: list[Snippet] = field(default_factory=list)
    changed_file_snippets: list[Snippet] = field(default_factory=list)
    temperature: float | None = None
    seed: int | None = None
    use_context: bool = True


def _as_comment(snippet: Snippet, comment: str) -> str:
    lines = [f"{comment} Path: {snippet.filepath}"] + [f"{comment} {line}" for line in snippet.body.splitlines()]
    return "\n".join(lines) + "\n"


def nearby_names(prefix: str) -> list[str]:
    """Identifiers near the cursor, nearest first."""
    names: list[str] = []
    for line in reversed(prefix.splitlines()[-NEARBY_LINES:]):
        for name in reversed(IDENTIFIER.findall(line)):
            if name not in names and len(name) > 2:
                names.append(name)
    return names


def snippet_query(prefix: str) -> str:
    """The last lines before the cursor: the text the repository's chunks are searched with."""
    return "\n".join(prefix.splitlines()[-SNIPPET_QUERY_LINES:])


def render_context(candidates: list[Snippet], language: str, budget: int = CONTEXT_CHARS) -> tuple[str, list[Snippet]]:
    """Comment-formatted snippets, in order, within `budget` characters."""
    comment = spec_for(language).comment
    used, parts, seen = [], [], set()
    for snippet in candidates:
        text = _as_comment(snippet, comment)
        if snippet.body in seen or len(text) > budget:
            continue
        seen.add(snippet.body)
        used.append(snippet)
        parts.append(text)
        budget -= len(text)
    return "".join(parts), used


def choose_candidate(raw: tuple[str, ...] | list[str], *, language: str, prefix: str, suffix: str,
                     multiline: bool) -> tuple[str, str, list[dict]]:
    """Truncate each raw model candidate, then take the first that is no repetition and passes the syntax
    guard (possibly trimmed). Returns (text, what happened, a log entry per candidate)."""
    attempts, action = [], "no-candidate"
    for index, text in enumerate(raw):
        candidate = truncate(text, language=language, prefix=prefix, multiline=multiline)
        if is_repetition(candidate, prefix=prefix, suffix=suffix):
            attempts.append({"candidate": index, "action": "dropped-repetition"})
            continue
        guarded = syntax_guard(candidate, language=language, prefix=prefix, suffix=suffix)
        attempts.append({"candidate": index, "action": guarded.action, "errors_without": guarded.errors_before,
                         "errors_with": guarded.errors_after})
        if guarded.text:
            return guarded.text, guarded.action, attempts
        action = "rejected"
    return "", action, attempts


def cursor_window(prefix: str, suffix: str, scale: float = 1.0) -> tuple[str, str]:
    """The end of the prefix and the start of the suffix the model sees, cut at line boundaries."""
    start = max(0, len(prefix) - int(PREFIX_CHARS * scale))
    if start > 0 and prefix[start - 1] != "\n":  # mid-line: start at the next line
        start = prefix.find("\n", start) + 1 or start
    end = min(len(suffix), int(SUFFIX_CHARS * scale))
    if end < len(suffix) and suffix[end - 1] != "\n":  # mid-line: end at the previous line
        end = suffix.rfind("\n", 0, end) + 1 or end
    return prefix[start:], suffix[:end]
