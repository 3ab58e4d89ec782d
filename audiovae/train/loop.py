"""The training loop, visible: setup, train_step, validate, save_checkpoint, save_samples, around a TrainState.

Runs the same in one process and under torchrun (DistributedDataParallel; rank 0 alone logs and writes).
A step whose gradients are not finite is skipped and counted; ``max_nonfinite`` in a row stop the run with a
message and without writing a checkpoint of the broken weights.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..errors import AudioVAEError
from . import checkpoint as ckpt
from .config import Recipe, recipe_to_toml
from .distributed import DistInfo, all_reduce_mean, barrier, init_distributed, shutdown
from .sampler import StepBatchSampler
from .task import Task


class TrainingDiverged(AudioVAEError):
    """Too many consecutive non-finite steps."""


@dataclass
class TrainState:
    step: int = 0
    nonfinite_total: int = 0
    nonfinite_in_row: int = 0
    train_seconds: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def pick_device(name: str, dist: DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{dist.local_rank}"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise AudioVAEError("train.device asks for CUDA but no GPU is visible; use train.device=cpu")
        torch.cuda.set_device(device)
    return device


def autocast_context(device: torch.device, precision: str):
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if use_bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def learning_rate(step: int, recipe: Recipe) -> float:
    t = recipe.train
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    progress = min(1.0, (step - t.warmup_steps) / max(1, t.max_steps - t.warmup_steps))
    return t.lr * (t.lr_min_ratio + (1 - t.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


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


def train_step(model, optimizer, task: Task, batch, state: TrainState, recipe: Recipe, device, dist: DistInfo) -> dict:
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(state.step, recipe)
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
    out["stats/lr"] = optimizer.param_groups[0]["lr"]
    out["stats/nonfinite_steps"] = state.nonfinite_total
    return out


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def save_checkpoint(run_dir: Path, model, optimizer, state: TrainState, recipe: Recipe, keep: int) -> Path:
    train_state = {"optimizer": optimizer.state_dict(), "state": state.to_dict(), "rng": rng_state()}
    return ckpt.save_run_checkpoint(run_dir, model, step=state.step, train_state=train_state,
                                    extra={"recipe": recipe.to_dict()}, keep=keep)


def resume(run_dir: Path, model, optimizer, state: TrainState, device) -> bool:
    """Load the run's latest checkpoint into model/optimizer/state. False when the run has none yet."""
    try:
        folder = ckpt.resolve_checkpoint(run_dir / "checkpoints")
    except AudioVAEError:
        return False
    from safetensors.torch import load_file

    ckpt.unwrap(model).load_state_dict(load_file(str(folder / "model.safetensors"), device=str(device)))
    saved = ckpt.load_train_state(folder)
    optimizer.load_state_dict(saved["optimizer"])
    for k, v in saved["state"].items():
        setattr(state, k, v)
    torch.set_rng_state(saved["rng"]["torch"])
    if "cuda" in saved["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["rng"]["cuda"])
    return True


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
    from .midi_task import MidiTask
    return MidiTask(recipe, run_dir, dist, progress=progress)


def train(recipe: Recipe, run_dir: str | Path, *, resume_run: bool = False, progress: bool = True,
          log=print) -> Path:
    """Train ``recipe`` into ``run_dir``; returns the folder of the final model (run_dir/model)."""
    run_dir = Path(run_dir)
    t = recipe.train
    dist = init_distributed("cuda" if t.device.startswith("cuda") or (t.device == "auto" and torch.cuda.is_available()) else "cpu")
    try:
        device = pick_device(t.device, dist)
        if t.threads > 0:
            torch.set_num_threads(t.threads)
        torch.manual_seed(t.seed + 1000 * dist.rank)
        main = dist.is_main
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            ckpt.atomic_write_text(run_dir / "recipe.resolved.toml", recipe_to_toml(recipe))
        task = build_task(recipe, run_dir, dist, progress and main)
        if main:  # rank 0 fills the cache first; the others then read it
            train_set, val_set = task.build_datasets()
            barrier(dist)
        else:
            barrier(dist)
            train_set, val_set = task.build_datasets()
        if main and task.report():
            log(task.report())
        model = task.build_model().to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay, betas=(0.9, 0.99))
        state = TrainState()
        if resume_run and resume(run_dir, model, optimizer, state, device) and main:
            log(f"resumed {run_dir} at step {state.step}")
        ddp_model = model
        if dist.enabled:
            ddp_model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        if main:
            n_params = sum(p.numel() for p in model.parameters())
            log(f"training {type(model).__name__} ({n_params / 1e6:.2f} M parameters) on {device}"
                f"{f' x{dist.world_size} processes' if dist.enabled else ''}: {len(train_set)} training items, "
                f"steps {state.step} -> {t.max_steps}")
        sampler = StepBatchSampler(len(train_set), batch_size=t.batch_size, seed=t.seed, start_step=state.step,
                                   max_steps=t.max_steps, rank=dist.rank, world_size=dist.world_size)
        loader = torch.utils.data.DataLoader(train_set, batch_sampler=sampler, num_workers=t.num_workers,
                                             pin_memory=device.type == "cuda", persistent_workers=False)
        metrics = MetricsLog(run_dir, main)
        bar = tqdm(total=t.max_steps, initial=state.step, disable=not (progress and main), desc="train",
                   dynamic_ncols=True)
        started = time.monotonic() - state.train_seconds
        running: dict[str, float] = {}
        running_steps = 0
        model.train()
        for batch in loader:
            values = train_step(ddp_model, optimizer, task, to_device(batch, device), state, recipe, device, dist)
            state.train_seconds = time.monotonic() - started
            if state.nonfinite_in_row >= t.max_nonfinite:
                raise TrainingDiverged(
                    f"{state.nonfinite_in_row} optimizer steps in a row had non-finite loss or gradients "
                    f"(step {state.step}); stopping without saving these weights. The last good checkpoint is in "
                    f"{run_dir / 'checkpoints'}. Try a lower train.lr or train.grad_clip.")
            if all(math.isfinite(v) for v in values.values()):  # a skipped step would turn the window's mean to inf
                for k, v in values.items():
                    running[k] = running.get(k, 0.0) + v
                running_steps += 1
            bar.update(1)
            if running_steps and (state.step % t.log_every == 0 or state.step == t.max_steps):
                averaged = {k: v / running_steps for k, v in running.items()}
                averaged["stats/nonfinite_steps"] = state.nonfinite_total
                running, running_steps = {}, 0
                metrics.write(state.step, averaged | {"stats/train_seconds": state.train_seconds})
                bar.set_postfix(loss=f"{averaged['loss']:.3f}")
            time_up = t.time_limit_minutes > 0 and state.train_seconds >= 60 * t.time_limit_minutes
            if main and (state.step % t.val_every == 0 or state.step == t.max_steps or time_up):
                model.eval()
                metrics.write(state.step, task.validate(model))
                model.train()
            if main and t.sample_every and state.step % t.sample_every == 0:
                model.eval()
                task.save_samples(model, state.step, run_dir / "samples" / f"step_{state.step:08d}")
                model.train()
            if main and (state.step % t.checkpoint_every == 0 or state.step == t.max_steps or time_up):
                save_checkpoint(run_dir, model, optimizer, state, recipe, t.keep_checkpoints)
            if time_up:
                if main:
                    log(f"time limit of {t.time_limit_minutes} min reached at step {state.step}")
                break
        bar.close()
        checksums = gather_weight_checksums(model, dist)
        final = run_dir / "model"
        if main:
            model.eval()
            model.latent_stats = task.latent_stats(model)
            summary = task.validate(model)
            metrics.write(state.step, summary)
            metrics.close()
            task.save_samples(model, state.step, run_dir / "samples" / "final")
            ckpt.write_model_folder(final, model, extra={"recipe": recipe.to_dict(), "training": {
                "steps": state.step, "train_seconds": round(state.train_seconds, 1), "device": str(device),
                "processes": dist.world_size, "nonfinite_steps": state.nonfinite_total, "validation": summary,
                "rank_weight_checksums": checksums}})
            if len(set(checksums)) > 1:
                raise AudioVAEError(f"processes ended with different weights (checksums {checksums}); DDP is broken")
            log("validation: " + ", ".join(f"{k}={v:.4g}" for k, v in summary.items()))
            log(f"model written to {final} after {state.step} steps, {state.train_seconds / 60:.1f} min of training"
                f"{f', {state.nonfinite_total} non-finite steps skipped' if state.nonfinite_total else ''}")
        barrier(dist)
        return final
    finally:
        shutdown(dist)
