"""Build the training data once: corpus → tokenizer → packed, memory-mapped token files + manifest.

    python -m training.data.prepare --config training/configs/demo.yaml

Layout of `data.dir`: `tokenizer/` (Hugging Face files), `train.bin` and `val_<source>.bin`
(uint16 arrays of shape (sequences, sequence_length + 1)), `manifest.json`.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import platform
import random
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from training.config import DataConfig, load_config
from training.data.corpus import DOMAIN_FILES, SOURCES, Document, corpus_documents, is_validation
from training.data.documents import CorpusReport
from training.data.fim import split_code, to_fim
from training.data.packages import installed_versions
from training.tokenizer import tokenizer_train

CHARS_PER_TOKEN = 3  # rough size of a token, to cut code into pieces of about one sequence
MANIFEST = "manifest.json"


def data_digest(config: DataConfig) -> str:
    """Changes when the config, the Python version, the project's own domain texts or, for a corpus
    with `packages`, the installed distributions change."""
    digest = hashlib.sha256(json.dumps(dataclasses.asdict(config), sort_keys=True).encode())
    digest.update(platform.python_version().encode())
    if "packages" in config.sources:
        digest.update("\n".join(installed_versions()).encode())
    for path in DOMAIN_FILES:
        digest.update(path.read_bytes() if path.is_file() else b"-")
    return digest.hexdigest()[:16]


def training_texts(documents: list[Document], config: DataConfig) -> list[str]:
    """Documents as the model sees them: code cut into pieces, a `fim_rate` share of them in FIM form."""
    texts = []
    for document in documents:
        if not document.is_code:
            texts.append(document.text)
            continue
        rng = random.Random(document.digest)  # the same pieces and split points on every machine
        for piece in split_code(document.text, config.sequence_length * CHARS_PER_TOKEN):
            texts.append(to_fim(piece, rng) if rng.random() < config.fim_rate else piece)
    return texts


def pack(token_lists: list[list[int]], *, bos: int, eos: int, sequence_length: int) -> np.ndarray:
    """Concatenate <bos> doc <eos> ... and cut into rows of sequence_length + 1 (inputs + shifted targets)."""
    stream = np.fromiter((t for ids in token_lists for t in (bos, *ids, eos)), dtype=np.uint16)
    rows = len(stream) // (sequence_length + 1)
    return stream[: rows * (sequence_length + 1)].reshape(rows, sequence_length + 1)


def prepare_data(config: DataConfig, *, force: bool = False) -> dict:
    """Build (or reuse, when built from the same config) the data in `config.dir`; returns the manifest."""
    out = Path(config.dir)
    manifest_path = out / MANIFEST
    digest = data_digest(config)
    if manifest_path.exists() and not force:
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("data_digest") == digest:
            return manifest
    out.mkdir(parents=True, exist_ok=True)
    splits: dict[str, dict[str, list[Document]]] = defaultdict(lambda: {"train": [], "val": []})
    corpus_report = CorpusReport()
    for document in corpus_documents(config.sources, config=config, report=corpus_report):
        split = "val" if is_validation(document, config.validation_fraction) else "train"
        splits[document.source][split].append(document)

    texts = {source: {split: training_texts(docs, config) for split, docs in parts.items()}
             for source, parts in splits.items()}
    all_train = [text for parts in texts.values() for text in parts["train"]]
    tokenizer = tokenizer_train(all_train, vocab_size=config.tokenizer_vocab_size, out_dir=out / "tokenizer")
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id

    def encode(batch: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in tokenizer.backend_tokenizer.encode_batch(batch, add_special_tokens=False)]

    sources_report = {}
    train_rows = []
    for source, parts in texts.items():
        train_ids, val_ids = encode(parts["train"]), encode(parts["val"])
        repeats = config.domain_repeats if source == "domain" else 1
        train_rows.append(pack(train_ids * repeats, bos=bos, eos=eos, sequence_length=config.sequence_length))
        val = pack(val_ids, bos=bos, eos=eos, sequence_length=config.sequence_length)
        val.tofile(out / f"val_{source}.bin")
        sources_report[source] = {
            "licence": SOURCES[source].licence, "origin": SOURCES[source].origin,
            "documents": {split: len(docs) for split, docs in splits[source].items()},
            "bytes": {split: sum(len(d.text.encode()) for d in docs) for split, docs in splits[source].items()},
            "tokens": {"train": sum(len(ids) + 2 for ids in train_ids), "val": sum(len(ids) + 2 for ids in val_ids)},
            "train_repeats": repeats,
            "val_sequences": int(len(val)),
            "duplicates_dropped": corpus_report.duplicates[source],
        }
    if "packages" in sources_report:
        sources_report["packages"].update(packages_manifest(corpus_report, config))
    train = np.concatenate(train_rows)
    train.tofile(out / "train.bin")
    manifest = {
        "data_digest": digest, "data_config": dataclasses.asdict(config),
        "python": platform.python_version(), "sequence_length": config.sequence_length,
        "train_sequences": int(len(train)), "vocab_size": len(tokenizer), "sources": sources_report,
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def packages_manifest(report: CorpusReport, config: DataConfig) -> dict:
    """The `packages` part's own account: each package kept (version, licence, files, bytes), each left
    out and why, the files of kept packages left out by reason, and the budgets."""
    return {
        "budget": {"file_max_bytes": config.package_file_max_bytes, "package_max_bytes": config.package_max_bytes,
                   "total_max_bytes": config.packages_max_bytes, "package_byte_cap": report.package_byte_cap},
        "packages": report.packages,
        "packages_left_out": report.packages_left_out,
        "files_left_out": dict(sorted(report.package_files_left_out.items())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="SECTION.FIELD=VALUE")
    parser.add_argument("--force", action="store_true", help="rebuild even if the data exists")
    args = parser.parse_args(argv)
    manifest = prepare_data(load_config(args.config, args.overrides).data, force=args.force)
    print(json.dumps({source: {"bytes": report["bytes"], "tokens": report["tokens"],
                               "duplicates_dropped": report["duplicates_dropped"]}
                      for source, report in manifest["sources"].items()}, indent=2))
    if packages := manifest["sources"].get("packages"):
        print(f"packages: {len(packages['packages'])} kept, {len(packages['packages_left_out'])} left out")
    print(f"{manifest['train_sequences']} training sequences of {manifest['sequence_length']} tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
