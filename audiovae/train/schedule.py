"""The learning-rate schedule: a linear warm-up, then a cosine decay from ``lr`` to ``lr * lr_min_ratio``.

``train.schedule`` says what the decay follows:

* ``"steps"``: steps ``warmup_steps .. max_steps - 1``; step ``max_steps - 1`` runs at the minimum.
* ``"time"``: the fraction of ``time_limit_minutes`` used so far (``train_seconds / (60 * minutes)``), or the fraction
  of ``max_steps`` done when that is larger, so whichever ends the run also ends the decay. The loop marks the
  step it expects to cross the limit as the last one (``last=True``), and that step runs at the minimum. The
  warm-up ramp (over ``warmup_steps`` steps, as for "steps") multiplies the cosine, so the curve is continuous.
"""
from __future__ import annotations

import math

from .config import TrainConfig


def schedule_progress(train: TrainConfig, *, step: int, train_seconds: float = 0.0, last: bool = False) -> float:
    """How far the cosine decay has gone, in [0, 1], for optimizer step ``step`` (0-based).

    train_seconds: seconds of training before this step (used by the "time" schedule only); last: this is the
    run's final step ("time" only: the decay ends there whatever the clock says).
    """
    if train.schedule == "time":
        if last:
            return 1.0
        by_time = train_seconds / (60.0 * train.time_limit_minutes)
        return min(1.0, max(by_time, step / train.max_steps, 0.0))
    span = max(1, train.max_steps - 1 - train.warmup_steps)
    return min(1.0, max(0.0, (step - train.warmup_steps) / span))


def learning_rate(train: TrainConfig, *, step: int, train_seconds: float = 0.0, last: bool = False) -> float:
    """The learning rate of optimizer step ``step`` (0-based); see the module docstring for the two schedules.

    Warm-up: ``lr * (step + 1) / warmup_steps`` during the first ``warmup_steps`` steps. Then
    ``lr * (r + (1 - r) * (1 + cos(pi * progress)) / 2)`` with ``r = lr_min_ratio``.
    """
    ramp = min(1.0, (step + 1) / train.warmup_steps) if train.warmup_steps > 0 else 1.0
    if train.schedule == "steps":
        if step < train.warmup_steps:
            return train.lr * ramp
        ramp = 1.0
    progress = schedule_progress(train, step=step, train_seconds=train_seconds, last=last)
    return train.lr * ramp * (train.lr_min_ratio + (1 - train.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
