"""Deterministic, resumable batches: the indices of step s depend only on (seed, s), so a run resumed at step s
draws exactly the batches an uninterrupted run would have drawn."""
from __future__ import annotations

import torch


class StepBatchSampler:
    """Yields index lists for steps ``start_step .. max_steps-1``.

    Each epoch is a fresh permutation of ``num_items`` seeded by (seed, epoch); a step takes the next
    ``batch_size`` indices (the global batch) and this rank keeps every ``world_size``-th of them.
    With fewer items than a batch, indices are drawn with replacement, seeded by (seed, step).
    """

    def __init__(self, num_items: int, *, batch_size: int, seed: int, start_step: int, max_steps: int,
                 rank: int = 0, world_size: int = 1):
        if num_items <= 0:
            raise ValueError("cannot sample batches from an empty dataset")
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} must be divisible by the number of processes {world_size}")
        self.num_items, self.batch_size, self.seed = num_items, batch_size, seed
        self.start_step, self.max_steps = start_step, max_steps
        self.rank, self.world_size = rank, world_size
        self.steps_per_epoch = num_items // batch_size

    def indices_for_step(self, step: int) -> list[int]:
        g = torch.Generator()
        if self.steps_per_epoch == 0:
            g.manual_seed(self.seed * 1_000_003 + step)
            batch = torch.randint(self.num_items, (self.batch_size,), generator=g)
        else:
            epoch, position = divmod(step, self.steps_per_epoch)
            g.manual_seed(self.seed * 1_000_003 + epoch)
            batch = torch.randperm(self.num_items, generator=g)[position * self.batch_size:(position + 1) * self.batch_size]
        return batch[self.rank::self.world_size].tolist()

    def __iter__(self):
        for step in range(self.start_step, self.max_steps):
            yield self.indices_for_step(step)

    def __len__(self) -> int:
        return max(0, self.max_steps - self.start_step)
