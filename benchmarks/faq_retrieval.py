"""FAQ retrieval quality and speed on public data: BM25 alone, dense alone, and the app's hybrid.

    .venv/bin/python benchmarks/faq_retrieval.py [--calibrate]     (about 5 minutes on 2 cores)

- StackFAQ (../shared/datasets/stackfaq): the 125 threads indexed (question on the question side,
  answers on the answer side), queried with their 1,249 paraphrases: P@1, MRR@10, R@5.
- Banking77 (../shared/datasets/banking77): one entry per intent from ENTRY_QUERIES training
  queries (the first as the question, the rest as phrasings, the intent's name as the answer),
  queried with QUERIES_PER_INTENT other training queries: top-1 and top-5 intent accuracy.
- Scale: index build time, query latency p50/p99 and memory at 1k, 10k and 100k synthetic entries
  (random unit vectors stand in for embeddings; texts are synthetic too).

Embeddings come from a real model_service (all-MiniLM-L6-v2). `--calibrate` refits the confidence
calibration on Banking77 (half the intents' queries) and writes apps/customer_service/calibration.json.
Results: benchmarks/results/faq_retrieval.json.
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from apps.customer_service.retrieval import (CALIBRATION_FILE, FIELD_WEIGHTS, Calibration, IndexData,  # noqa: E402
                                             KnowledgeBaseIndex)
from tests.model_service_process import start_model_service  # noqa: E402

DATASETS = REPO.parent / "shared" / "datasets"
RESULTS = REPO / "benchmarks" / "results" / "faq_retrieval.json"
ENTRY_QUERIES = 5
QUERIES_PER_INTENT = 20
METHODS = {  # the single methods use the hybrid's own weights for their fields
    "bm25": {name: weight for name, weight in FIELD_WEIGHTS.items() if name.endswith("lexical")},
    "dense": {name: weight for name, weight in FIELD_WEIGHTS.items() if name.endswith("dense")},
    "hybrid": FIELD_WEIGHTS,
}
NO_CALIBRATION = Calibration((0.0, 0.0, 0.0), 0.0, 0.5)


class Embedder:
    def __init__(self, url: str):
        import httpx

        self.client = httpx.Client(base_url=url, timeout=300)

    def __call__(self, texts: list[str]) -> np.ndarray:
        vectors = []
        for start in range(0, len(texts), 256):
            body = self.client.post("/v1/embeddings", json={"input": texts[start:start + 256]}).json()
            vectors += [item["embedding"] for item in body["data"]]
        return np.asarray(vectors, dtype=np.float32)


def evaluate(index: KnowledgeBaseIndex, queries: list[tuple[str, int]], vectors: np.ndarray) -> dict:
    results = {}
    for method, weights in METHODS.items():
        ranks = []
        for (query, target), vector in zip(queries, vectors):
            hits = index.search(query, vector, k=10, weights=weights).hits
            ids = [hit.entry_id for hit in hits]
            ranks.append(ids.index(target) + 1 if target in ids else None)
        results[method] = {
            "p_at_1": round(sum(r == 1 for r in ranks) / len(ranks), 4),
            "mrr_at_10": round(sum(1 / r for r in ranks if r) / len(ranks), 4),
            "r_at_5": round(sum(bool(r and r <= 5) for r in ranks) / len(ranks), 4),
        }
    return results


def stackfaq(embed: Embedder) -> dict:
    threads = json.loads((DATASETS / "stackfaq" / "stackExchange-FAQ.json").read_text())["root"]["qapair"]
    questions = [thread["question"] for thread in threads]
    answers = ["\n".join(thread["answer"]) if isinstance(thread["answer"], list) else thread["answer"]
               for thread in threads]
    queries = [(text.strip(), i) for i, thread in enumerate(threads) for text in thread["rephr"]
               if text and text.strip() not in ("", "*")]
    ids = list(range(len(threads)))
    index = KnowledgeBaseIndex.build(IndexData(ids, questions, embed(questions), ids, answers, embed(answers)),
                                     NO_CALIBRATION)
    results = evaluate(index, queries, embed([q for q, _ in queries]))
    return {"threads": len(threads), "queries": len(queries), **results}


def banking77_split(seed: int = 0) -> tuple[list[str], dict[str, list[str]], list[tuple[str, int]]]:
    by_intent: dict[str, list[str]] = defaultdict(list)
    with (DATASETS / "banking77" / "train.csv").open() as file:
        for row in csv.DictReader(file):
            by_intent[row["category"]].append(row["text"].strip())
    intents = sorted(by_intent)
    rng = random.Random(seed)
    entries, queries = {}, []
    for i, intent in enumerate(intents):
        texts = by_intent[intent][:]
        rng.shuffle(texts)
        entries[intent] = texts[:ENTRY_QUERIES]
        queries += [(text, i) for text in texts[ENTRY_QUERIES:ENTRY_QUERIES + QUERIES_PER_INTENT]]
    return intents, entries, queries


def banking77(embed: Embedder) -> tuple[dict, KnowledgeBaseIndex, list[tuple[str, int]], np.ndarray]:
    intents, entries, queries = banking77_split()
    question_entries, question_texts = [], []
    for i, intent in enumerate(intents):
        for text in entries[intent]:
            question_entries.append(i)
            question_texts.append(text)
    answers = [intent.replace("_", " ") for intent in intents]
    ids = list(range(len(intents)))
    index = KnowledgeBaseIndex.build(IndexData(question_entries, question_texts, embed(question_texts), ids, answers,
                                               embed(answers)), NO_CALIBRATION)
    vectors = embed([q for q, _ in queries])
    scores = evaluate(index, queries, vectors)
    report = {"intents": len(intents), "entry_queries_per_intent": ENTRY_QUERIES, "queries": len(queries),
              **{method: {"top1": s["p_at_1"], "top5": s["r_at_5"]} for method, s in scores.items()}}
    return report, index, queries, vectors


def calibrate(index: KnowledgeBaseIndex, queries: list[tuple[str, int]], vectors: np.ndarray) -> dict:
    """Fit P(top-1 correct | features) on half the intents' queries, measure it on the other half."""
    from sklearn.linear_model import LogisticRegression

    features, correct = [], []
    for (query, target), vector in zip(queries, vectors):
        result = index.search(query, vector, k=5)
        features.append(result.features)
        correct.append(result.hits[0].entry_id == target)
    features, correct = np.array(features), np.array(correct)
    fit = np.array([target % 2 == 0 for _, target in queries])
    model = LogisticRegression(C=1.0).fit(features[fit], correct[fit])
    held_out = model.predict_proba(features[~fit])[:, 1]
    threshold = 0.5
    answered = held_out >= threshold
    calibration = {"weights": [round(float(w), 4) for w in model.coef_[0]],
                   "bias": round(float(model.intercept_[0]), 4), "threshold": threshold,
                   "provenance": "logistic fit of top-1 correctness on Banking77 (even intents), "
                                 "benchmarks/faq_retrieval.py --calibrate"}
    bins = [(lo, lo + 0.2) for lo in (0.0, 0.2, 0.4, 0.6, 0.8)]
    reliability = [{"predicted": f"{lo:.1f}-{hi:.1f}", "count": int(((held_out >= lo) & (held_out < hi + 1e-9)).sum()),
                    "observed_accuracy": round(float(correct[~fit][(held_out >= lo) & (held_out < hi + 1e-9)].mean()), 3)
                    if ((held_out >= lo) & (held_out < hi + 1e-9)).any() else None} for lo, hi in bins]
    return {"calibration": calibration, "held_out_queries": int((~fit).sum()),
            "answered_share": round(float(answered.mean()), 3),
            "precision_when_answered": round(float(correct[~fit][answered].mean()), 3) if answered.any() else None,
            "reliability": reliability}


def scale(sizes=(1_000, 10_000, 100_000), queries: int = 200) -> list[dict]:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(5_000)]
    rows = []
    for size in sizes:
        texts = [" ".join(rng.choice(words, 8)) for _ in range(size)]
        vectors = rng.normal(size=(size, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        ids = list(range(size))
        index = KnowledgeBaseIndex.build(IndexData(ids, texts, vectors, ids, texts, vectors), NO_CALIBRATION)
        with tempfile.TemporaryDirectory() as directory:
            index.save(Path(directory))
            build = time.perf_counter() - started
            started = time.perf_counter()
            KnowledgeBaseIndex.load(Path(directory))
            load = time.perf_counter() - started
        latencies = []
        for q in range(queries):
            started = time.perf_counter()
            index.search(texts[q * 7 % size], vectors[q * 7 % size], k=5)
            latencies.append((time.perf_counter() - started) * 1000)
        latencies.sort()
        rows.append({"entries": size, "build_s": round(build, 3), "load_s": round(load, 3),
                     "query_p50_ms": round(statistics.median(latencies), 2),
                     "query_p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))], 2),
                     "peak_rss_growth_mb": round(max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                                     - rss_before) / 1024, 1)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibrate", action="store_true", help="refit and write the confidence calibration")
    parser.add_argument("--checkpoint", type=Path, default=None, help="checkpoint for model_service (any works)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="faq-bench-"))
    checkpoint = args.checkpoint
    if checkpoint is None:
        from training.scripts.init_checkpoint import init_checkpoint

        checkpoint = init_checkpoint(work / "tiny-random")
    server = start_model_service(checkpoint, backend="transformers", log_dir=work)
    try:
        embed = Embedder(server.url)
        report = {"benchmark": "faq_retrieval", "fusion_weights": FIELD_WEIGHTS, "stackfaq": stackfaq(embed)}
        report["banking77"], index, queries, vectors = banking77(embed)
        if args.calibrate:
            report["calibration"] = calibrate(index, queries, vectors)
            CALIBRATION_FILE.write_text(json.dumps(report["calibration"]["calibration"], indent=2) + "\n")
    finally:
        server.stop()
    report["scale"] = scale()
    report["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    s, b = report["stackfaq"], report["banking77"]
    print("StackFAQ P@1: " + ", ".join(f"{m} {s[m]['p_at_1']}" for m in METHODS) +
          " | Banking77 top-1: " + ", ".join(f"{m} {b[m]['top1']}" for m in METHODS))
    for row in report["scale"]:
        print(f"{row['entries']:>7} entries: build {row['build_s']} s, p50 {row['query_p50_ms']} ms, "
              f"p99 {row['query_p99_ms']} ms")
    print(f"wrote {RESULTS.relative_to(REPO)} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
