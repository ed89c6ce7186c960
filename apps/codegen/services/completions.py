"""Completion writes: a completion served (continuations of earlier occurrences in the repository, ranked by
the model's log-probability of each when there are several, tried first; else context from the repository
index → FIM prompt → model_service → truncation, filters and the syntax guard → a stored `Completion`, with
debug data saying what happened) and the IDE's accept/reject telemetry on it."""
from __future__ import annotations

import time
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction

from apps.codegen import selectors
from apps.codegen.completion import (ADAPTER_LOOKUP_MAX_AGE_S, CANDIDATES, CONTEXT_CHARS, MAX_TOKENS, MODEL, SHRINK_RETRIES,
                                     SINGLE_LINE_BUDGET_SCALE, STOP, Candidate,
                                     CompletionRequestData, Snippet, choose_candidate, cursor_window, echoed_logprob,
                                     ranked_by_logprob, ranked_candidates, render_context, scoring_texts)
from apps.codegen.models import Completion, CompletionEvent
from apps.codegen.postprocess import is_multiline
from apps.core.db import release_connection
from apps.core.model_client import (ModelServiceError, ModelServiceRejected, ModelServiceUnavailable, adapter_or_base,
                                    get_client)


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


def _model_deadline_s(multiline: bool) -> float:
    """How long every model call of one completion may take together."""
    if multiline:
        return settings.CODEGEN_MODEL_TIMEOUT
    return min(settings.CODEGEN_MODEL_TIMEOUT, settings.CODEGEN_SINGLE_LINE_MODEL_DEADLINE_S)


@dataclass
class _Ranking:
    candidates: list[Candidate]  # in the order the syntax guard tries them
    by: str  # "logprob" (the model scored them), or why they kept their order
    seconds: float = 0.0  # spent asking the model


def _scored(request: CompletionRequestData, candidates: list[Candidate], deadline_s: float) -> _Ranking:
    """`candidates` ranked by the model's log-probability of each after the text before the cursor (one
    request for all), when there is a choice to make; in their order when there is none or the model
    cannot say within `deadline_s` (the repository's answer is still served then)."""
    if not request.use_ranking:
        return _Ranking(candidates, "disabled")
    prompt, texts = scoring_texts(request.prefix, request.suffix, candidates)
    if len(texts) < 2:
        return _Ranking(candidates, "one-candidate" if texts else "no-candidate")
    started = time.perf_counter()
    client = get_client(connect_retries=0, timeout=deadline_s)
    try:
        model = adapter_or_base(client, settings.CODEGEN_ADAPTER, max_age_s=ADAPTER_LOOKUP_MAX_AGE_S)
        client.timeout = max(0.001, deadline_s - (time.perf_counter() - started))
        response = async_to_sync(client.acomplete)(prompt=texts, model=model, max_tokens=1, temperature=0.0,
                                                   echo=True, logprobs=0)
        distinct = dict.fromkeys(candidate.text for candidate in candidates)  # in the order of `texts`
        logprobs = {text: echoed_logprob(scores, len(prompt), len(scored))
                    for text, scored, scores in zip(distinct, texts, response.logprobs)}
        ranked = ranked_by_logprob(candidates, logprobs)
    except (ModelServiceError, KeyError, TypeError):  # unreachable, too slow, refused, or no logprobs came back
        return _Ranking(candidates, "scoring-failed", time.perf_counter() - started)
    return _Ranking(ranked, "logprob", time.perf_counter() - started)


def _samples_ranked(response, multiline: bool, use_ranking: bool) -> _Ranking:
    """The model's samples, for a single line best log-probability first (their own, from generating them)."""
    samples = ranked_candidates([], response.choices if response else (), multiline=multiline)
    if not use_ranking:
        return _Ranking(samples, "disabled")
    if multiline or not response or None in response.logprobs or len(set(response.choices)) < 2:
        return _Ranking(samples, "model-order")
    logprobs = {sample.text: sum(value for value in scores["token_logprobs"] if value is not None)
                for sample, scores in zip(samples, response.logprobs)}
    return _Ranking(ranked_by_logprob(samples, logprobs), "logprob")


def _generate(request: CompletionRequestData, candidates: list[Snippet], multiline: bool,
              deadline: float) -> _Generated:
    """Budgets halved while the prompt is too long. A model without a fill-in-the-middle format (a chat
    checkpoint) continues the text before the cursor instead; the syntax guard still reads what follows.
    Every attempt together gets `deadline` seconds; past it a single line has no answer (response None).
    model_service unreachable sooner is still an error."""
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
                logprobs=None if multiline else 0,  # a single line's samples are ranked by their log-probability
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
    release_connection()  # while the model scores and generates; the completion's record takes one again
    multiline = is_multiline(request.prefix, request.suffix)
    deadline = _model_deadline_s(multiline)
    ranking = _scored(request, ranked_candidates(continuations, (), multiline=multiline), deadline)
    ranked, rankings = ranking.candidates, [ranking]
    chosen, action, attempts = choose_candidate(ranked, language=request.language, prefix=request.prefix,
                                                suffix=request.suffix, multiline=multiline)
    generated_by_model, model_seconds = None, 0.0
    if not chosen:  # the model is asked only when no repository continuation passes the guard
        asked = time.perf_counter()
        generated_by_model = _generate(request, candidates, multiline, max(0.001, deadline - ranking.seconds))
        model_seconds = time.perf_counter() - asked
        response = generated_by_model.response
        rankings.append(_samples_ranked(response, multiline, request.use_ranking))
        samples = rankings[-1].candidates
        chosen, action, tried = choose_candidate(samples, language=request.language, prefix=request.prefix,
                                                 suffix=request.suffix, multiline=multiline)
        action = action if response else "model-too-slow"
        attempts += [{**attempt, "candidate": attempt["candidate"] + len(ranked)} for attempt in tried]
        ranked += samples
    finished = time.perf_counter()
    timings = {"retrieval_ms": round((retrieved - started) * 1000, 1),
               "matching_ms": round((matched - retrieved) * 1000, 1),
               "scoring_ms": round(rankings[0].seconds * 1000, 1),
               "model_ms": round(model_seconds * 1000, 1),
               "postprocess_ms": round((finished - matched - rankings[0].seconds - model_seconds) * 1000, 1),
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
             "ranking": [ranking.by for ranking in rankings],  # per round (repository, then the model's samples)
             "candidates": [{"text": c.text, "source": c.source, "match_tokens": c.match_tokens, "count": c.count,
                             "filepath": c.filepath, "logprob": c.logprob, "rank_score": c.rank_score}
                            for c in ranked],
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
