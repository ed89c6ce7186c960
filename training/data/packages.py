"""The `packages` corpus source: Python source of the installed distributions whose licence is permissive.

What is left out, and why:
- the held-out packages (Django, Django REST framework, Celery, Kombu): the completion benchmarks
  measure the model on their source, so it must never be trained on. Their distributions are left out,
  and so is every file of any other distribution whose module path goes through one of their modules
  (`foo/_vendor/kombu/...`, `sentry_sdk/integrations/django/...`), and every file whose text is a copy
  of one of their files (by `Document.digest`, where they are installed);
- distributions whose licence is not permissive, or not known (`training.data.licences`);
- vendored directories (their licence is not the distribution's), tests, generated files, files over
  `data.package_file_max_bytes` and files that are not UTF-8;
- files that repeat a document already in the corpus (the standard library, another package).

Bounded: no package gives more than `data.package_max_bytes`, and when the packages together would
exceed `data.packages_max_bytes`, every package gets the same smaller cap (small packages keep all of
theirs, the largest are cut to what is left: a max-min fair share), so the corpus does not depend on
the alphabet. Within a package, files nearer the top of its module tree go first.
"""
from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from training.data.documents import CorpusReport, Document, looks_generated
from training.data.licences import PERMISSIVE, licence_of

HELD_OUT_DISTRIBUTIONS = {"django", "djangorestframework", "celery", "kombu"}  # normalised names
HELD_OUT_MODULES = ("django", "rest_framework", "celery", "kombu")  # in order: training/held_out.py samples them
VENDOR_DIRECTORIES = {"_vendor", "vendor", "_vendored", "vendored", "third_party", "_third_party", "extern",
                      "_extern"}
TEST_DIRECTORIES = {"test", "tests", "testing", "testsuite"}


@dataclass(frozen=True)
class SourceFile:
    package: str
    path: PurePosixPath  # relative to the distribution's install folder (site-packages)
    location: Path
    size: int


def normalised_name(name: str) -> str:
    """PEP 503: 'Django_REST.framework' and 'django-rest-framework' are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions() -> list[importlib.metadata.Distribution]:
    """One distribution per name (the first on sys.path, as imports see it), sorted by name."""
    distributions: dict[str, importlib.metadata.Distribution] = {}
    for distribution in importlib.metadata.distributions():
        distributions.setdefault(normalised_name(distribution.metadata["Name"] or ""), distribution)
    return [distributions[name] for name in sorted(distributions) if name]


def installed_versions() -> list[str]:
    """'name==version' of every installed distribution: what the `packages` source is read from."""
    return [f"{normalised_name(d.metadata['Name'])}=={d.version}" for d in installed_distributions()]


def held_out_module(path: PurePosixPath) -> str | None:
    """The held-out module a file's module path goes through, if any (`x/_vendor/kombu/a.py` -> kombu)."""
    return next((part for part in path.with_suffix("").parts if part in HELD_OUT_MODULES), None)


def file_skip_reason(path: PurePosixPath) -> str | None:
    """Why a file of a kept package is left out by its path alone; None if it is a candidate."""
    if path.suffix != ".py" or path.parts[0] == "..":
        return "not a Python module"
    if held_out_module(path):
        return "held-out module path"
    directories = set(path.parts[:-1])
    if directories & VENDOR_DIRECTORIES:
        return "vendored"
    if directories & TEST_DIRECTORIES or path.name.startswith("test_") or path.stem.endswith("_test") \
            or path.name == "conftest.py":
        return "test"
    if path.name.endswith(("_pb2.py", "_pb2_grpc.py")):
        return "generated"
    return None


def source_files(distribution: importlib.metadata.Distribution, name: str, *, file_max_bytes: int,
                 report: CorpusReport) -> list[SourceFile]:
    """The distribution's candidate files, shallowest first, counting the ones left out by path or size."""
    files = []
    for path in map(PurePosixPath, distribution.files or []):
        location = Path(distribution.locate_file(path))
        reason = file_skip_reason(path)
        if reason is None and location.is_file() and location.stat().st_size > file_max_bytes:
            reason = "too large"
        if reason is None and location.is_file():
            files.append(SourceFile(name, path, location, location.stat().st_size))
        elif reason and reason != "not a Python module":  # scripts, data and compiled modules go uncounted
            report.package_files_left_out[reason] += 1
    return sorted(files, key=lambda file: (len(file.path.parts), str(file.path)))


def fair_cap(sizes: list[int], *, per_package: int, total: int) -> int:
    """The largest cap <= per_package with sum(min(size, cap)) <= total: a max-min fair share."""
    capped = sorted(min(size, per_package) for size in sizes)
    remaining = total
    for index, size in enumerate(capped):
        share = remaining // (len(capped) - index)
        if size > share:
            return share
        remaining -= size
    return per_package


def read_source(file: SourceFile) -> str | None:
    try:
        return file.location.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None


def held_out_digests(distributions: list[importlib.metadata.Distribution], *, file_max_bytes: int) -> set[str]:
    """Digests of the held-out distributions' own files, to recognise copies of them in other packages."""
    digests = set()
    for distribution in distributions:
        for path in map(PurePosixPath, distribution.files or []):
            location = Path(distribution.locate_file(path))
            if path.suffix == ".py" and location.is_file() and location.stat().st_size <= file_max_bytes:
                text = location.read_bytes().decode("utf-8", errors="replace")
                digests.add(Document("held_out", str(path), text, is_code=True).digest)
    return digests


def package_documents(files: list[SourceFile], *, cap: int, seen: set[str], held_out: set[str],
                      report: CorpusReport) -> Iterator[Document]:
    """One package's files within its byte cap, skipping duplicates of `seen` (which the caller fills
    with each document it takes) so that only new text spends the budget."""
    used = 0
    for file in files:
        if used + file.size > cap:
            report.package_files_left_out["over the package budget"] += 1
            continue
        text = read_source(file)
        if text is not None and not text.strip():
            continue  # an empty __init__.py
        if text is None or looks_generated(text):
            report.package_files_left_out["not UTF-8" if text is None else "generated"] += 1
            continue
        document = Document("packages", f"{file.package}:{file.path}", text, is_code=True)
        if document.digest in held_out:
            report.package_files_left_out["copy of a held-out package's file"] += 1
            continue
        if document.digest in seen:
            report.duplicates["packages"] += 1
            continue
        used += file.size
        yield document


def packages_documents(*, file_max_bytes: int, package_max_bytes: int, total_max_bytes: int,
                       seen: set[str], report: CorpusReport) -> Iterator[Document]:
    """The permissive packages' source documents, recording in `report` each package kept (version,
    licence, files, bytes) and each left out (why)."""
    kept, held_out = [], []
    for distribution in installed_distributions():
        name = distribution.metadata["Name"]
        licence = licence_of(distribution.metadata)
        if normalised_name(name) in HELD_OUT_DISTRIBUTIONS:
            held_out.append(distribution)
            report.packages_left_out[name] = "held out for evaluating completion"
        elif licence.kind != PERMISSIVE:
            report.packages_left_out[name] = f"licence {licence.kind} ({licence.evidence})"
        else:
            kept.append((distribution, name, licence))
    held_out_file_digests = held_out_digests(held_out, file_max_bytes=file_max_bytes)
    candidates = {name: source_files(distribution, name, file_max_bytes=file_max_bytes, report=report)
                  for distribution, name, _ in kept}
    report.package_byte_cap = fair_cap([sum(file.size for file in files) for files in candidates.values()],
                                       per_package=package_max_bytes, total=total_max_bytes)
    for distribution, name, licence in kept:
        files, size = 0, 0
        for document in package_documents(candidates[name], cap=report.package_byte_cap, seen=seen,
                                          held_out=held_out_file_digests, report=report):
            files, size = files + 1, size + len(document.text.encode())
            yield document
        if files:
            report.packages[name] = {"version": distribution.version, "licence": licence.evidence,
                                     "files": files, "bytes": size}
        else:
            report.packages_left_out[name] = "no Python source left after the filters and deduplication"
