"""Ranking a single line's candidates by the model's log-probability of each after the text before the
cursor (one echo-with-logprobs request for all of them), together with their match length."""
import openai
import pytest

from apps.codegen.completion import (MATCH_BONUS_NATS, MODEL, REPOSITORY, Candidate, echoed_logprob, ranked_by_logprob,
                                     scoring_texts)
from apps.codegen.models import Repository
from apps.codegen.services import repository_index

URL = "/api/codegen/v1/completions"
PREFIX = "def settle(account):\n    return account."
LINES = ["balance_total()", "close_now(force=True)"]


def test_the_echoed_logprob_sums_the_candidates_tokens_and_not_the_generated_one():
    logprobs = {"tokens": ["", "x", " =", " 1", "\n", "y"], "token_logprobs": [None, -1.0, -2.0, -0.5, -0.25, -9.0],
                "text_offset": [0, 0, 1, 3, 5, 6]}

    assert echoed_logprob(logprobs, 3, 6) == -0.75  # " 1" and "\n", not the prompt's nor the generated "y"
    assert echoed_logprob(logprobs, 2, 6) == -2.75  # " =" reaches past the prompt's end: it is scored too


def test_the_scored_texts_end_the_cursors_line_once_per_distinct_candidate():
    candidates = [Candidate("a)", REPOSITORY, 4), Candidate("b)", MODEL), Candidate("a)", MODEL)]

    prompt, texts = scoring_texts("x = 1\ny = f(", "  # note\nz = 2\n", candidates)

    assert prompt == "x = 1\ny = f("
    assert texts == ["x = 1\ny = f(a)  # note\n", "x = 1\ny = f(b)  # note\n"]


def test_a_longer_match_outweighs_a_small_logprob_difference():
    candidates = [Candidate("likely", MODEL), Candidate("matched", REPOSITORY, match_tokens=10)]

    ranked = ranked_by_logprob(candidates, {"likely": -1.0, "matched": -2.0})

    assert [c.text for c in ranked] == ["matched", "likely"]
    assert ranked[0].rank_score == -2.0 + 10 * MATCH_BONUS_NATS


def model_logprobs(server, texts: list[str]) -> list[float]:
    """The model's log-probability of each line after PREFIX, asked of model_service directly."""
    scored = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0).completions.create(
        model="tiny-random", prompt=[PREFIX + text + "\n" for text in texts], max_tokens=1, temperature=0,
        echo=True, logprobs=0)
    totals = []
    for choice, text in zip(scored.choices, texts):
        end = len(PREFIX + text + "\n")
        totals.append(sum(value for offset, token, value in zip(choice.logprobs.text_offset, choice.logprobs.tokens,
                                                                 choice.logprobs.token_logprobs)
                          if offset < end and offset + len(token) > len(PREFIX)))
    return totals


def repository_writing(repository_copy, lines: list[str]) -> Repository:
    """An indexed repository with one file per line, each the same function ending in that line."""
    for number, line in enumerate(lines):
        (repository_copy / "inventory" / f"ledger_{number}.py").write_text(f"{PREFIX}{line}\n")
    repository = Repository.objects.create(name="ledger", path=str(repository_copy), shared=True)
    repository_index(repository_id=repository.id)
    return repository


def complete(client, bearer, repository: Repository) -> dict:
    body = {"language": "python", "repository": repository.id, "debug_options": {"return_snippets": True},
            "segments": {"prefix": PREFIX, "suffix": "\n", "filepath": "inventory/new.py"}}
    return client.post(URL, body, content_type="application/json", **bearer).json()


@pytest.mark.slow
def test_ranking_prefers_the_candidate_the_model_scores_higher(client, bearer, settings, transformers_server,
                                                                repository_copy, db):
    settings.MODEL_SERVICE_URL = transformers_server.url
    scores = dict(zip(LINES, model_logprobs(transformers_server, LINES)))
    preferred, other = sorted(LINES, key=lambda line: -scores[line])
    # the repository writes the line the model scores lower twice: the match order alone would serve it
    repository = repository_writing(repository_copy, [other, other, preferred])

    data = complete(client, bearer, repository)

    assert data["choices"][0]["text"] == preferred
    debug = data["debug_data"]
    assert (debug["source"], debug["model_called"], debug["ranking"]) == (REPOSITORY, False, ["logprob"])
    assert [(c["text"], c["count"]) for c in debug["candidates"]] == [(preferred, 1), (other, 2)]
    assert [c["logprob"] for c in debug["candidates"]] == pytest.approx([scores[preferred], scores[other]], abs=1e-3)
    assert debug["candidates"][0]["rank_score"] == pytest.approx(
        scores[preferred] + MATCH_BONUS_NATS * debug["candidates"][0]["match_tokens"], abs=1e-3)


def test_without_scores_the_candidates_keep_the_match_order(client, bearer, scripted_model_service, repository_copy,
                                                            db):
    repository = repository_writing(repository_copy, [LINES[1], LINES[1], LINES[0]])  # the stand-in gives no logprobs

    data = complete(client, bearer, repository)

    assert data["choices"][0]["text"] == LINES[1]
    assert (data["debug_data"]["ranking"], data["debug_data"]["candidates"][0]["logprob"]) == (["scoring-failed"], None)
    assert [request["echo"] for request in scripted_model_service.requests] == [True]  # one request scored both


def test_the_disable_ranking_option_sends_no_scoring_request(client, bearer, scripted_model_service, repository_copy,
                                                             db):
    repository = repository_writing(repository_copy, [LINES[1], LINES[1], LINES[0]])
    body = {"language": "python", "repository": repository.id,
            "debug_options": {"return_snippets": True, "disable_ranking": True},
            "segments": {"prefix": PREFIX, "suffix": "\n", "filepath": "inventory/new.py"}}

    data = client.post(URL, body, content_type="application/json", **bearer).json()

    assert (data["choices"][0]["text"], data["debug_data"]["ranking"]) == (LINES[1], ["disabled"])
    assert scripted_model_service.requests == []
