import json
from email.message import Message
from pathlib import Path, PurePosixPath

import pytest

from training.config import DataConfig, load_config
from training.data import packages
from training.data.corpus import corpus_documents
from training.data.documents import CorpusReport, Document
from training.data.licences import COPYLEFT, PERMISSIVE, PROPRIETARY, UNKNOWN, licence_of
from training.data.packages import HELD_OUT_MODULES, SourceFile, fair_cap, file_skip_reason, held_out_module
from training.data.prepare import data_digest, prepare_data

SMALL_BUDGETS = ["data.package_max_bytes=20000", "data.packages_max_bytes=2000000"]  # reads little


def metadata(**fields) -> Message:
    message = Message()
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            message[name.replace("_", "-")] = item
    return message


@pytest.fixture(scope="module")
def real_packages():
    """The packages source read from this environment, with small budgets so that it reads little."""
    report = CorpusReport()
    config = DataConfig(package_max_bytes=20_000, packages_max_bytes=2_000_000)
    documents = list(corpus_documents(("packages",), config=config, report=report))
    return documents, report


@pytest.fixture(scope="module")
def packages_manifest(tmp_path_factory):
    """The data manifest of a corpus of this environment's packages, built by prepare_data."""
    directory = tmp_path_factory.mktemp("packages-data")
    config = load_config("training/configs/tiny.yaml", [f"data.dir={directory}", "data.sources=[packages]",
                                                        "data.max_documents_per_source=0", *SMALL_BUDGETS])
    prepare_data(config.data)
    return json.loads((directory / "manifest.json").read_text())


def test_held_out_packages_are_absent_from_the_data_manifest(packages_manifest):
    report = packages_manifest["sources"]["packages"]
    kept = {packages.normalised_name(name) for name in report["packages"]}

    assert len(kept) > 100
    assert {"django", "djangorestframework", "celery", "kombu"} & kept == set()
    assert {name: report["packages_left_out"][name] for name in ("Django", "djangorestframework", "celery", "kombu")} \
        == dict.fromkeys(("Django", "djangorestframework", "celery", "kombu"), "held out for evaluating completion")
    assert sum(row["bytes"] for row in report["packages"].values()) == sum(report["bytes"].values())


def test_manifest_records_the_budgets_and_the_shared_cap_the_total_forced(packages_manifest):
    report = packages_manifest["sources"]["packages"]
    budget = report["budget"]

    assert {key: budget[key] for key in ("file_max_bytes", "package_max_bytes", "total_max_bytes")} \
        == {"file_max_bytes": 256_000, "package_max_bytes": 20_000, "total_max_bytes": 2_000_000}
    assert budget["package_byte_cap"] < 20_000  # over 200 packages cannot all have 20 kB of 2 MB
    assert max(row["bytes"] for row in report["packages"].values()) <= budget["package_byte_cap"]
    assert sum(report["bytes"].values()) <= 2_000_000


@pytest.mark.parametrize(("fields", "kind"), [
    ({"License_Expression": "MIT"}, PERMISSIVE),
    ({"License_Expression": "Apache-2.0 OR BSD-3-Clause"}, PERMISSIVE),
    ({"License_Expression": "BSD-2-Clause AND Apache-2.0 WITH LLVM-exception"}, PERMISSIVE),
    ({"License_Expression": "(MIT OR GPL-3.0-only) AND ISC"}, PERMISSIVE),
    ({"License_Expression": "LGPL-3.0-only"}, COPYLEFT),
    ({"License_Expression": "MPL-2.0 AND MIT"}, COPYLEFT),
    ({"License_Expression": "LicenseRef-Proprietary"}, UNKNOWN),
    ({"License_Expression": "GPL-2.0-or-later", "Classifier": "License :: OSI Approved :: MIT License"}, COPYLEFT),
    ({"License": "BSD 3-Clause OR Apache-2.0"}, PERMISSIVE),
    ({"License": "MIT License\n\nCopyright (c) 2022 ..."}, PERMISSIVE),
    ({"License": "Apache Software License 2.0"}, PERMISSIVE),
    ({"License": "UNKNOWN", "Classifier": "License :: OSI Approved :: BSD License"}, PERMISSIVE),
    ({"License": "Dual License", "Classifier": ["License :: OSI Approved :: BSD License",
                                                "License :: OSI Approved :: Apache Software License"]}, PERMISSIVE),
    ({"Classifier": ["License :: OSI Approved :: Artistic License",
                     "License :: OSI Approved :: GNU General Public License (GPL)"]}, COPYLEFT),
    ({"License": "MPL-2.0"}, COPYLEFT),
    ({"Classifier": "License :: Other/Proprietary License"}, PROPRIETARY),
    ({"Classifier": "License :: OSI Approved"}, UNKNOWN),
    ({"License": "Copyright (c) 2005, the developers. All rights reserved."}, UNKNOWN),
    ({}, UNKNOWN),
])
def test_licence_is_classified_from_expression_licence_field_and_classifiers(fields, kind):
    assert licence_of(metadata(**fields)).kind == kind


def test_licence_evidence_says_where_the_kind_was_read():
    licence = licence_of(metadata(License="BSD", Classifier="License :: OSI Approved :: BSD License"))

    assert licence.evidence == "License: BSD; OSI Approved :: BSD License"


@pytest.mark.parametrize(("path", "module"), [
    ("django/db/models/base.py", "django"),
    ("rest_framework/views.py", "rest_framework"),
    ("pip/_vendor/kombu/utils.py", "kombu"),
    ("foo/vendor/django/http/request.py", "django"),
    ("sentry_sdk/integrations/celery/beat.py", "celery"),
    ("drf_spectacular/contrib/rest_framework.py", "rest_framework"),
    ("requests/api.py", None),
    ("djangoish/celery_like.py", None),
])
def test_held_out_module_is_found_anywhere_in_a_module_path(path, module):
    assert held_out_module(PurePosixPath(path)) == module


@pytest.mark.parametrize(("path", "reason"), [
    ("pkg/tests/test_a.py", "test"),
    ("pkg/test_a.py", "test"),
    ("pkg/conftest.py", "test"),
    ("pkg/_vendor/six.py", "vendored"),
    ("pkg/proto/thing_pb2.py", "generated"),
    ("pkg/_vendor/django/conf.py", "held-out module path"),
    ("../../bin/tool.py", "not a Python module"),
    ("pkg/data.json", "not a Python module"),
    ("pkg/core.py", None),
])
def test_files_are_left_out_by_path(path, reason):
    assert file_skip_reason(PurePosixPath(path)) == reason


def test_held_out_packages_are_absent_from_the_corpus_built_from_this_environment(real_packages):
    documents, report = real_packages
    kept = {packages.normalised_name(name) for name in report.packages}
    paths = [PurePosixPath(document.name.split(":", 1)[1]) for document in documents]

    assert {"django", "djangorestframework", "celery", "kombu"} & kept == set()
    assert {report.packages_left_out[name] for name in ("Django", "djangorestframework", "celery", "kombu")} \
        == {"held out for evaluating completion"}
    assert paths and not [path for path in paths if set(path.with_suffix("").parts) & set(HELD_OUT_MODULES)]
    assert report.package_files_left_out["held-out module path"] > 0  # sentry_sdk's django integration


def test_every_kept_package_has_a_version_a_permissive_licence_and_its_bytes(real_packages):
    documents, report = real_packages
    by_package: dict[str, int] = {}
    for document in documents:
        package = document.name.split(":", 1)[0]
        by_package[package] = by_package.get(package, 0) + len(document.text.encode())

    assert by_package == {name: row["bytes"] for name, row in report.packages.items()}
    assert all(row["version"] and row["licence"] for row in report.packages.values())
    assert report.packages_left_out["psycopg"] == "licence copyleft (License-Expression: LGPL-3.0-only)"


def test_fair_cap_lets_small_packages_keep_all_and_cuts_the_largest():
    assert fair_cap([100, 200, 10_000], per_package=5_000, total=100_000) == 5_000
    assert fair_cap([100, 200, 10_000, 10_000], per_package=5_000, total=4_300) == 2_000
    assert fair_cap([], per_package=5_000, total=100) == 5_000


def source_file(tmp_path: Path, package: str, name: str, text: str | bytes) -> SourceFile:
    location = tmp_path / package / name
    location.parent.mkdir(parents=True, exist_ok=True)
    location.write_bytes(text if isinstance(text, bytes) else text.encode())
    return SourceFile(package, PurePosixPath(package, name), location, location.stat().st_size)


def test_duplicates_across_packages_are_dropped_without_spending_the_budget(tmp_path):
    shared = "def shared():\n    return 1\n"
    first = [source_file(tmp_path, "a", "util.py", shared)]
    second = [source_file(tmp_path, "b", "copy.py", shared.replace("    ", "\t")),
              source_file(tmp_path, "b", "own.py", "def own():\n    return 2\n")]
    report, seen, taken = CorpusReport(), set(), []
    for files in (first, second):
        for document in packages.package_documents(files, cap=30, seen=seen, held_out=set(), report=report):
            seen.add(document.digest)
            taken.append(document.name)

    assert taken == ["a:a/util.py", "b:b/own.py"]
    assert report.duplicates["packages"] == 1


def test_copies_of_held_out_files_non_utf8_and_generated_files_are_left_out(tmp_path):
    copied = "from django.db import models\n\nclass Base:\n    pass\n"
    files = [source_file(tmp_path, "a", "copied.py", copied), source_file(tmp_path, "a", "latin.py", b"x = '\xe9'\n"),
             source_file(tmp_path, "a", "table.py", "# Generated by a tool. DO NOT EDIT.\nX = 1\n"),
             source_file(tmp_path, "a", "kept.py", "import django\n")]
    held_out = {Document("held_out", "django/db/base.py", copied, is_code=True).digest}
    report = CorpusReport()

    taken = [d.name for d in packages.package_documents(files, cap=1_000, seen=set(), held_out=held_out,
                                                        report=report)]

    assert taken == ["a:a/kept.py"]
    assert dict(report.package_files_left_out) == {"copy of a held-out package's file": 1, "not UTF-8": 1,
                                                   "generated": 1}


def test_files_over_the_package_cap_are_skipped_and_smaller_ones_still_fit(tmp_path):
    files = [source_file(tmp_path, "a", "big.py", "x = 1\n" * 10), source_file(tmp_path, "a", "small.py", "y = 2\n")]
    report = CorpusReport()

    taken = [d.name for d in packages.package_documents(files, cap=20, seen=set(), held_out=set(), report=report)]

    assert taken == ["a:a/small.py"]
    assert report.package_files_left_out["over the package budget"] == 1


def test_packages_duplicating_the_standard_library_are_counted_in_the_report(monkeypatch):
    from training.data import corpus

    stdlib = [Document("stdlib", "json/x.py", "x = 1\n", True)]
    monkeypatch.setitem(corpus.READERS, "stdlib", lambda: iter(stdlib))
    monkeypatch.setattr(corpus, "packages_documents",
                        lambda *, seen, report, **_: iter([Document("packages", "p:p/x.py", "x = 1", True)]))
    report = CorpusReport()

    names = [d.name for d in corpus_documents(("stdlib", "packages"), report=report)]

    assert names == ["json/x.py"]
    assert report.duplicates == {"packages": 1}


def test_data_digest_of_a_corpus_with_packages_changes_when_a_package_is_upgraded(monkeypatch):
    from training.data import prepare

    config = DataConfig(sources=("stdlib", "packages"))
    monkeypatch.setattr(prepare, "installed_versions", lambda: ["requests==2.34.2"])
    before = data_digest(config)
    monkeypatch.setattr(prepare, "installed_versions", lambda: ["requests==2.35.0"])

    assert data_digest(config) != before


def test_source_files_leave_out_files_over_the_size_bound_and_tests_shallowest_first(tmp_path):
    import importlib.metadata

    files = {"pkg/big.py": "x = 1\n" * 50, "pkg/sub/deep.py": "z = 3\n", "pkg/small.py": "y = 2\n",
             "pkg/tests/test_small.py": "def test(): pass\n"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    info = tmp_path / "pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.4\nName: pkg\nVersion: 1.0\nLicense-Expression: MIT\n")
    (info / "RECORD").write_text("".join(f"{name},,\n" for name in files) + "pkg-1.0.dist-info/METADATA,,\n")
    report = CorpusReport()

    found = packages.source_files(importlib.metadata.PathDistribution(info), "pkg", file_max_bytes=100, report=report)

    assert [str(file.path) for file in found] == ["pkg/small.py", "pkg/sub/deep.py"]
    assert dict(report.package_files_left_out) == {"too large": 1, "test": 1}
