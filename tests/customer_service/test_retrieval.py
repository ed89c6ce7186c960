"""KnowledgeBaseIndex's per-KB classifier and calibration: fitted in build, fused into the ranking, and
kept by save/load (synthetic unit vectors: no model needed)."""
import json

import numpy as np
import pytest

from apps.customer_service.retrieval import (LEGACY_FEATURES, Calibration, EntryClassifier, IndexData,
                                             KnowledgeBaseIndex)

DIM = 16


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _data(entries: int = 6, texts_per_entry: int = 3, seed: int = 0) -> IndexData:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(entries, DIM))
    question_entries = [100 + e for e in range(entries) for _ in range(texts_per_entry)]
    vectors = _unit(np.vstack([centres[e - 100] + 0.3 * rng.normal(size=DIM) for e in question_entries]))
    texts = [f"question {e} wording {i}" for i, e in enumerate(question_entries)]
    answer_entries = [100 + e for e in range(entries)]
    return IndexData(question_entries, texts, vectors, answer_entries, [f"answer {e}" for e in answer_entries],
                     _unit(centres))


CALIBRATION = Calibration((2.0, 1.0, 3.0, 0.5, 0.5, 0.2), -2.0, 0.4,
                          ("fused", "fused_margin", "classifier", "question_cosine", "cosine_margin",
                           "lexical_agrees"), ({"threshold": 0.4, "answered_in_scope": 0.9},), "test")


def test_build_fits_a_classifier_whose_probabilities_rank_the_entries():
    data = _data()
    index = KnowledgeBaseIndex.build(data)
    ranking = index.classifier.ranking(data.question_vectors[0], 10)
    assert ranking[0][0] == 100 and len(ranking) == 6
    assert sum(p for _, p in ranking) == pytest.approx(1.0, abs=1e-5)
    assert index.classifier.bias.any()  # logistic regression, not prototypes, at this size


def test_classifier_with_allowed_entries_renormalises_over_them():
    data = _data()
    classifier = KnowledgeBaseIndex.build(data).classifier
    ranking = classifier.ranking(data.question_vectors[0], 10, allowed={101, 102, 999})
    assert {entry for entry, _ in ranking} == {101, 102}
    assert sum(p for _, p in ranking) == pytest.approx(1.0, abs=1e-5)
    assert classifier.ranking(data.question_vectors[0], 10, allowed={999}) == []


def test_no_classifier_when_every_entry_has_one_text():
    one_text = _data(texts_per_entry=1)
    assert EntryClassifier.fit(np.array(one_text.question_entries), one_text.question_vectors) is None
    index = KnowledgeBaseIndex.build(one_text)
    result = index.search("zzz", one_text.question_vectors[2], k=3)
    assert result.hits[0].entry_id == 102 and "classifier" not in result.hits[0].ranks
    assert result.feature_values["classifier"] == 0.0


def test_classifier_is_prototypes_above_the_logistic_limit(monkeypatch):
    monkeypatch.setattr("apps.customer_service.retrieval.LOGISTIC_MAX_ENTRIES", 3)
    data = _data()
    classifier = EntryClassifier.fit(np.array(data.question_entries), data.question_vectors)
    assert not classifier.bias.any()
    assert classifier.ranking(data.question_vectors[7], 1)[0][0] == 102


def test_a_single_entry_gets_probability_one():
    data = _data(entries=1)
    classifier = EntryClassifier.fit(np.array(data.question_entries), data.question_vectors)
    assert classifier.ranking(data.question_vectors[0], 5) == [(100, pytest.approx(1.0))]


def test_save_and_load_keep_the_classifier_and_the_own_calibration(tmp_path):
    data = _data()
    index = KnowledgeBaseIndex.build(data, CALIBRATION)
    index.save(tmp_path / "kb")
    loaded = KnowledgeBaseIndex.load(tmp_path / "kb")
    assert loaded.calibration == CALIBRATION and loaded.own_calibration == CALIBRATION
    query = _unit(data.question_vectors[4:5] + 0.2)[0]
    before, after = index.search("question wording", query, k=6), loaded.search("question wording", query, k=6)
    assert [(h.entry_id, round(h.score, 5)) for h in after.hits] == [(h.entry_id, round(h.score, 5)) for h in before.hits]
    assert after.confidence == pytest.approx(before.confidence) and after.confident == before.confident
    assert np.array_equal(loaded.classifier.weights, index.classifier.weights)


def test_an_index_without_its_own_calibration_loads_the_module_default(tmp_path):
    KnowledgeBaseIndex.build(_data()).save(tmp_path / "kb")
    assert not (tmp_path / "kb" / "calibration.json").exists()
    loaded = KnowledgeBaseIndex.load(tmp_path / "kb")
    assert loaded.own_calibration is None and loaded.calibration == Calibration.load()


def test_the_classifier_is_fused_into_the_ranking():
    data = _data()
    index = KnowledgeBaseIndex.build(data, CALIBRATION)
    query = data.question_vectors[7]
    result = index.search("zzz", query, k=6)  # no lexical match: dense and classifier only
    probabilities = dict(index.classifier.ranking(query, 50))
    for hit in result.hits:
        answer_cosine = float(data.answer_vectors[hit.entry_id - 100] @ query)
        expected = hit.question_cosine + 0.2 * max(answer_cosine, 0.0) + 1.0 * probabilities[hit.entry_id]  # a
        # ranking keeps positive scores only
        assert hit.score == pytest.approx(expected, abs=1e-5) and "classifier" in hit.ranks
    assert result.feature_values["classifier"] == pytest.approx(probabilities[result.hits[0].entry_id])
    assert result.features == tuple(result.feature_values[name] for name in CALIBRATION.features)
    assert result.confidence == pytest.approx(CALIBRATION.confidence(result.feature_values))


def test_calibration_reads_the_legacy_three_feature_file():
    legacy = {"weights": [3.8, 5.3, 0.5], "bias": -2.3, "threshold": 0.5, "provenance": "old"}
    calibration = Calibration.from_dict(json.loads(json.dumps(legacy)))
    assert calibration.features == LEGACY_FEATURES and calibration.curve == ()
    assert calibration.confidence({"question_cosine": 0.5, "cosine_margin": 0.1, "lexical_agrees": 1.0,
                                   "classifier": 0.9}) == pytest.approx(1 / (1 + np.exp(-(-2.3 + 1.9 + 0.53 + 0.5))))
    assert Calibration.from_dict(calibration.as_dict()) == calibration



def test_a_search_runs_numpys_blas_and_faisss_openmp_on_one_thread_and_puts_the_counts_back(monkeypatch):
    from threading import Thread

    from threadpoolctl import threadpool_info

    from apps.customer_service import retrieval

    searched = {pool["filepath"] for pool in retrieval._THREADPOOLS.info()}  # numpy's and faiss's pools

    def counts() -> dict[str, int]:
        return {pool["filepath"]: pool["num_threads"] for pool in threadpool_info() if pool["filepath"] in searched}

    data = _data()
    index = KnowledgeBaseIndex.build(data)
    before = counts()
    if max(before.values()) == 1:
        pytest.skip("one core: a limit of one shows nothing")
    seen = []
    ranking = EntryClassifier.ranking

    def recording_ranking(self, *args, **kwargs):
        seen.append(set(counts().values()))
        return ranking(self, *args, **kwargs)

    monkeypatch.setattr(EntryClassifier, "ranking", recording_ranking)
    thread = Thread(target=index.search, args=("question", data.question_vectors[0]))  # as a web server's thread
    thread.start()
    thread.join()

    assert {"blas", "openmp"} <= {pool["user_api"] for pool in retrieval._THREADPOOLS.info()}
    assert seen == [{1}]
    assert counts() == before
