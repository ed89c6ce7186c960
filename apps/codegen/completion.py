"""The completion domain core, free of Django: what a completion is asked for, the cross-file context
and cursor window of its fill-in-the-middle prompt within their budgets, and the choice among the
model's candidates (truncation, filters, the syntax guard). The service that runs the pipeline with
the repository index and model_service is `apps.codegen.services.completion_create`."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from apps.codegen.languages import spec_for
from apps.codegen.matching import Continuation
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
# A single line is asked for with the three budgets scaled by this: a shorter prompt is prefilled faster
# (benchmarks/codegen.py, random positions), and the line depends mostly on the code nearest the cursor.
SINGLE_LINE_BUDGET_SCALE = 0.5
NEARBY_LINES = 15  # identifiers of the last lines before the cursor are looked up in the index
SNIPPET_QUERY_LINES = 10
CANDIDATES = 3  # samples asked for; the syntax guard tries them in order
MAX_TOKENS = {False: 32, True: 160}  # single-line (generation also stops at the line end), multi-line
STOP = {False: ["\n"], True: None}
REPOSITORY_CANDIDATES = 3  # repository continuations offered at most
# A repository continuation is offered only after a match at least this long (tokens before the cursor):
# shorter ones repeat what merely often follows a common token.
MIN_MATCH_TOKENS = 2  # measured on benchmarks/codegen.py's positions: 2 offers most exact lines (4: fewer)
# model_service's list of models is asked for at most this often (completions come at every keystroke);
# a codegen adapter loaded or unloaded is noticed that much later.
ADAPTER_LOOKUP_MAX_AGE_S = 5.0
MODEL, REPOSITORY, SAME_FILE = "model", "repository", "same_file"  # where a candidate came from
# Ranking by the model's own log-probability (issue 15): a single line's distinct candidates are scored
# as the continuation of the end of the prefix (one echo-with-logprobs request for all of them; the
# model's samples bring their own logprobs), each repository match token adding MATCH_BONUS_NATS.
SCORING_PREFIX_CHARS = 2_000  # the text before the cursor the candidates are scored after (cut at a line start)
MATCH_BONUS_NATS = 0.2  # per token of a candidate's match before the cursor: what the repository's agreement is worth
# What an IDE sends besides the file is cut to these sizes before it competes for the context budget
# (at a line end), so one whole opened file or a large clipboard cannot crowd out everything else.
OPENED_FILE_CHARS = 500  # each snippet of a recently opened file (Tabby's agents crop theirs alike)
CLIPBOARD_CHARS = 500
CLIPBOARD_MIN_CHARS = 3  # a shorter clipboard says nothing about the code (Tabby's agents skip it too)

# Where a context snippet came from (debug_data names it).
DECLARATION, DEFINITION, SNIPPET, CHANGED_FILE = "declaration", "definition", "snippet", "changed_file"
OPENED_FILE, CLIPBOARD = "recently_opened_file", "clipboard"
SOURCES = (DECLARATION, CHANGED_FILE, OPENED_FILE, DEFINITION, SNIPPET, CLIPBOARD)


@dataclass
class Snippet:
    filepath: str
    body: str
    source: str  # one of SOURCES: the client's declarations, changed and opened files, clipboard; the index's
    # definitions and "snippet" (BM25 chunks)
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
    opened_file_snippets: list[Snippet] = field(default_factory=list)
    clipboard: str = ""
    temperature: float | None = None
    seed: int | None = None
    use_context: bool = True
    use_repository_candidates: bool = True  # continuations of earlier occurrences compete with the model's
    use_ranking: bool = True  # a single line's candidates are ranked by the model's log-probability of each


def _as_comment(snippet: Snippet, comment: str) -> str:
    header = "Clipboard:" if snippet.source == CLIPBOARD else f"Path: {snippet.filepath}"
    lines = [f"{comment} {header}"] + [f"{comment} {line}" for line in snippet.body.splitlines()]
    return "\n".join(lines) + "\n"


def first_lines(text: str, limit: int) -> str:
    """`text` up to `limit` characters, ending at a line end (or cut mid-line when its first line is longer)."""
    if len(text) <= limit:
        return text
    end = text.rfind("\n", 0, limit + 1)
    return text[:end] if end > 0 else text[:limit]


def clipboard_snippet(clipboard: str) -> list[Snippet]:
    """The clipboard as a snippet, cut to CLIPBOARD_CHARS; none when it is (nearly) empty."""
    text = clipboard.strip("\n")
    if len(text.strip()) < CLIPBOARD_MIN_CHARS:
        return []
    return [Snippet("", first_lines(text, CLIPBOARD_CHARS), CLIPBOARD)]


def rank_context(request: CompletionRequestData, repository: list[Snippet]) -> list[Snippet]:
    """Every snippet the context may hold, most important first (render_context fills the budget in this
    order). As in Tabby's own server: the IDE's declarations of the symbols in the prefix, then snippets
    of recently changed files, then of recently opened ones, then what the repository index found. The
    clipboard comes last: Tabby's server leaves it out of the prompt, and what was copied is often
    unrelated to the cursor, so it only fills what room is left."""
    opened = [replace(snippet, body=first_lines(snippet.body, OPENED_FILE_CHARS))
              for snippet in request.opened_file_snippets]
    return [*request.declarations, *request.changed_file_snippets, *opened, *repository,
            *clipboard_snippet(request.clipboard)]


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


@dataclass(frozen=True)
class Candidate:
    text: str
    source: str  # MODEL, REPOSITORY or SAME_FILE
    match_tokens: int = 0  # a repository or same-file candidate: the length of its match
    count: int = 0  # and how often that continuation followed it
    filepath: str = ""  # the file a repository candidate was found in
    logprob: float | None = None  # the model's log-probability of it after the prompt; None: not scored

    @property
    def rank_score(self) -> float | None:
        """What ranking orders by: the log-probability plus the match's bonus (None: not scored)."""
        return None if self.logprob is None else self.logprob + MATCH_BONUS_NATS * self.match_tokens


def scoring_texts(prefix: str, suffix: str, candidates: list[Candidate]) -> tuple[str, list[str]]:
    """The prompt the candidates are scored after (the end of `prefix`, cut at a line start) and, per distinct
    candidate text in order, the text sent to be scored: the prompt, the candidate, the rest of the cursor's
    line and the line end (so a candidate that leaves the line unfinished scores lower)."""
    prompt, _ = cursor_window(prefix, "", SCORING_PREFIX_CHARS / PREFIX_CHARS)
    line_rest = suffix.split("\n", 1)[0]
    texts = list(dict.fromkeys(candidate.text for candidate in candidates))
    return prompt, [prompt + text + line_rest + "\n" for text in texts]


def echoed_logprob(logprobs: dict, start: int, end: int) -> float:
    """The summed log-probability of the tokens of an echoed prompt (an OpenAI completions logprobs object)
    that reach past character `start` and begin before `end` (the end of the scored text: what follows
    was generated)."""
    return sum(value for offset, token, value in zip(logprobs["text_offset"], logprobs["tokens"],
                                                     logprobs["token_logprobs"])
               if offset < end and offset + len(token) > start and value is not None)


def ranked_by_logprob(candidates: list[Candidate], logprobs: dict[str, float]) -> list[Candidate]:
    """`candidates` with their log-probabilities (by text), best rank score first; ties keep their order."""
    scored = [replace(candidate, logprob=logprobs[candidate.text]) for candidate in candidates]
    return sorted(scored, key=lambda candidate: -candidate.rank_score)


def ranked_candidates(continuations: list[Continuation], model_samples: tuple[str, ...] | list[str],
                      *, multiline: bool) -> list[Candidate]:
    """The candidates in the order the syntax guard tries them: for a single line, repository continuations
    of a match of MIN_MATCH_TOKENS or more first (longest match, then most frequent; they are what the
    repository itself wrote in the same place), then the model's samples."""
    repository = [] if multiline else [
        Candidate(c.text, SAME_FILE if not c.filepath else REPOSITORY, c.match_tokens, c.count, c.filepath)
        for c in continuations if c.match_tokens >= MIN_MATCH_TOKENS][:REPOSITORY_CANDIDATES]
    return repository + [Candidate(text, MODEL) for text in model_samples]


def choose_candidate(raw: list[Candidate], *, language: str, prefix: str, suffix: str,
                     multiline: bool) -> tuple[str, str, list[dict]]:
    """Truncate each raw candidate, then take the first that is no repetition and passes the syntax
    guard (possibly trimmed). Returns (text, what happened, a log entry per candidate)."""
    attempts, action = [], "no-candidate"
    for index, candidate in enumerate(raw):
        source = {"source": candidate.source}
        truncated = truncate(candidate.text, language=language, prefix=prefix, multiline=multiline)
        if is_repetition(truncated, prefix=prefix, suffix=suffix):
            attempts.append({"candidate": index, **source, "action": "dropped-repetition"})
            continue
        guarded = syntax_guard(truncated, language=language, prefix=prefix, suffix=suffix)
        attempts.append({"candidate": index, **source, "action": guarded.action, "errors_without": guarded.errors_before,
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
