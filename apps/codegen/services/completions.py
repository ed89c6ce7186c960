"""Completion writes: a completion served (continuations of earlier occurrences in the repository, tried
first; else context from the repository index → FIM prompt → model_service → truncation, filters and the
syntax guard → a stored `Completion`, with debug data
saying what happened) and the IDE's accept/reject telemetry on it."""
from __future__ import annotations

import time
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction

from apps.codegen import selectors
from apps.codegen.completion import (ADAPTER_LOOKUP_MAX_AGE_S, CANDIDATES, CONTEXT_CHARS, MAX_TOKENS, MODEL, SHRINK_RETRIES,
                                     SINGLE_LINE_BUDGET_SCALE, STOP,
                                     CompletionRequestData, Snippet, choose_candidate, cursor_window,
                                     ranked_candidates, render_context)
from apps.codegen.models import Completion, CompletionEvent
from apps.codegen.postprocess import is_multiline
from apps.core.model_client import ModelServiceRejected, ModelServiceUnavailable, adapter_or_base, get_client


@dataclass
class CompletionResult:
    completion: Completion
    choices: list[str]
    debug: dict


@dataclass
class _Generated:
    response: object  # model_client's Completion; None: the model did not answer within the single-line deadline
    snippets: list[Snippet]  # the context snippets in the prompt
    prompt: str  # the text before the cursor as sent (context + prefix window)
    scale: float  # the share of the budgets used
    fill_in_the_middle: bool  # False: the model has no FIM format, the text after the cursor was not sent


def _generate(request: CompletionRequestData, candidates: list[Snippet], multiline: bool) -> _Generated:
    """Budgets halved while the prompt is too long. A model without a fill-in-the-middle format (a chat
    checkpoint) continues the text before the cursor instead; the syntax guard still reads what follows.
    A single line gets CODEGEN_SINGLE_LINE_MODEL_DEADLINE_S for every attempt together; past it there is no answer
    (response None). model_service unreachable sooner is still an error."""
    deadline = settings.CODEGEN_MODEL_TIMEOUT
    if not multiline:
        deadline = min(deadline, settings.CODEGEN_SINGLE_LINE_MODEL_DEADLINE_S)
    started = time.perf_counter()
    client = get_client(connect_retries=0, timeout=deadline)
    temperature = request.temperature if request.temperature is not None else 0.2
    model = adapter_or_base(client, settings.CODEGEN_ADAPTER, max_age_s=ADAPTER_LOOKUP_MAX_AGE_S)
    fill_in_the_middle = True
    attempt = 0
    while True:
        scale = 0.5 ** attempt * (1.0 if multiline else SINGLE_LINE_BUDGET_SCALE)
        context, snippets = render_context(candidates, request.language, int(CONTEXT_CHARS * scale))
        prefix, suffix = cursor_window(request.prefix, request.suffix, scale)
        client.timeout = max(0.001, deadline - (time.perf_counter() - started))
        try:
            response = async_to_sync(client.acomplete)(  # hangs up on model_service when the IDE does
                prompt=context + prefix, suffix=suffix if fill_in_the_middle else None, model=model,
                max_tokens=MAX_TOKENS[multiline], stop=STOP[multiline], temperature=temperature,
                n=CANDIDATES if temperature > 0 else 1,  # greedy candidates would all be the same text
                seed=request.seed if request.seed is not None else 0)
            return _Generated(response, snippets, context + prefix, scale, fill_in_the_middle)
        except ModelServiceUnavailable:
            if multiline or time.perf_counter() - started < deadline:
                raise  # unreachable, or a multi-line completion's own timeout: the caller's 503
            return _Generated(None, snippets, context + prefix, scale, fill_in_the_middle)
        except ModelServiceRejected as rejected:
            if rejected.code == "fim_unsupported" and fill_in_the_middle:
                fill_in_the_middle = False
            elif rejected.code == "context_length_exceeded" and attempt < SHRINK_RETRIES:
                attempt += 1
            else:
                raise


def completion_create(*, request: CompletionRequestData, user) -> CompletionResult:
    """Complete the code at the cursor and record the completion served (for telemetry), with its timings.
    `request.repository` is one `user` may read (apps/codegen/selectors.py resolves it)."""
    started = time.perf_counter()
    candidates = selectors.context_candidates(request)
    retrieved = time.perf_counter()
    continuations = selectors.continuation_candidates(request)
    matched = time.perf_counter()
    multiline = is_multiline(request.prefix, request.suffix)
    ranked = ranked_candidates(continuations, (), multiline=multiline)
    chosen, action, attempts = choose_candidate(ranked, language=request.language, prefix=request.prefix,
                                                suffix=request.suffix, multiline=multiline)
    generated_by_model, model_seconds = None, 0.0
    if not chosen:  # the model is asked only when no repository continuation passes the guard
        asked = time.perf_counter()
        generated_by_model = _generate(request, candidates, multiline)
        model_seconds = time.perf_counter() - asked
        response = generated_by_model.response
        samples = ranked_candidates([], response.choices if response else (), multiline=multiline)
        chosen, action, tried = choose_candidate(samples, language=request.language, prefix=request.prefix,
                                                 suffix=request.suffix, multiline=multiline)
        action = action if response else "model-too-slow"
        attempts += [{**attempt, "candidate": attempt["candidate"] + len(ranked)} for attempt in tried]
        ranked += samples
    finished = time.perf_counter()
    timings = {"retrieval_ms": round((retrieved - started) * 1000, 1),
               "matching_ms": round((matched - retrieved) * 1000, 1),
               "model_ms": round(model_seconds * 1000, 1),
               "postprocess_ms": round((finished - matched - model_seconds) * 1000, 1),
               "total_ms": round((finished - started) * 1000, 1)}
    completion = Completion.objects.create(user=user, repository=request.repository, language=request.language,
                                           filepath=request.filepath[:1000], text=chosen, guard=action,
                                           timings=timings)
    debug = {"prompt": generated_by_model.prompt if generated_by_model else "",
             "prompt_scale": generated_by_model.scale if generated_by_model else 1.0,
             "fill_in_the_middle": generated_by_model.fill_in_the_middle if generated_by_model else True,
             "model_called": generated_by_model is not None, "multiline": multiline,
             "model_timed_out": generated_by_model is not None and generated_by_model.response is None,
             "guard": attempts, "timings": timings,
             "source": attempts[-1].get("source", MODEL) if chosen else "",
             "candidates": [{"text": c.text, "source": c.source, "match_tokens": c.match_tokens, "count": c.count,
                             "filepath": c.filepath} for c in ranked],
             "snippets": [{"filepath": s.filepath, "body": s.body, "source": s.source, "score": s.score}
                          for s in (generated_by_model.snippets if generated_by_model else [])]}
    return CompletionResult(completion, [chosen], debug)


@transaction.atomic
def completion_event_record(*, completion: Completion, event_type: str, choice_index: int = 0, view_id: str = "",
                            elapsed: int | None = None, select_kind: str = "") -> CompletionEvent:
    """Record what the IDE did with `completion` (Tabby's view, select, dismiss): `view_id` ties the events
    of one showing together, `elapsed` is the IDE's milliseconds since it showed it, and `select_kind`
    "line" says only part of it was accepted."""
    return CompletionEvent.objects.create(completion=completion, type=event_type, choice_index=choice_index,
                                          view_id=view_id, elapsed=elapsed, select_kind=select_kind)
