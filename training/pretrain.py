"""Pretrain the MoE model and export a Hugging Face checkpoint.

    python -m training.pretrain --config training/configs/demo.yaml
    torchrun --nproc_per_node 2 -m training.pretrain --config training/configs/demo.yaml
    DS_ACCELERATOR=cpu deepspeed --num_gpus 2 --module training.pretrain --config training/configs/demo.yaml \
        --deepspeed training/deepspeed/zero3_cpu.json      (CPU: 2 processes, gloo)
    deepspeed --num_gpus 8 --module training.pretrain --config training/configs/gpu-1b.yaml \
        --deepspeed training/deepspeed/zero3_gpu.json      (GPUs)

Builds the data first when it is missing (process 0; the others wait), resumes from the latest
checkpoint in train.work_dir, and writes train.out_dir at the end.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.config import load_config
from training.data.prepare import prepare_data
from training.distributed import process_context
from training.trainer import Trainer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a YAML file in training/configs/")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="SECTION.FIELD=VALUE",
                        help="override a config field, e.g. --set train.max_steps=10")
    parser.add_argument("--deepspeed", type=Path, default=None, help="DeepSpeed config (ZeRO stage 3)")
    parser.add_argument("--local_rank", type=int, default=None, help=argparse.SUPPRESS)  # set by the launcher
    parser.add_argument("--no-export", action="store_true", help="train only; skip the final export")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = load_config(args.config, args.overrides)
    context = process_context(use_deepspeed=args.deepspeed is not None)
    if context.is_main:
        prepare_data(config.data)
    context.barrier()
    deepspeed_config = json.loads(args.deepspeed.read_text()) if args.deepspeed else None
    trainer = Trainer(config, context, deepspeed_config=deepspeed_config)
    history = trainer.fit()
    if not args.no_export:
        final = history[-1] if history else {}
        trainer.export(Path(config.train.out_dir), extra_state={"final": final})
    return 0


if __name__ == "__main__":
    sys.exit(main())
