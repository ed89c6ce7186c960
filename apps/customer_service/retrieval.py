"""Hybrid FAQ retrieval: dense (all-MiniLM-L6-v2 via model_service, faiss) + lexical (bm25s), fused by
a weighted sum of scores, with a calibrated confidence.

Questions and their phrasings are indexed apart from answers: a customer's question is matched
mainly against the ways the question is asked, with the answer as a weaker field.

Why scores and not reciprocal rank fusion: RRF keeps only ranks, so a near-exact paraphrase match
(cosine 0.9) counts no more than a weak one (0.5) and BM25's votes, much weaker here, overturn good
dense matches. On StackFAQ (benchmarks/faq_retrieval.py) RRF (k=60) reached P@1 0.878 against 0.917
for dense alone; the score sum below reaches about 0.95, above both.

A per-KB classifier over the question-side vectors (EntryClassifier: logistic regression, prototypes
above LOGISTIC_MAX_ENTRIES) is a fifth score in the sum and a calibration feature; it is fitted in
`build` and saved with the index, as is the KB's own calibration (apps/customer_service/tuning.py).
Banking77, 10 texts per intent, 1,540 other customer queries: top-1 0.843 without the classifier,
0.857 with it (base model), 0.867 with the KB's tuned model; logistic regression alone 0.846 / 0.857.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import bm25s
import faiss
import numpy as np
import Stemmer
from threadpoolctl import ThreadpoolController

FIELD_WEIGHTS = {  # weight of each score in the sum: dense scores are cosines, lexical ones BM25 / best BM25,
    "question_dense": 1.0,  # the classifier's a probability (its weight chosen on Banking77's held-out phrasings)
    "question_lexical": 0.1,
    "answer_dense": 0.2,
    "answer_lexical": 0.05,
    "classifier": 1.0,
}
CANDIDATES = 50  # hits taken from each ranking before fusion
CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
LOGISTIC_MAX_ENTRIES = 1_000  # above this many entries the classifier is prototypes (fit time bounded)
LOGISTIC_C = 10.0  # inverse regularisation of the per-KB logistic regression
PROTOTYPE_SCALE = 20.0  # logits of the prototype classifier: scale x cosine to the entry's mean vector
LEGACY_FEATURES = ("question_cosine", "cosine_margin", "lexical_agrees")
_STEMMER = Stemmer.Stemmer("english")
_THREADPOOLS = ThreadpoolController()  # numpy's BLAS and faiss's OpenMP, both loaded by the imports above


def _one_thread():
    """BLAS and faiss's OpenMP on one thread for the length of a search.

    A query is one vector: splitting its matrix-vector products across threads only makes the threads wait
    for each other and for the other processes on the cores (model_service, the worker). Measured at 10k
    entries on 2 busy cores: the classifier's product 14 ms with 2 threads, 0.9 ms with 1; the whole search
    88 ms -> 24 ms (p50). A limit set once at import would not do: OpenMP's is per thread, and the web
    server searches from its own threads."""
    return _THREADPOOLS.limit(limits=1)


def _tokens(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(texts, stopwords="en", stemmer=_STEMMER, return_ids=False, show_progress=False)


@dataclass(frozen=True)
class Calibration:
    """Logistic map from retrieval features to P(top entry answers the question)."""

    weights: tuple[float, ...]  # one per name in `features`
    bias: float
    threshold: float  # confidence at or above which the app answers
    features: tuple[str, ...] = LEGACY_FEATURES  # names of SearchResult.feature_values used, in order
    curve: tuple[dict, ...] = ()  # trade-off rows measured when fitted (tuning.fit_calibration)
    provenance: str = ""

    @classmethod
    def load(cls) -> Calibration:
        """The module default, for a knowledge base without a calibration of its own."""
        return cls.from_dict(json.loads(CALIBRATION_FILE.read_text()))

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        return cls(tuple(data["weights"]), data["bias"], data["threshold"],
                   tuple(data.get("features", LEGACY_FEATURES)), tuple(data.get("curve", ())),
                   data.get("provenance", ""))

    def as_dict(self) -> dict:
        return {"weights": list(self.weights), "bias": self.bias, "threshold": self.threshold,
                "features": list(self.features), "curve": list(self.curve), "provenance": self.provenance}

    def with_threshold(self, threshold: float) -> Calibration:
        return replace(self, threshold=threshold)

    def confidence(self, features: tuple[float, ...] | dict[str, float]) -> float:
        """`features`: all named values (SearchResult.feature_values) or those of `self.features` in order."""
        values = [features[name] for name in self.features] if isinstance(features, dict) else features
        z = self.bias + sum(w * x for w, x in zip(self.weights, values))
        return 1.0 / (1.0 + math.exp(-z))


@dataclass
class Hit:
    entry_id: int
    score: float  # fused score
    ranks: dict[str, int] = field(default_factory=dict)  # 1-based rank in each ranking that found it
    question_cosine: float = 0.0  # best cosine between the query and the entry's question side


@dataclass
class SearchResult:
    hits: list[Hit]
    confidence: float  # calibrated probability that hits[0] answers the question
    confident: bool
    features: tuple[float, ...] = ()  # the values the calibration used, in its order
    dense: bool = True  # False when the query could not be embedded
    feature_values: dict[str, float] = field(default_factory=dict)  # every feature by name


class _Side:
    """One field (question side or answer side): texts, the entry each belongs to, lexical and dense indexes."""

    def __init__(self, entry_ids: np.ndarray, texts: list[str], dense: faiss.Index | None):
        self.entry_ids = entry_ids
        self.texts = texts
        self.lexical = bm25s.BM25()
        self.lexical.index(_tokens(texts) if texts else [[]], show_progress=False)
        self.vocabulary = set(self.lexical.vocab_dict)
        self.dense = dense if dense is not None and dense.ntotal else None

    @staticmethod
    def flat_index(vectors: np.ndarray | None) -> faiss.Index | None:
        """Exact inner-product search over unit vectors (= cosine)."""
        if vectors is None or not len(vectors):
            return None
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return index

    def lexical_ranking(self, query: str, limit: int, allowed: set[int] | None = None) -> list[tuple[int, float]]:
        tokens = [token for token in _tokens([query])[0] if token in self.vocabulary]
        if not tokens or not self.texts:
            return []
        documents, scores = self.lexical.retrieve([tokens], k=self._depth(limit, allowed, len(self.texts)),
                                                  show_progress=False)
        return _best_per_entry(self.entry_ids[documents[0]], scores[0], allowed)[:limit]

    def dense_ranking(self, vector: np.ndarray, limit: int, allowed: set[int] | None = None
                      ) -> list[tuple[int, float]]:
        if self.dense is None:
            return []
        scores, documents = self.dense.search(vector[None, :].astype(np.float32),
                                              self._depth(limit, allowed, self.dense.ntotal))
        valid = documents[0] >= 0
        return _best_per_entry(self.entry_ids[documents[0][valid]], scores[0][valid], allowed)[:limit]

    @staticmethod
    def _depth(limit: int, allowed: set[int] | None, total: int) -> int:
        """How many texts to rank: `limit`, or all of them when only `allowed` entries count (the best
        allowed ones may rank anywhere)."""
        return total if allowed is not None else min(limit, total)


def _best_per_entry(entry_ids: np.ndarray, scores: np.ndarray, allowed: set[int] | None = None
                    ) -> list[tuple[int, float]]:
    """(entry, best score) in descending order; an entry with several texts counts once; only `allowed`
    entries when given."""
    best: dict[int, float] = {}
    for entry_id, score in zip(entry_ids.tolist(), scores.tolist()):
        if score > 0 and entry_id not in best and (allowed is None or entry_id in allowed):
            best[entry_id] = score
    return list(best.items())


class EntryClassifier:
    """P(entry | query vector) = softmax(weights @ vector + bias) over the knowledge base's entries, fitted
    on the question-side vectors. Multinomial logistic regression up to LOGISTIC_MAX_ENTRIES entries;
    above, prototypes (each entry's mean unit vector, logits PROTOTYPE_SCALE x cosine): logistic
    regression's fit grows with entries x texts, prototypes' stays a mean (benchmarks/faq_retrieval.py)."""

    def __init__(self, entry_ids: np.ndarray, weights: np.ndarray, bias: np.ndarray):
        self.entry_ids = entry_ids  # (entries,)
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)  # (entries, dim)
        self.bias = bias.astype(np.float32)  # (entries,)
        self._position = {entry_id: i for i, entry_id in enumerate(entry_ids.tolist())}

    @classmethod
    def fit(cls, entry_ids: np.ndarray, vectors: np.ndarray) -> EntryClassifier | None:
        """None without vectors, or when every entry has one question-side text: the classifier would only
        repeat the dense cosine (on StackFAQ it cost P@1 0.955 -> 0.948)."""
        if vectors is None or not len(vectors):
            return None
        labels, inverse = np.unique(entry_ids, return_inverse=True)
        if len(labels) == len(entry_ids) and len(labels) > 1:
            return None
        if len(labels) == 1 or len(labels) > LOGISTIC_MAX_ENTRIES:
            return cls.prototypes(labels, inverse, vectors)
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=LOGISTIC_C, max_iter=300).fit(vectors, inverse)
        weights, bias = model.coef_, model.intercept_
        if len(labels) == 2:  # sklearn keeps one row for two classes: p(second) = sigmoid(row)
            weights, bias = np.vstack([-weights / 2, weights / 2]), np.array([-bias[0] / 2, bias[0] / 2])
        return cls(labels, weights, bias)

    @classmethod
    def prototypes(cls, labels: np.ndarray, inverse: np.ndarray, vectors: np.ndarray) -> EntryClassifier:
        sums = np.zeros((len(labels), vectors.shape[1]), dtype=np.float64)
        np.add.at(sums, inverse, vectors)
        centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        return cls(labels, PROTOTYPE_SCALE * centroids, np.zeros(len(labels)))

    def ranking(self, vector: np.ndarray, limit: int, allowed: set[int] | None = None) -> list[tuple[int, float]]:
        """(entry, probability) best first; with `allowed`, the softmax runs over those entries only."""
        logits = self.weights @ vector.astype(np.float32) + self.bias  # (entries,)
        rows = np.arange(len(self.entry_ids))
        if allowed is not None:
            rows = np.array([self._position[e] for e in allowed if e in self._position], dtype=np.int64)
            if not len(rows):
                return []
        logits = logits[rows]
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        best = np.argpartition(-probabilities, limit - 1)[:limit] if limit < len(rows) else np.arange(len(rows))
        best = best[np.argsort(-probabilities[best])]
        return list(zip(self.entry_ids[rows[best]].tolist(), probabilities[best].tolist()))

    def save(self, path: Path) -> None:
        np.savez(path, entry_ids=self.entry_ids, weights=self.weights, bias=self.bias)

    @classmethod
    def load(cls, path: Path) -> EntryClassifier:
        with np.load(path) as data:
            return cls(data["entry_ids"], data["weights"], data["bias"])


@dataclass
class IndexData:
    """What an index is built from: texts with their entries, and their unit vectors."""

    question_entries: list[int]
    question_texts: list[str]
    question_vectors: np.ndarray | None  # (texts, 384) or None without embeddings
    answer_entries: list[int]
    answer_texts: list[str]
    answer_vectors: np.ndarray | None


class KnowledgeBaseIndex:
    def __init__(self, question: _Side, answer: _Side, calibration: Calibration | None = None,
                 classifier: EntryClassifier | None = None):
        self.question = question
        self.answer = answer
        self.own_calibration = calibration  # saved with the index; None: the module default
        self.calibration = calibration or Calibration.load()
        self.classifier = classifier

    @classmethod
    def build(cls, data: IndexData, calibration: Calibration | None = None) -> KnowledgeBaseIndex:
        question_entries = np.array(data.question_entries, dtype=np.int64)
        return cls(_Side(question_entries, data.question_texts, _Side.flat_index(data.question_vectors)),
                   _Side(np.array(data.answer_entries, dtype=np.int64), data.answer_texts,
                         _Side.flat_index(data.answer_vectors)), calibration,
                   EntryClassifier.fit(question_entries, data.question_vectors))

    @property
    def has_dense(self) -> bool:
        return self.question.dense is not None

    def search(self, query: str, query_vector: np.ndarray | None, *, k: int = 5,
               weights: dict[str, float] | None = None, allowed: set[int] | None = None) -> SearchResult:
        """The `k` best entries (only `allowed` ones when given) with the confidence that the first answers."""
        with _one_thread():
            return self._search(query, query_vector, k=k, weights=weights or FIELD_WEIGHTS, allowed=allowed)

    def _search(self, query: str, query_vector: np.ndarray | None, *, k: int, weights: dict[str, float],
                allowed: set[int] | None) -> SearchResult:
        rankings = {"question_lexical": self.question.lexical_ranking(query, CANDIDATES, allowed),
                    "answer_lexical": self.answer.lexical_ranking(query, CANDIDATES, allowed)}
        dense = query_vector is not None and self.has_dense
        if dense:
            rankings["question_dense"] = self.question.dense_ranking(query_vector, CANDIDATES, allowed)
            rankings["answer_dense"] = self.answer.dense_ranking(query_vector, CANDIDATES, allowed)
            if self.classifier is not None:
                rankings["classifier"] = self.classifier.ranking(query_vector, CANDIDATES, allowed)
        hits: dict[int, Hit] = {}
        for name, ranking in rankings.items():
            scale = ranking[0][1] if ranking and name.endswith("lexical") else 1.0  # BM25 is unbounded
            for rank, (entry_id, score) in enumerate(ranking, start=1):
                hit = hits.setdefault(entry_id, Hit(entry_id, 0.0))
                hit.score += weights.get(name, 0.0) * score / scale
                hit.ranks[name] = rank
                if name == "question_dense":
                    hit.question_cosine = score
        ordered = sorted(hits.values(), key=lambda hit: hit.score, reverse=True)[:k]
        if not ordered or not dense:
            return SearchResult(ordered, 0.0, False, dense=dense)
        values = self._features(ordered, rankings, best_possible_score(dense=True, weights=weights))
        features = tuple(values[name] for name in self.calibration.features)
        confidence = self.calibration.confidence(features)
        return SearchResult(ordered, confidence, confidence >= self.calibration.threshold, features, dense, values)

    @staticmethod
    def _features(hits: list[Hit], rankings: dict[str, list[tuple[int, float]]], best: float) -> dict[str, float]:
        """What the calibration may weigh: how strong the top hit is and how far ahead of the runner-up."""
        top = hits[0].entry_id
        dense = rankings["question_dense"]
        top_cosine = hits[0].question_cosine
        runner_up = max((score for entry_id, score in dense if entry_id != top), default=0.0)
        lexical = rankings["question_lexical"]
        classifier = dict(rankings.get("classifier", []))
        second = hits[1].score if len(hits) > 1 else 0.0
        return {"question_cosine": top_cosine, "cosine_margin": top_cosine - runner_up,
                "lexical_agrees": 1.0 if lexical and lexical[0][0] == top else 0.0,
                "classifier": classifier.get(top, 0.0), "fused": hits[0].score / best,
                "fused_margin": (hits[0].score - second) / best}

    # --- persistence: texts as JSON (bm25s re-indexes them in milliseconds), faiss indexes as files
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, side in (("question", self.question), ("answer", self.answer)):
            (directory / f"{name}.json").write_text(json.dumps({"entries": side.entry_ids.tolist(),
                                                                "texts": side.texts}))
            if side.dense is not None:
                faiss.write_index(side.dense, str(directory / f"{name}.faiss"))
        if self.classifier is not None:
            self.classifier.save(directory / "classifier.npz")
        if self.own_calibration is not None:
            (directory / "calibration.json").write_text(json.dumps(self.own_calibration.as_dict()))

    @classmethod
    def load(cls, directory: Path) -> KnowledgeBaseIndex:
        def side(name: str) -> _Side:
            texts = json.loads((directory / f"{name}.json").read_text())
            dense_file = directory / f"{name}.faiss"
            dense = faiss.read_index(str(dense_file)) if dense_file.exists() else None
            return _Side(np.array(texts["entries"], dtype=np.int64), texts["texts"], dense)

        classifier_file, calibration_file = directory / "classifier.npz", directory / "calibration.json"
        classifier = EntryClassifier.load(classifier_file) if classifier_file.exists() else None
        calibration = (Calibration.from_dict(json.loads(calibration_file.read_text()))
                       if calibration_file.exists() else None)
        return cls(side("question"), side("answer"), calibration, classifier)


def best_possible_score(*, dense: bool, weights: dict[str, float] | None = None) -> float:
    """The fused score of an entry first in every ranking with cosine 1: what divides a score into [0, 1]."""
    weights = weights or FIELD_WEIGHTS
    return sum(weight for name, weight in weights.items() if dense or name.endswith("lexical"))


def index_directory(knowledge_base_id: int) -> Path:
    from django.conf import settings

    return settings.SUITE_DATA_DIR / "indexes" / f"kb_{knowledge_base_id}"

