"""The pretraining loop: one Trainer for a single process, torchrun (DDP) and DeepSpeed ZeRO-3."""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm
from transformers import AutoTokenizer, DeepseekV3ForCausalLM, GenerationConfig

from training.balancing import ExpertLoadBalancer
from training.config import RunConfig
from training.data.batches import DataPosition, StepBatches, load_packed, validation_batches
from training.distributed import ProcessContext
from training.tokenizer import END_OF_TURN

LATEST = "latest"


def lr_at(step: int, config) -> float:
    """Linear warmup to `lr`, then cosine decay to `min_lr` at `max_steps`."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Matrices decay; norms and biases do not."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        (decay if parameter.dim() >= 2 else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class Trainer:
    def __init__(self, config: RunConfig, context: ProcessContext, *, deepspeed_config: dict | None = None):
        self.config = config
        self.train_config = config.train
        self.context = context
        self.data_dir = Path(config.data.dir)
        self.work_dir = Path(config.train.work_dir)
        self.use_deepspeed = deepspeed_config is not None
        self.dtype = self._dtype()
        self._seed(config.train.seed)
        self.tokenizer = AutoTokenizer.from_pretrained(self.data_dir / "tokenizer")
        self.hf_config = config.model.to_hf(bos_token_id=self.tokenizer.bos_token_id,
                                            eos_token_id=self.tokenizer.eos_token_id,
                                            pad_token_id=self.tokenizer.pad_token_id)
        model = DeepseekV3ForCausalLM(self.hf_config).to(device=context.device, dtype=self.dtype)
        self.model = model  # the unwrapped module (DeepSpeed partitions its parameters in place)
        self.balancer = ExpertLoadBalancer(model, bias_update_speed=config.train.balance.bias_update_speed,
                                           aux_loss_weight=config.train.balance.aux_loss_weight)
        optimizer = torch.optim.AdamW(_param_groups(model, config.train.weight_decay), lr=config.train.lr,
                                      betas=(config.train.beta1, config.train.beta2))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_at(step, config.train)
                                                      / config.train.lr)
        if self.use_deepspeed:
            import deepspeed

            self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
                model=model, optimizer=optimizer, lr_scheduler=scheduler, config=self._deepspeed(deepspeed_config))
        else:
            self.engine = DistributedDataParallel(model, find_unused_parameters=True) if context.world > 1 else model
            self.optimizer, self.scheduler = optimizer, scheduler
        self.step = 0
        self.tokens_seen = 0
        self.batches = StepBatches(load_packed(self.data_dir / "train.bin", config.data.sequence_length),
                                   micro_batch=config.train.micro_batch_size, grad_accum=config.train.grad_accum_steps,
                                   rank=context.rank, world=context.world, seed=config.train.seed)
        self.history: list[dict] = []

    # --- setup -----------------------------------------------------------------------------
    def _dtype(self) -> torch.dtype:
        name = self.train_config.dtype
        if name == "auto":
            name = "bfloat16" if self.context.device.type == "cuda" else "float32"
        return getattr(torch, name)

    def _deepspeed(self, base: dict) -> dict:
        """The DeepSpeed config file, with batch, clipping and precision taken from the run config."""
        ds = dict(base)
        ds.update(train_micro_batch_size_per_gpu=self.train_config.micro_batch_size,
                  gradient_accumulation_steps=self.train_config.grad_accum_steps,
                  gradient_clipping=self.train_config.grad_clip, steps_per_print=10**9)
        ds["bf16"] = {"enabled": self.dtype == torch.bfloat16}
        return ds

    @staticmethod
    def _seed(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    # --- training --------------------------------------------------------------------------
    def fit(self, *, stop_at: int | None = None) -> list[dict]:
        """Train to `max_steps`, resuming from the latest checkpoint in work_dir.

        `stop_at` ends the run early at that step, as an interruption would (tests, time-boxed runs).
        """
        self.load_checkpoint()
        config = self.train_config
        last_step = min(config.max_steps, stop_at or config.max_steps)
        tokens_per_step = self.batches.global_batch * self.config.data.sequence_length
        bar = tqdm(total=config.max_steps, initial=self.step, disable=not self.context.is_main, unit="step",
                   dynamic_ncols=True)
        started, start_step = time.perf_counter(), self.step
        while self.step < last_step:
            loss = self.train_step()
            elapsed = time.perf_counter() - started
            tokens_per_s = (self.step - start_step) * tokens_per_step / max(elapsed, 1e-9)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens_per_s:,.0f}", lr=f"{self.scheduler.get_last_lr()[0]:.1e}")
            record = {"step": self.step, "loss": loss, "tokens": self.tokens_seen, "tokens_per_s": round(tokens_per_s, 1),
                      "elapsed_s": round(elapsed, 1)}
            if self.step % config.log_interval == 0 or self.step == config.max_steps:
                record["expert_load"] = self.balancer.load_report()
            if self.step % config.eval_interval == 0 or self.step == config.max_steps:
                record["validation"] = self.evaluate()
            self._log(record)
            if self.step % config.save_interval == 0 or self.step == config.max_steps:
                self.save_checkpoint()
        bar.close()
        return self.history

    def train_step(self) -> float:
        """One optimizer step over this process's micro-batches; returns the mean loss over all processes."""
        self.engine.train()
        micro_batches = self.batches.next_step()
        accum = len(micro_batches)
        loss_sum = torch.zeros((), dtype=torch.float64)
        for index, batch in enumerate(micro_batches):
            batch = batch.to(self.context.device)
            loss = self._lm_loss(batch)
            loss_sum += loss.detach().double().cpu()
            aux = self.balancer.aux_loss()
            total = loss if aux is None else loss + aux
            if self.use_deepspeed:
                self.engine.backward(total)
                self.engine.step()
            elif isinstance(self.engine, DistributedDataParallel) and index < accum - 1:
                with self.engine.no_sync():
                    (total / accum).backward()
            else:
                (total / accum).backward()
        if not self.use_deepspeed:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.train_config.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        self.balancer.update_biases(self.context.all_reduce_sum if self.context.world > 1 else None)
        self.step += 1
        self.tokens_seen += self.batches.global_batch * self.config.data.sequence_length
        mean = loss_sum / accum
        self.context.all_reduce_sum(mean)
        return float(mean) / self.context.world

    def _lm_loss(self, batch: torch.Tensor) -> torch.Tensor:
        inputs, targets = batch[:, :-1], batch[:, 1:]  # (batch, seq)
        logits = self.engine(input_ids=inputs, use_cache=False).logits  # (batch, seq, vocab)
        return torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1))

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Validation loss and perplexity per corpus part (token-weighted across processes)."""
        self.engine.eval()
        results = {}
        for path in sorted(self.data_dir.glob("val_*.bin")):
            rows = load_packed(path, self.config.data.sequence_length)
            totals = torch.zeros(2, dtype=torch.float64)  # (summed loss, tokens)
            for batch in validation_batches(rows, micro_batch=self.train_config.micro_batch_size,
                                            limit=self.train_config.eval_batches, rank=self.context.rank,
                                            world=self.context.world):
                loss = self._lm_loss(batch.to(self.context.device))
                tokens = batch[:, 1:].numel()
                totals += torch.tensor([float(loss) * tokens, tokens], dtype=torch.float64)
            self.context.all_reduce_sum(totals)
            if totals[1] > 0:
                loss = float(totals[0] / totals[1])
                results[path.stem.removeprefix("val_")] = {"loss": round(loss, 4), "perplexity": round(math.exp(loss), 2)}
        self.engine.train()
        return results

    def _log(self, record: dict) -> None:
        self.history.append(record)
        if self.context.is_main:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            with (self.work_dir / "metrics.jsonl").open("a") as log:
                log.write(json.dumps(record) + "\n")

    # --- checkpoints -----------------------------------------------------------------------
    def _trainer_state(self) -> dict:
        return {"step": self.step, "tokens_seen": self.tokens_seen, "data_position": self.batches.position.state_dict(),
                "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}}

    def save_checkpoint(self) -> Path:
        """Everything needed to continue exactly: weights, optimizer, schedule, data position, RNG."""
        tag = f"step_{self.step:07d}"
        directory = self.work_dir / tag
        directory.mkdir(parents=True, exist_ok=True)
        state = self._trainer_state()
        if self.use_deepspeed:
            self.engine.save_checkpoint(str(self.work_dir), tag=tag)
        elif self.context.is_main:
            torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                        "scheduler": self.scheduler.state_dict()}, directory / "weights.pt")
        torch.save(state, directory / f"trainer_rank{self.context.rank}.pt")
        self.context.barrier()
        if self.context.is_main:
            (self.work_dir / LATEST).write_text(tag)
        if self.train_config.export_on_save:
            self.export(Path(self.train_config.out_dir), extra_state={"final": self.history[-1] if self.history else {}})
        return directory

    def load_checkpoint(self) -> bool:
        """Continue from work_dir/latest when it exists; returns whether it did."""
        latest = self.work_dir / LATEST
        if not latest.exists():
            return False
        tag = latest.read_text().strip()
        directory = self.work_dir / tag
        if self.use_deepspeed:
            self.engine.load_checkpoint(str(self.work_dir), tag=tag)
        else:
            weights = torch.load(directory / "weights.pt", map_location=self.context.device, weights_only=False)
            self.model.load_state_dict(weights["model"])
            self.optimizer.load_state_dict(weights["optimizer"])
            self.scheduler.load_state_dict(weights["scheduler"])
        state = torch.load(directory / f"trainer_rank{self.context.rank}.pt", weights_only=False)
        self.step, self.tokens_seen = state["step"], state["tokens_seen"]
        self.batches.position = DataPosition(**state["data_position"])
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
        return True

    # --- export ----------------------------------------------------------------------------
    def full_state_dict(self) -> dict[str, torch.Tensor] | None:
        """The whole model's weights on the main process (ZeRO-3 gathers them from every process)."""
        if self.use_deepspeed:
            return self.engine._zero3_consolidated_16bit_state_dict()  # collective: every rank calls it
        return self.model.state_dict() if self.context.is_main else None

    def export(self, out_dir: Path, *, extra_state: dict | None = None) -> Path | None:
        """A Hugging Face checkpoint (bfloat16 safetensors + tokenizer) that transformers and vLLM load."""
        state = self.full_state_dict()
        if not self.context.is_main:
            return None
        out_dir.mkdir(parents=True, exist_ok=True)
        model = DeepseekV3ForCausalLM(self.hf_config)
        model.load_state_dict({name: tensor.float() for name, tensor in state.items()})
        model.to(torch.bfloat16).save_pretrained(out_dir)
        self.tokenizer.save_pretrained(out_dir)
        stop_ids = [self.tokenizer.eos_token_id, self.tokenizer.convert_tokens_to_ids(END_OF_TURN)]
        GenerationConfig(bos_token_id=self.tokenizer.bos_token_id, eos_token_id=stop_ids,
                         pad_token_id=self.tokenizer.pad_token_id).save_pretrained(out_dir)
        training_state = {"kind": "pretrained", "steps": self.step, "trained_tokens": self.tokens_seen,
                          "config": asdict(self.config), **(extra_state or {})}
        (out_dir / "training_state.json").write_text(json.dumps(training_state, indent=2, default=str) + "\n")
        return out_dir
