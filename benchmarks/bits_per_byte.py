"""Bits per byte of demo checkpoints on source the corpus never holds, next to `xz -9e`.

    .venv/bin/python benchmarks/bits_per_byte.py [--checkpoint DIR ...]   (a minute or two per checkpoint)

The held-out files and the scoring are training/held_out.py's (the model card reports the same figure).
Writes benchmarks/results/bits_per_byte.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.held_out import held_out_files, held_out_summary, model_bits_per_byte  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "bits_per_byte.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, action="append",
                        help="an exported checkpoint folder (repeatable; default: checkpoints/demo-moe)")
    args = parser.parse_args(argv)
    checkpoints = args.checkpoint or [REPO / "checkpoints" / "demo-moe"]
    files = held_out_files()
    report = {"benchmark": "bits_per_byte", **held_out_summary(files), "checkpoints": {}}
    for checkpoint in checkpoints:
        report["checkpoints"][checkpoint.name] = model_bits_per_byte(checkpoint, files)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(" | ".join([f"xz -9e {report['xz_9e_bits_per_byte']}"] + [
        f"{name} {result['bits_per_byte']} bits/byte ({result['bytes_per_token']} bytes/token)"
        for name, result in report["checkpoints"].items()]) + f" on {len(files)} held-out files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
