"""The training loop, visible: ``setup -> run_steps -> finish`` around a :class:`Run`, one ``train_step`` per step.

Runs the same in one process and under torchrun (DistributedDataParallel; rank 0 alone logs, validates, draws the
progress bar and writes). What one rank decides alone or from its own clock (the time limit, a plateau of the
validation figure, an error in rank 0's validation / checkpoint / sample work) is agreed by every rank at the top
of each step (:func:`agree`: one tiny all-reduce, nothing at all in a single process), so all ranks stop at the
same step and none is left waiting: an error on rank 0 makes every rank raise (rank 0 its own error, the others
a short AudioVAEError pointing at it).

A step whose gradients are not finite is skipped and counted; ``max_nonfinite`` in a row stop the run with a
message and without writing a checkpoint of the broken weights. With ``train.ema_decay`` > 0 an exponential moving
average of the weights is kept beside them: validation, samples and the final model use it, checkpoints keep it in
their resume state. The last log line says why the run stopped
("stopped: max steps (12); validation: ..."), and the final model's config.json keeps it as training.stop_reason.
"""
from __future__ import annotations

import contextlib
import gc
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..device import resolve_device
from ..errors import AudioVAEError
from . import checkpoint as ckpt
from .config import Recipe, recipe_to_toml
from .distributed import DistInfo, all_reduce_max, all_reduce_mean, init_distributed, shutdown
from .sampler import StepBatchSampler
from .schedule import learning_rate
from .task import Task


class TrainingDiverged(AudioVAEError):
    """Too many consecutive non-finite steps."""


@dataclass
class TrainState:
    """What a checkpoint keeps to resume exactly (plain numbers: train_state.pt loads with weights_only=True)."""

    step: int = 0                       # optimizer steps taken (skipped non-finite ones included)
    nonfinite_total: int = 0
    nonfinite_in_row: int = 0
    train_seconds: float = 0.0          # wall-clock seconds of training so far, agreed by all ranks
    best_monitor: float | None = None   # best value of the task's monitored validation figure so far
    stale_validations: int = 0          # validations in a row since that figure last improved

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Run:
    """One process's training: what setup builds, run_steps advances and finish writes out."""

    recipe: Recipe
    run_dir: Path
    dist: DistInfo
    log: Callable[[str], object]
    progress: bool
    device: torch.device = torch.device("cpu")
    task: Task | None = None
    model: torch.nn.Module | None = None      # the plain model: validation, samples, checkpoints
    ddp_model: torch.nn.Module | None = None  # what train_step calls: DDP-wrapped under torchrun
    optimizer: torch.optim.Optimizer | None = None
    state: TrainState = field(default_factory=TrainState)
    batches: Iterator | None = None
    metrics: MetricsLog | None = None
    bar: tqdm | None = None
    clock_start: float = 0.0                  # time.monotonic() at which train_seconds was 0
    step_seconds: float = 0.0                 # this rank's running estimate of one train_step, seconds
    steps_this_session: int = 0
    last_reason: str = ""                     # set by agree() when the coming step is the last: why
    plateau: bool = False                     # rank 0: the monitored figure stopped improving
    error: Exception | None = None            # rank 0: its own work failed; raised everywhere at the next agree()
    stop_reason: str = ""
    window: dict[str, float] = field(default_factory=dict)  # rank 0: sums of loss terms since the last log line
    window_steps: int = 0
    lr: float = 0.0                           # learning rate of the latest step
    ema: dict[str, torch.Tensor] | None = None  # moving average of the floating-point weights (train.ema_decay)


def autocast_context(device: torch.device, precision: str):
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if use_bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


class MetricsLog:
    """metrics.jsonl in the run folder (and TensorBoard when it is installed). Rank 0 only."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.enabled = enabled
        self.path = run_dir / "metrics.jsonl"
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:  # TensorBoard is optional
                self.tb = None

    def write(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, "time": round(time.time(), 3)} | values) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
            self.tb = None


def train_step(model, optimizer, task: Task, batch, state: TrainState, recipe: Recipe, device, dist: DistInfo, *,
               lr: float) -> dict:
    """One optimizer step at learning rate ``lr``; returns the loss terms, grad norm and ``opt/lr`` as floats."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    with autocast_context(device, recipe.train.precision):
        losses = task.losses(model, batch, state.step)
    optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.train.grad_clip or float("inf"))
    # Under DDP the gradients are already averaged, so every rank takes the same decision here.
    finite = bool(torch.isfinite(grad_norm)) and bool(torch.isfinite(all_reduce_mean(losses["loss"].detach(), dist)))
    if finite:
        optimizer.step()
        state.nonfinite_in_row = 0
    else:
        optimizer.zero_grad(set_to_none=True)
        state.nonfinite_total += 1
        state.nonfinite_in_row += 1
    state.step += 1
    out = {k: float(v.detach()) for k, v in losses.items()}
    out["stats/grad_norm"] = float(grad_norm)
    out["opt/lr"] = lr
    return out


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def save_checkpoint(run_dir: Path, model, optimizer, state: TrainState, recipe: Recipe, keep: int,
                    ema: dict[str, torch.Tensor] | None = None) -> Path:
    train_state = {"optimizer": optimizer.state_dict(), "state": state.to_dict(), "rng": rng_state()}
    if ema is not None:
        train_state["ema"] = ema
    return ckpt.save_run_checkpoint(run_dir, model, step=state.step, train_state=train_state,
                                    extra={"recipe": recipe.to_dict()}, keep=keep)


def resume(run_dir: Path, model, optimizer, state: TrainState, device) -> dict | None:
    """Load the run's latest checkpoint into model/optimizer/state; returns its resume state (None when the run
    has no checkpoint yet)."""
    try:
        folder = ckpt.resolve_checkpoint(run_dir / "checkpoints")
    except AudioVAEError:
        return None
    from safetensors.torch import load_file

    ckpt.unwrap(model).load_state_dict(load_file(str(folder / "model.safetensors"), device=str(device)))
    saved = ckpt.load_train_state(folder)
    optimizer.load_state_dict(saved["optimizer"])
    for k, v in saved["state"].items():
        setattr(state, k, v)
    torch.set_rng_state(saved["rng"]["torch"])
    if "cuda" in saved["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["rng"]["cuda"])
    return saved


# --- the moving average of the weights --------------------------------------------------------------------------
def update_ema(run: Run) -> None:
    """Move the average toward the current weights after a good step. The decay ramps up as (1 + s) / (10 + s)
    toward train.ema_decay, so the early average is not dominated by the random initial weights."""
    decay = run.recipe.train.ema_decay
    if not decay:
        return
    weights = {k: v for k, v in run.model.state_dict().items() if v.is_floating_point()}
    if run.ema is None:
        run.ema = {k: v.detach().clone() for k, v in weights.items()}
    step = run.state.step
    keep = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for k, v in weights.items():
            run.ema[k].lerp_(v.detach(), 1.0 - keep)


@contextlib.contextmanager
def evaluation_weights(run: Run):
    """The model in eval mode with the weights to judge and publish: the moving average when there is one (the
    training weights are put back afterwards, and training mode restored)."""
    was_training = run.model.training
    backup = None
    if run.ema is not None:
        live = run.model.state_dict()
        backup = {k: live[k].detach().clone() for k in run.ema}
        run.model.load_state_dict(run.ema, strict=False)
    run.model.eval()
    try:
        yield run.model
    finally:
        if backup is not None:
            run.model.load_state_dict(backup, strict=False)
        run.model.train(was_training)


def gather_weight_checksums(model, dist: DistInfo) -> list[float]:
    """One float per rank summarising its weights; under DDP every rank must hold the same numbers."""
    local = torch.stack([p.detach().double().sum() + p.detach().double().abs().sum() * 1e-3
                         for p in model.parameters()]).sum().reshape(1).cpu()
    if not dist.enabled:
        return [float(local)]
    import torch.distributed as tdist

    gathered = [torch.zeros_like(local) for _ in range(dist.world_size)]
    tdist.all_gather(gathered, local)
    return [float(g) for g in gathered]


def build_task(recipe: Recipe, run_dir: Path, dist: DistInfo, progress: bool) -> Task:
    if recipe.task == "mel_vae":
        from .mel_task import MelTask
        return MelTask(recipe, run_dir, dist, progress=progress)
    if recipe.task == "vocoder":
        from .vocoder_task import VocoderTask
        return VocoderTask(recipe, run_dir, dist, progress=progress)
    if recipe.task == "mel_prior":
        from .prior_task import MelPriorTask
        return MelPriorTask(recipe, run_dir, dist, progress=progress)
    if recipe.task == "mel_vqvae":
        from .vq_task import MelVQTask
        return MelVQTask(recipe, run_dir, dist, progress=progress)
    if recipe.task == "mel_vqvae_prior":
        from .vq_prior_task import CodePriorTask
        return CodePriorTask(recipe, run_dir, dist, progress=progress)
    from .midi_task import MidiTask
    return MidiTask(recipe, run_dir, dist, progress=progress)


# --- agreeing across ranks ------------------------------------------------------------------------------------
@contextlib.contextmanager
def main_only(run: Run):
    """Wrap rank 0's own work (data cache, validation, samples, checkpoints, the final model).

    In one process an error simply propagates. Under torchrun rank 0 keeps it in ``run.error`` and carries on to
    the next point where all ranks meet (:func:`agree` or :func:`raise_shared_error`); there every rank raises, so
    no rank waits forever in a collective that rank 0 will never join.
    """
    try:
        yield
    except Exception as exc:
        if not run.dist.enabled:
            raise
        run.error = exc


def _raise_error(run: Run):
    if run.error is not None:
        raise run.error
    raise AudioVAEError(f"rank 0 failed near step {run.state.step} (its error is in the log above); "
                        f"rank {run.dist.rank} stopped with it")


def raise_shared_error(run: Run) -> None:
    """A meeting point of all ranks: if rank 0's own work failed, every rank raises now. No-op in one process."""
    if run.dist.enabled and all_reduce_max([float(run.error is not None)], run.dist)[0]:
        _raise_error(run)


def plateau_reason(run: Run) -> str:
    key = run.task.monitor[0]
    return f"plateau ({run.recipe.train.stop_on_plateau} validations without improvement of {key})"


def agree(run: Run) -> str:
    """The top of every step, on every rank: agree on the clock and on stopping. Returns why to stop, or "".

    One all-reduce (MAX) of [train seconds, seconds per step, rank 0 error flag, plateau flag] (nothing in one
    process), so every rank takes the same decisions from the same numbers. It also plans the coming step: when
    it reaches max_steps, or is expected to end past the time limit, ``run.last_reason`` marks it as the last.
    """
    t, state = run.recipe.train, run.state
    seconds, step_seconds, error, plateau = all_reduce_max(
        [time.monotonic() - run.clock_start, run.step_seconds, float(run.error is not None), float(run.plateau)],
        run.dist)
    state.train_seconds = seconds
    if error:
        _raise_error(run)
    limit = 60.0 * t.time_limit_minutes
    if plateau:
        return plateau_reason(run)
    if run.last_reason or state.step >= t.max_steps:
        return run.last_reason or f"max steps ({t.max_steps})"
    if limit and seconds >= limit and run.steps_this_session == 0:  # resumed with no time left
        return f"time limit ({t.time_limit_minutes} min) at step {state.step}"
    if state.step + 1 >= t.max_steps:
        run.last_reason = f"max steps ({t.max_steps})"
    elif limit and seconds + step_seconds >= limit:
        run.last_reason = f"time limit ({t.time_limit_minutes} min) at step {state.step + 1}"
    return ""


# --- setup ------------------------------------------------------------------------------------------------------
def setup(run: Run, *, resume_run: bool) -> None:
    """Device, threads, seed, datasets, model, optimizer, resumed state, batches, logs: all run_steps needs."""
    t, dist = run.recipe.train, run.dist
    run.device = resolve_device(t.device, local_rank=dist.local_rank)
    if run.device.type == "cuda":
        torch.cuda.set_device(run.device)
    if t.threads > 0:
        torch.set_num_threads(t.threads)
    torch.manual_seed(t.seed + 1000 * dist.rank)
    run.task = build_task(run.recipe, run.run_dir, dist, run.progress and dist.is_main)
    check_monitor(run)
    train_set = build_data(run)
    run.model = run.task.build_model().to(run.device)
    run.optimizer = torch.optim.AdamW(run.model.parameters(), lr=t.lr, weight_decay=t.weight_decay,
                                      betas=(0.9, 0.99))
    saved = resume(run.run_dir, run.model, run.optimizer, run.state, run.device) if resume_run else None
    if saved is not None:
        run.ema = saved.get("ema")
        if dist.is_main:
            run.log(f"resumed {run.run_dir} at step {run.state.step}")
    run.ddp_model = run.model
    if dist.enabled:
        run.ddp_model = torch.nn.parallel.DistributedDataParallel(
            run.model, device_ids=[run.device.index] if run.device.type == "cuda" else None)
    sampler = StepBatchSampler(len(train_set), batch_size=t.batch_size, seed=t.seed, start_step=run.state.step,
                               max_steps=t.max_steps, rank=dist.rank, world_size=dist.world_size)
    run.batches = iter(torch.utils.data.DataLoader(train_set, batch_sampler=sampler, num_workers=t.num_workers,
                                                   pin_memory=run.device.type == "cuda"))
    run.bar = tqdm(total=None if t.schedule == "time" else t.max_steps, initial=run.state.step, desc="train",
                   disable=not (run.progress and dist.is_main), dynamic_ncols=True)
    if dist.is_main:
        with main_only(run):  # an error here reaches the other ranks at the first agree()
            run.metrics = MetricsLog(run.run_dir, enabled=True)
            run.log(describe_start(run, len(train_set)))
    run.clock_start = time.monotonic() - run.state.train_seconds


def build_data(run: Run) -> torch.utils.data.Dataset:
    """The training set. Rank 0 writes the resolved recipe and fills the feature cache first; the others then
    read the cache (an error on rank 0 is raised on every rank instead of leaving them waiting)."""
    train_set = None
    if run.dist.is_main:
        with main_only(run):
            run.run_dir.mkdir(parents=True, exist_ok=True)
            ckpt.atomic_write_text(run.run_dir / "recipe.resolved.toml", recipe_to_toml(run.recipe))
            train_set, _ = run.task.build_datasets()
            if run.task.report():
                run.log(run.task.report())
    raise_shared_error(run)
    if not run.dist.is_main:
        train_set, _ = run.task.build_datasets()
    return train_set


def check_monitor(run: Run) -> None:
    """train.stop_on_plateau needs the task's ``monitor = ("val/<figure>", "min" | "max")``."""
    monitor = run.task.monitor
    if run.recipe.train.stop_on_plateau and not (
            isinstance(monitor, tuple) and len(monitor) == 2 and monitor[1] in ("min", "max")):
        raise AudioVAEError(f"train.stop_on_plateau is set but the {run.recipe.task} task names no validation figure "
                            f"to watch (Task.monitor = {monitor!r}); set train.stop_on_plateau = 0")


def describe_start(run: Run, train_items: int) -> str:
    t, dist = run.recipe.train, run.dist
    n_params = sum(p.numel() for p in run.model.parameters())
    if t.schedule == "time":
        until = f"for {t.time_limit_minutes} min (at most step {t.max_steps}), lr schedule over time"
    else:
        until = f"-> {t.max_steps}" + (f" or {t.time_limit_minutes} min" if t.time_limit_minutes else "")
    return (f"training {type(run.model).__name__} ({n_params / 1e6:.2f} M parameters) on {run.device}"
            f"{f' x{dist.world_size} processes' if dist.enabled else ''}: {train_items} training items, "
            f"steps {run.state.step} {until}")


# --- the steps --------------------------------------------------------------------------------------------------
def run_steps(run: Run) -> None:
    """Train until the ranks agree to stop; leaves why in ``run.stop_reason``."""
    t, state = run.recipe.train, run.state
    run.model.train()
    while not (reason := agree(run)):
        batch = to_device(next(run.batches), run.device)
        lr = learning_rate(t, step=state.step, train_seconds=state.train_seconds, last=bool(run.last_reason))
        began = time.monotonic()
        values = train_step(run.ddp_model, run.optimizer, run.task, batch, state, run.recipe, run.device, run.dist,
                            lr=lr)
        took = time.monotonic() - began
        run.step_seconds = took if run.steps_this_session == 0 else 0.8 * run.step_seconds + 0.2 * took
        run.steps_this_session += 1
        if state.nonfinite_in_row == 0:
            update_ema(run)
        if state.nonfinite_in_row >= t.max_nonfinite:
            raise TrainingDiverged(
                f"{state.nonfinite_in_row} optimizer steps in a row had non-finite loss or gradients "
                f"(step {state.step}); stopping without saving these weights. The last good checkpoint is in "
                f"{run.run_dir / 'checkpoints'}. Try a lower train.lr or train.grad_clip.")
        if run.dist.is_main and run.error is None:
            with main_only(run):
                after_step(run, values)
    run.stop_reason = reason


def after_step(run: Run, values: dict[str, float]) -> None:
    """Rank 0 after each step: metrics, validation (and the plateau watch), samples, checkpoint. The last step
    always gets a log line and a checkpoint; its validation is the final one, in :func:`finish`."""
    t, step = run.recipe.train, run.state.step
    run.lr = values.pop("opt/lr")
    if all(math.isfinite(v) for v in values.values()):  # a skipped step would turn the window's mean to inf
        for k, v in values.items():
            run.window[k] = run.window.get(k, 0.0) + v
        run.window_steps += 1
    run.bar.update(1)
    if step % t.val_every == 0 and not run.last_reason:
        run.plateau = plateau_reached(run, validate(run))
    last = bool(run.last_reason) or run.plateau
    if step % t.log_every == 0 or last:
        flush_metrics(run)
    if t.sample_every and step % t.sample_every == 0:
        with evaluation_weights(run) as model:
            run.task.save_samples(model, step, run.run_dir / "samples" / f"step_{step:08d}")
    if step % t.checkpoint_every == 0 or last:
        save_checkpoint(run.run_dir, run.model, run.optimizer, run.state, run.recipe, t.keep_checkpoints, run.ema)


def flush_metrics(run: Run) -> None:
    """One metrics.jsonl line: loss terms averaged since the last line, the latest lr, counters, clock."""
    averaged = {k: v / run.window_steps for k, v in run.window.items()} if run.window_steps else {}
    run.window, run.window_steps = {}, 0
    run.metrics.write(run.state.step, averaged | {
        "opt/lr": run.lr, "stats/nonfinite_steps": run.state.nonfinite_total,
        "stats/train_seconds": time.monotonic() - run.clock_start})
    if "loss" in averaged:
        run.bar.set_postfix(loss=f"{averaged['loss']:.3f}")


def validate(run: Run) -> dict[str, float]:
    with evaluation_weights(run) as model:
        figures = run.task.validate(model)
    run.metrics.write(run.state.step, figures)
    return figures


def plateau_reached(run: Run, figures: dict[str, float]) -> bool:
    """Track the task's monitored figure; True after train.stop_on_plateau validations in a row without a new
    best (strictly lower for "min", higher for "max"; NaN never counts as better)."""
    patience, state = run.recipe.train.stop_on_plateau, run.state
    if not patience:
        return False
    key, mode = run.task.monitor
    if key not in figures:
        raise AudioVAEError(f"train.stop_on_plateau watches {key}, but validation gave only {sorted(figures)} "
                            "(is the validation split empty?); set train.stop_on_plateau = 0 or raise "
                            "data.val_fraction")
    value = figures[key]
    best = state.best_monitor
    if math.isfinite(value) and (best is None or (value < best if mode == "min" else value > best)):
        state.best_monitor, state.stale_validations = value, 0
    else:
        state.stale_validations += 1
    return state.stale_validations >= patience


# --- the end ----------------------------------------------------------------------------------------------------
def finish(run: Run) -> Path:
    """After the last step: weight checksums from every rank, then rank 0 writes the final model (latent stats,
    final validation, why the run stopped). Every rank raises if rank 0 failed or the ranks' weights differ."""
    run.bar.close()
    checksums = gather_weight_checksums(run.model, run.dist)
    final = run.run_dir / "model"
    summary: dict[str, float] = {}
    if run.dist.is_main:
        with main_only(run):
            summary = write_final_model(run, final, checksums)
    raise_shared_error(run)  # under torchrun also the final barrier: rank 0 has written everything
    if len(set(checksums)) > 1:
        raise AudioVAEError(f"processes ended with different weights (checksums {checksums}); DDP is broken")
    if run.dist.is_main:
        state = run.state
        run.log(f"model written to {final} after {state.step} steps, {state.train_seconds / 60:.1f} min of training"
                f"{f', {state.nonfinite_total} non-finite steps skipped' if state.nonfinite_total else ''}")
        run.log(f"stopped: {run.stop_reason}; validation: " + ", ".join(f"{k}={v:.4g}" for k, v in summary.items()))
    return final


def write_final_model(run: Run, final: Path, checksums: list[float]) -> dict[str, float]:
    """Rank 0: the last metrics line, latent stats, final validation, samples, and run_dir/model (the moving
    average of the weights when the run kept one)."""
    state = run.state
    if run.window_steps:
        flush_metrics(run)
    with evaluation_weights(run) as model:
        model.latent_stats = run.task.latent_stats(model)
        calibration = run.task.anomaly_calibration(model)
        summary = run.task.validate(model)
        run.metrics.write(state.step, summary)
        run.metrics.close()
        run.task.save_samples(model, state.step, run.run_dir / "samples" / "final")
        ckpt.write_model_folder(final, model, extra={"recipe": run.recipe.to_dict(), "training": {
            "steps": state.step, "train_seconds": round(state.train_seconds, 1), "device": str(run.device),
            "processes": run.dist.world_size, "nonfinite_steps": state.nonfinite_total, "validation": summary,
            "stop_reason": run.stop_reason, "weights": "moving average" if run.ema is not None else "last step",
            "rank_weight_checksums": checksums}} | ({"anomaly_calibration": calibration} if calibration else {}))
    return summary


def train(recipe: Recipe, run_dir: str | Path, *, resume_run: bool = False, progress: bool = True,
          log=print) -> Path:
    """Train ``recipe`` into ``run_dir``; returns the folder of the final model (run_dir/model).

    ``log`` receives rank 0's lines; the last one says why the run stopped (or "stopped: error: ...").
    """
    dist = init_distributed(resolve_device(recipe.train.device).type)
    run = Run(recipe, Path(run_dir), dist, log, progress)
    try:
        setup(run, resume_run=resume_run)
        run_steps(run)
        return finish(run)
    except Exception as exc:
        if dist.is_main:
            log(f"stopped: error: {exc if isinstance(exc, AudioVAEError) else f'{type(exc).__name__}: {exc}'}")
        raise
    except KeyboardInterrupt:
        if dist.is_main:
            log(f"stopped: interrupted at step {run.state.step}")
        raise
    finally:
        if run.bar is not None:
            run.bar.close()
        if run.metrics is not None:
            run.metrics.close()
        if dist.enabled:
            # DDP keeps the process group alive; freed only after destroy_process_group, gloo sometimes aborts the
            # process at exit ("terminate called without an active exception": 12 of 43 two-rank launches of a
            # minimal script did, none of 30 once DDP was freed first).
            run.ddp_model = run.batches = None
            gc.collect()
        shutdown(dist)
