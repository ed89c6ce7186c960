"""Deterministic batches from packed token files, sharded across processes, resumable exactly.

Each epoch visits the sequences in a permutation drawn from (seed, epoch). An optimizer step takes
the next `world * grad_accum * micro_batch` sequences; process `rank` takes its contiguous share, so
one process with a batch of 2m sees exactly the sequences two processes with m see together.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch


def load_packed(path: Path, sequence_length: int) -> np.ndarray:
    """(sequences, sequence_length + 1) uint16, memory-mapped."""
    flat = np.memmap(path, dtype=np.uint16, mode="r")
    return flat.reshape(-1, sequence_length + 1)


@dataclass
class DataPosition:
    epoch: int = 0
    cursor: int = 0  # sequences of this epoch already consumed by all processes together

    def state_dict(self) -> dict:
        return asdict(self)


class StepBatches:
    def __init__(self, rows: np.ndarray, *, micro_batch: int, grad_accum: int, rank: int, world: int, seed: int,
                 position: DataPosition | None = None):
        self.rows = rows
        self.micro_batch, self.grad_accum = micro_batch, grad_accum
        self.rank, self.world = rank, world
        self.seed = seed
        self.position = position or DataPosition()
        self.global_batch = micro_batch * grad_accum * world
        if len(rows) < self.global_batch:
            raise ValueError(f"{len(rows)} training sequences cannot fill one global batch of {self.global_batch}")

    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.rows))

    def next_step(self) -> list[torch.Tensor]:
        """This process's `grad_accum` micro-batches for the next optimizer step, each (micro_batch, L + 1)."""
        if self.position.cursor + self.global_batch > len(self.rows):
            self.position = DataPosition(self.position.epoch + 1, 0)
        order = self._order(self.position.epoch)
        share = self.micro_batch * self.grad_accum
        start = self.position.cursor + self.rank * share
        mine = order[start:start + share]
        self.position.cursor += self.global_batch
        batch = torch.from_numpy(self.rows[mine].astype(np.int64))
        return list(batch.split(self.micro_batch))


def validation_batches(rows: np.ndarray, *, micro_batch: int, limit: int, rank: int, world: int) -> list[torch.Tensor]:
    """The first `limit` micro-batches of a validation file, split across processes."""
    mine = np.arange(min(len(rows), limit * micro_batch * world))[rank::world]
    return [torch.from_numpy(rows[mine[i:i + micro_batch]].astype(np.int64))
            for i in range(0, len(mine), micro_batch)]
