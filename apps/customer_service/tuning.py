"""A knowledge base's own retrieval adapter: contrastive fine-tuning of the embedding model on the KB's
wordings, the index built with it, and the confidence calibrated for that KB. No Django here: the
Celery job and benchmarks/faq_retrieval.py both call these functions.

The recipe, and why:
- Pairs: each customer wording (an entry's question or phrasing, or an agent's feedback pair) with
  another question-side text of the same entry, or its answer. The loss is cross-entropy over the
  batch's positives plus one mined hard negative per pair (the most similar text of another entry
  under the model before tuning): in-batch negatives teach the broad map, hard negatives the
  confusable entries (Banking77's card_arrival vs card_delivery_estimate). Texts of the same entry met
  elsewhere in the batch are masked out, not counted as negatives.
- A share of each entry's phrasings is held out (`held_out_split`): they choose whether a new model
  replaces the current one (`top1_accuracy` through the full retrieval pipeline) and fit the
  calibration, so neither is judged on what the model was trained on.
- Calibration (`fit_calibration`): logistic regression of "the top hit answers the question" on the
  search features, fitted on the held-out phrasings (positives when answered right), the same
  phrasings searched with their own entry excluded (an in-domain question the KB does not cover: the
  hard case of out-of-scope) and apps/customer_service/out_of_scope.py (generic chit-chat).
TuningSettings' defaults were chosen on Banking77's held-out phrasings (entries of 10 texts,
held_out_split(share=0.3): 231 pairs; the test queries never seen), app top-1 with the classifier weight
1.0: base model 0.840; tuned 1 epoch at 5e-5 0.840, 3 epochs at 5e-5 0.844, 2 epochs at 1e-4 0.810.
"""
from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from apps.customer_service.retrieval import FIELD_WEIGHTS, Calibration, IndexData, KnowledgeBaseIndex

Embed = Callable[[list[str]], np.ndarray]
CALIBRATION_FEATURES = ("fused", "fused_margin", "classifier", "question_cosine", "cosine_margin", "lexical_agrees")
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 .. 0.95


@dataclass(frozen=True)
class Pair:
    text: str  # a customer wording
    entry_id: int  # the entry that answers it


@dataclass(frozen=True)
class EntryTexts:
    entry_id: int
    question: str
    phrasings: tuple[str, ...]
    answer: str

    @property
    def question_side(self) -> tuple[str, ...]:
        return (self.question, *self.phrasings)


@dataclass(frozen=True)
class TuningSettings:
    epochs: int = 3  # passes over the wordings
    batch_size: int = 32  # pairs per step (each brings its positive and its hard negative)
    learning_rate: float = 5e-5  # AdamW, linear decay after warmup
    warmup_share: float = 0.1  # share of the steps with a rising learning rate
    hard_negatives: bool = True  # one mined hard negative per pair
    answer_share: float = 0.2  # probability that a pair's positive is the entry's answer, not another wording
    scale: float = 20.0  # cosine -> logit (temperature 0.05)
    seed: int = 0
    max_seconds: float = 900.0  # training stops (and saves what it has) after this long
    max_length: int = 64  # tokens per text while training (the saved model keeps the base's limit)


def held_out_split(entries: list[EntryTexts], *, share: float = 0.2, seed: int = 0
                   ) -> tuple[list[EntryTexts], list[Pair]]:
    """The entries with `share` of their phrasings (at least one, rounded) removed, and the removed ones as
    pairs. The question is never held out; an entry with fewer than 2 phrasings keeps all. Deterministic
    for a seed and independent of the entries' order."""
    kept, held_out = [], []
    for entry in entries:
        rng = random.Random(f"{seed}:{entry.entry_id}")
        count = max(1, round(share * len(entry.phrasings))) if len(entry.phrasings) >= 2 else 0
        chosen = set(rng.sample(range(len(entry.phrasings)), count))
        kept.append(EntryTexts(entry.entry_id, entry.question,
                               tuple(p for i, p in enumerate(entry.phrasings) if i not in chosen), entry.answer))
        held_out += [Pair(entry.phrasings[i], entry.entry_id) for i in sorted(chosen)]
    return kept, held_out


def load_encoder(path: Path, *, batch_size: int = 64) -> Embed:
    """texts -> (texts, dim) float32 unit vectors, with the SentenceTransformer saved at `path`."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device="cpu")

    def encode(texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, model.get_embedding_dimension()), dtype=np.float32)
        return model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                            convert_to_numpy=True).astype(np.float32)

    return encode


def _training_pairs(entries: list[EntryTexts], extra_pairs: list[Pair]) -> list[tuple[str, int]]:
    """(wording, entry) for every question-side text and every feedback pair of a known entry."""
    known = {entry.entry_id for entry in entries}
    wordings = [(text, entry.entry_id) for entry in entries for text in entry.question_side]
    return wordings + [(pair.text, pair.entry_id) for pair in extra_pairs if pair.entry_id in known]


def _hard_negatives(model, wordings: list[tuple[str, int]], entries: list[EntryTexts]) -> list[str | None]:
    """For each wording, the most similar question-side text of another entry under the untuned model."""
    texts = [(text, entry.entry_id) for entry in entries for text in entry.question_side]
    corpus = model.encode([t for t, _ in texts], batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    queries = model.encode([t for t, _ in wordings], batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    owners = np.array([entry_id for _, entry_id in texts])
    negatives = []
    for vector, (_, entry_id) in zip(queries, wordings):
        similarities = corpus @ vector
        similarities[owners == entry_id] = -np.inf
        best = int(np.argmax(similarities))
        negatives.append(texts[best][0] if np.isfinite(similarities[best]) else None)
    return negatives


def fine_tune(*, base_model: Path, entries: list[EntryTexts], extra_pairs: list[Pair], output_dir: Path,
              settings: TuningSettings = TuningSettings(), on_progress: Callable[[dict], None] | None = None,
              should_stop: Callable[[], bool] | None = None) -> dict:
    """Contrastive fine-tuning of the SentenceTransformer at `base_model` on the entries' wordings (and
    `extra_pairs`), saved to `output_dir` (SentenceTransformer.save). Returns {"steps", "loss_curve",
    "seconds", "stopped"}; `on_progress({"step", "total", "loss"})` every few steps; `should_stop()`
    ends training early (the model so far is still saved)."""
    import torch
    from sentence_transformers import SentenceTransformer

    started = time.monotonic()
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    model = SentenceTransformer(str(base_model), device="cpu")
    serving_length, model.max_seq_length = model.max_seq_length, settings.max_length
    by_entry = {entry.entry_id: entry for entry in entries}
    wordings = _training_pairs(entries, extra_pairs)
    negatives = _hard_negatives(model, wordings, entries) if settings.hard_negatives else [None] * len(wordings)
    rng = random.Random(settings.seed)
    steps_per_epoch = math.ceil(len(wordings) / settings.batch_size)
    total = settings.epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate)
    warmup = max(1, int(settings.warmup_share * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup))))
    model.train()
    loss_curve, step, stopped = [], 0, False
    for _ in range(settings.epochs):
        order = list(range(len(wordings)))
        rng.shuffle(order)
        for start in range(0, len(order), settings.batch_size):
            if (should_stop and should_stop()) or time.monotonic() - started > settings.max_seconds:
                stopped = True
                break
            batch = [(wordings[i], negatives[i]) for i in order[start:start + settings.batch_size]]
            loss = _contrastive_loss(model, batch, by_entry, rng, settings)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            loss_curve.append(round(loss.item(), 4))
            if on_progress and (step % 5 == 0 or step == total):
                on_progress({"step": step, "total": total, "loss": loss_curve[-1]})
        if stopped:
            break
    model.eval()
    model.max_seq_length = serving_length  # long answers are embedded whole once served
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(output_dir))
    return {"steps": step, "loss_curve": loss_curve, "seconds": round(time.monotonic() - started, 1),
            "stopped": stopped}


def _positive(text: str, entry: EntryTexts, rng: random.Random, answer_share: float) -> str:
    """Another text of the wording's entry: its answer with probability `answer_share`, else another
    question-side text (the answer when the entry has no other)."""
    others = [t for t in entry.question_side if t != text]
    if not others or (entry.answer and rng.random() < answer_share):
        return entry.answer or text
    return rng.choice(others)


def _contrastive_loss(model, batch: list[tuple[tuple[str, int], str | None]], by_entry: dict[int, EntryTexts],
                      rng: random.Random, settings: TuningSettings):
    """Cross-entropy of each anchor over the batch's positives and hard negatives; a candidate belonging to
    the anchor's own entry (other than its positive) is masked, not a negative."""
    import torch

    anchors = [text for (text, _), _ in batch]
    anchor_entries = [entry_id for (_, entry_id), _ in batch]
    candidates = [_positive(text, by_entry[entry_id], rng, settings.answer_share) for text, entry_id in
                  ((t, e) for (t, e), _ in batch)]
    candidate_entries = list(anchor_entries)
    for (_, entry_id), negative in batch:
        if negative is not None:
            candidates.append(negative)
            candidate_entries.append(-1)  # a hard negative is of another entry by construction
    vectors = _embed_for_training(model, anchors + candidates)  # (anchors + candidates, dim)
    anchor_vectors, candidate_vectors = vectors[:len(anchors)], vectors[len(anchors):]
    logits = settings.scale * anchor_vectors @ candidate_vectors.T  # (anchors, candidates)
    same_entry = torch.tensor([[c == a for c in candidate_entries] for a in anchor_entries])
    same_entry.fill_diagonal_(False)
    logits = logits.masked_fill(same_entry, float("-inf"))
    return torch.nn.functional.cross_entropy(logits, torch.arange(len(anchors)))


def _embed_for_training(model, texts: list[str]):
    import torch

    features = model.preprocess(texts)
    features = {name: value.to(model.device) if isinstance(value, torch.Tensor) else value
                for name, value in features.items()}
    return torch.nn.functional.normalize(model(features)["sentence_embedding"], dim=-1)


def index_data(entries: list[EntryTexts], embed: Embed) -> IndexData:
    question_entries = [entry.entry_id for entry in entries for _ in entry.question_side]
    question_texts = [text for entry in entries for text in entry.question_side]
    answers = [entry.answer for entry in entries]
    return IndexData(question_entries, question_texts, embed(question_texts), [e.entry_id for e in entries],
                     answers, embed(answers))


def build_index(entries: list[EntryTexts], embed: Embed, calibration: Calibration | None = None
                ) -> KnowledgeBaseIndex:
    return KnowledgeBaseIndex.build(index_data(entries, embed), calibration)


def top1_accuracy(index: KnowledgeBaseIndex, pairs: list[Pair], embed: Embed,
                  weights: dict[str, float] | None = None) -> float:
    """Share of `pairs` whose entry comes first through the full retrieval pipeline (dense, BM25, classifier)."""
    if not pairs:
        return 0.0
    vectors = embed([pair.text for pair in pairs])
    tops = [index.search(pair.text, vector, k=1, weights=weights).hits[:1] for pair, vector in zip(pairs, vectors)]
    return sum(bool(top) and top[0].entry_id == pair.entry_id for top, pair in zip(tops, pairs)) / len(pairs)


def search_features(index: KnowledgeBaseIndex, texts: list[str], vectors: np.ndarray,
                    excluded: list[int | None] | None = None) -> list[tuple[dict[str, float], int | None]]:
    """(feature values, top entry) per text; `excluded[i]` is an entry left out of text i's search."""
    every = set(index.question.entry_ids.tolist())
    rows = []
    for i, (text, vector) in enumerate(zip(texts, vectors)):
        leave_out = excluded[i] if excluded else None
        result = index.search(text, vector, k=5, allowed=every - {leave_out} if leave_out is not None else None)
        rows.append((result.feature_values, result.hits[0].entry_id if result.hits else None)
                    if result.feature_values else ({name: 0.0 for name in CALIBRATION_FEATURES}, None))
    return rows


def fit_calibration(index: KnowledgeBaseIndex, in_scope: list[Pair], out_of_scope: list[str], embed: Embed
                    ) -> tuple[Calibration, list[dict]]:
    """The KB's calibration and its trade-off curve. Fitted on: `in_scope` (held-out phrasings; positive
    when the top hit is right), the same phrasings with their entry excluded (in-domain out-of-scope) and
    `out_of_scope` (generic messages), both negatives. Default threshold: the one on the curve with the
    best min(answered in-scope share, out-of-scope handoff share), the balanced operating point (the
    lower threshold on a tie); admins move it along the curve."""
    from sklearn.linear_model import LogisticRegression

    texts = [pair.text for pair in in_scope]
    vectors = embed(texts)
    inside = search_features(index, texts, vectors)
    left_out = search_features(index, texts, vectors, [pair.entry_id for pair in in_scope])
    generic = search_features(index, list(out_of_scope), embed(list(out_of_scope)))
    correct = np.array([top == pair.entry_id for (_, top), pair in zip(inside, in_scope)])
    matrix = lambda rows: np.array([[values[name] for name in CALIBRATION_FEATURES]  # noqa: E731
                                    for values, _ in rows]).reshape(len(rows), len(CALIBRATION_FEATURES))
    features = np.vstack([matrix(inside), matrix(left_out), matrix(generic)])
    labels = np.concatenate([correct, np.zeros(len(left_out) + len(generic), dtype=bool)])
    if labels.all() or not labels.any():
        raise ValueError("calibration needs both answered-right in-scope pairs and out-of-scope texts")
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(features, labels)
    probability = model.predict_proba(features)[:, 1]
    n = len(in_scope)
    curve = trade_off_curve(probability[:n], correct, probability[n:2 * n], probability[2 * n:])
    threshold = max(curve, key=lambda row: (min(row["answered_in_scope"], row["handoff_out_of_scope"]),
                                            -row["threshold"]))["threshold"]
    calibration = Calibration(tuple(round(float(w), 4) for w in model.coef_[0]), round(float(model.intercept_[0]), 4),
                              threshold, CALIBRATION_FEATURES, tuple(curve),
                              f"fit_calibration: {n} held-out phrasings, {n} with their entry excluded, "
                              f"{len(out_of_scope)} generic out-of-scope messages")
    return calibration, curve


def trade_off_curve(in_scope: np.ndarray, correct: np.ndarray, in_domain_out: np.ndarray,
                    generic_out: np.ndarray) -> list[dict]:
    """Per threshold: share of in-scope questions answered, precision of those answers, share of
    out-of-scope questions handed off: each kind apart, and their mean (the two kinds weigh the same
    whatever their counts, so the sample's mix does not move the default threshold). With one kind
    only, that kind's share."""
    kinds = [kind for kind in (in_domain_out, generic_out) if len(kind)]
    rows = []
    for threshold in THRESHOLDS:
        answered = in_scope >= threshold
        rows.append({"threshold": threshold, "answered_in_scope": _share(answered),
                     "precision_when_answered": round(float(correct[answered].mean()), 4) if answered.any() else None,
                     "handoff_out_of_scope": round(float(np.mean([(kind < threshold).mean() for kind in kinds])), 4)
                     if kinds else 0.0,
                     "handoff_in_domain": _share(in_domain_out < threshold),
                     "handoff_generic": _share(generic_out < threshold)})
    return rows


def _share(mask: np.ndarray) -> float:
    return round(float(mask.mean()), 4) if len(mask) else 0.0


def fusion_weights(classifier: float) -> dict[str, float]:
    """The app's fusion weights with the classifier's weight set to `classifier`."""
    return {**FIELD_WEIGHTS, "classifier": classifier}
