"""Create a tiny random-initialised DeepseekV3 checkpoint that model_service can serve.

    python -m training.scripts.init_checkpoint --out checkpoints/tiny-random

It stands in until the demo checkpoint is trained: the weights are random, so its text is
noise, and `training_state.json` says so (model_service shows it in /health). The tokenizer is
a real byte-level BPE trained on a slice of Python's standard library, with the suite's
special tokens and chat template.
"""
import argparse
import json
import sys
import sysconfig
from pathlib import Path

import torch
from transformers import DeepseekV3ForCausalLM, GenerationConfig

from training.model_config import MoEModelConfig
from training.tokenizer import END_OF_TURN, tokenizer_train

TOKENIZER_SOURCE_FILES = 200  # stdlib modules read to train the tokenizer


def stdlib_texts(limit: int) -> list[str]:
    """Source of the first `limit` standard-library modules, in a stable order."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(path for path in stdlib.glob("*.py"))[:limit]
    return [path.read_text(encoding="utf-8", errors="replace") for path in files]


def init_checkpoint(out_dir: Path, *, config: MoEModelConfig = MoEModelConfig(), seed: int = 0) -> Path:
    config.check_servable()
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = tokenizer_train(stdlib_texts(TOKENIZER_SOURCE_FILES), vocab_size=config.vocab_size, out_dir=out_dir)
    hf_config = config.to_hf(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = DeepseekV3ForCausalLM(hf_config).to(torch.bfloat16)
    model.save_pretrained(out_dir)
    stop_ids = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(END_OF_TURN)]
    GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=stop_ids,
                     pad_token_id=tokenizer.pad_token_id).save_pretrained(out_dir)
    (out_dir / "training_state.json").write_text(json.dumps(
        {"kind": "random-init", "trained_tokens": 0, "seed": seed,
         "note": "random weights: a placeholder until the demo checkpoint is trained"}, indent=2))
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("checkpoints/tiny-random"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="overwrite an existing checkpoint")
    args = parser.parse_args(argv)
    if (args.out / "config.json").exists() and not args.force:
        print(f"{args.out} already holds a checkpoint (use --force to recreate it)")
        return 0
    init_checkpoint(args.out, seed=args.seed)
    print(f"wrote a random-initialised DeepseekV3 checkpoint to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
