"""The completion pipeline: context from the repository index → FIM prompt → model_service →
truncation, filters and the syntax guard → the completion, with debug data saying what happened."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.conf import settings

from apps.codegen.indexing import IDENTIFIER, chunk_search
from apps.codegen.languages import LANGUAGES
from apps.codegen.models import Chunk, Completion, Definition, Repository
from apps.codegen.postprocess import is_multiline, is_repetition, syntax_guard, truncate
from apps.core.model_client import ModelServiceRejected, adapter_or_base, get_client

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


@dataclass
class CompletionResult:
    completion: Completion
    choices: list[str]
    debug: dict


def _as_comment(snippet: Snippet, comment: str) -> str:
    lines = [f"{comment} Path: {snippet.filepath}"] + [f"{comment} {line}" for line in snippet.body.splitlines()]
    return "\n".join(lines) + "\n"


def _nearby_names(prefix: str) -> list[str]:
    """Identifiers near the cursor, nearest first."""
    names: list[str] = []
    for line in reversed(prefix.splitlines()[-NEARBY_LINES:]):
        for name in reversed(IDENTIFIER.findall(line)):
            if name not in names and len(name) > 2:
                names.append(name)
    return names


def repository_snippets(request: CompletionRequestData) -> list[Snippet]:
    """Definitions of the symbols used near the cursor, then chunks like the code before it."""
    repository = request.repository
    if repository is None or repository.status != Repository.Status.READY:
        return []
    names = _nearby_names(request.prefix)
    found: list[Snippet] = []
    definitions = (Definition.objects.filter(file__repository=repository, name__in=names[:50])
                   .exclude(file__path=request.filepath).select_related("file"))
    by_name: dict[str, Definition] = {}
    for definition in definitions:
        by_name.setdefault(definition.name, definition)
    for name in names:
        if name in by_name:
            d = by_name[name]
            body = d.signature + ("\n" + d.docstring if d.docstring else "")
            found.append(Snippet(d.file.path, body, "definition"))
    query = "\n".join(request.prefix.splitlines()[-SNIPPET_QUERY_LINES:])
    hits = chunk_search(repository, query, k=8)
    chunks = Chunk.objects.in_bulk([chunk_id for chunk_id, _ in hits])
    for chunk_id, score in hits:
        chunk = chunks.get(chunk_id)
        if chunk is not None and chunk.file.path != request.filepath:
            found.append(Snippet(chunk.file.path, chunk.text, "snippet", round(score, 3)))
    return found


def context_candidates(request: CompletionRequestData) -> list[Snippet]:
    """Every snippet the context may hold, most important first: the client's declarations."""
    candidates = [*request.declarations, *request.changed_file_snippets]
    if request.use_context:
        candidates += repository_snippets(request)
    return candidates


def render_context(candidates: list[Snippet], language: str, budget: int = CONTEXT_CHARS) -> tuple[str, list[Snippet]]:
    """Comment-formatted snippets, in order, within `budget` characters."""
    comment = LANGUAGES[language].comment
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


def _generate(request: CompletionRequestData, candidates: list[Snippet], multiline: bool):
    """(model response, snippets used, prompt, scale): budgets halved while the prompt is too long."""
    client = get_client(connect_retries=0, timeout=settings.CODEGEN_MODEL_TIMEOUT)
    temperature = request.temperature if request.temperature is not None else 0.2
    model = adapter_or_base(client, settings.CODEGEN_ADAPTER)
    for attempt in range(SHRINK_RETRIES + 1):
        scale = 0.5 ** attempt
        context, snippets = render_context(candidates, request.language, int(CONTEXT_CHARS * scale))
        prefix, suffix = cursor_window(request.prefix, request.suffix, scale)
        try:
            response = client.complete(
                prompt=context + prefix, suffix=suffix, model=model, max_tokens=MAX_TOKENS[multiline],
                temperature=temperature,
                n=CANDIDATES if temperature > 0 else 1,  # greedy candidates would all be the same text
                seed=request.seed if request.seed is not None else 0)
            return response, snippets, context + prefix, scale
        except ModelServiceRejected as rejected:
            if rejected.code != "context_length_exceeded" or attempt == SHRINK_RETRIES:
                raise


def complete(request: CompletionRequestData, *, user) -> CompletionResult:
    started = time.perf_counter()
    candidates = context_candidates(request)
    retrieved = time.perf_counter()
    multiline = is_multiline(request.prefix, request.suffix)
    response, snippets, prompt, scale = _generate(request, candidates, multiline)
    generated = time.perf_counter()
    chosen, action, attempts = choose_candidate(response.choices, language=request.language, prefix=request.prefix,
                                                suffix=request.suffix, multiline=multiline)
    finished = time.perf_counter()
    timings = {"retrieval_ms": round((retrieved - started) * 1000, 1),
               "model_ms": round((generated - retrieved) * 1000, 1),
               "postprocess_ms": round((finished - generated) * 1000, 1),
               "total_ms": round((finished - started) * 1000, 1)}
    completion = Completion.objects.create(user=user, repository=request.repository, language=request.language,
                                           filepath=request.filepath[:1000], text=chosen, guard=action,
                                           timings=timings)
    debug = {"prompt": prompt, "prompt_scale": scale, "multiline": multiline, "guard": attempts, "timings": timings,
             "snippets": [{"filepath": s.filepath, "body": s.body, "source": s.source, "score": s.score}
                          for s in snippets]}
    return CompletionResult(completion, [chosen], debug)
