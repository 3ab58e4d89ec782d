"""Anomaly scores: how badly a trained model explains an input, as its negative ELBO per input frame.

score(x) = ( -log p(x | z = mode of q(z|x)) + KL(q(z|x) || p(z)) ) / frames, in nats per frame,
with the reconstruction term from the model's own likelihood (``model.reconstruction_nll``: Laplace per log-mel bin
for mel VAEs, Bernoulli per roll cell for the MIDI CVAE), the KL against the model's prior (``model.latent_kl``)
and frames the input's length (``model.frames_of``: mel frames, or grid steps of a roll segment). Taking z at the
posterior mode rather than sampling makes the score deterministic. Higher means stranger: scores rank inputs of
one model against each other; they do not compare across models. Files are read by :mod:`audiovae.scoring`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ..device import model_device
from ..errors import ParameterError


@torch.no_grad()
def anomaly_map(model, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
    """Negative ELBO per latent frame: Tensor[B, T'] nats, T' = the latent's frames (``model.to_sequence``; about
    21.5 per second for the mel VAE, one per grid step for the MIDI CVAE).

    Each latent frame gets the reconstruction NLL of the input frames it covers (``model.frame_nll`` at the
    posterior mode; the last frame also covers any remainder) plus its KL against the model's prior (given the
    earlier frames, for a learned prior). The map sums to the negative ELBO of the input.
    """
    x = x.to(model_device(model))
    posterior = model.encode(x, cond)
    frames = model.frames_of(x)
    nll = model.frame_nll(x, model.decode(posterior.mode(), cond, frames=frames))  # [B, frames]
    kl = model.to_sequence(model.latent_kl(posterior, cond)).float().sum(-1)  # [B, T']
    per = -(-frames // kl.shape[1])  # input frames per latent frame, rounded up
    nll = torch.nn.functional.pad(nll.float(), (0, per * kl.shape[1] - frames)).reshape(len(nll), kl.shape[1], per)
    return nll.sum(-1) + kl


@torch.no_grad()
def anomaly_scores(model, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
    """Negative ELBO per input frame: Tensor[B], nats per frame (see the module docstring).

    x: a batch of model inputs (log-mel Tensor[B, n_mels, frames], or rolls Tensor[B, 2, S, P]); cond: the genre
    condition for conditional models (None = the "no genre" condition). The model should be in eval mode.
    """
    return anomaly_map(model, x, cond).sum(1) / model.frames_of(x)


# --- defects inside a recording: frame scores, calibration, flagged spans --------------------------------------
# On held-out real recordings with damaged copies (benchmarks/anomaly.py), the KL of each latent frame against the
# model's learned prior separates defects from clean music far better than the reconstruction term, which mostly
# follows how busy the music is (see the README's anomaly section for the figures). Frame scores are therefore
# the KL alone, smoothed over a window, and expressed in standard deviations of the model's own held-out windows.
WINDOW_SECONDS = 1.0
DEFAULT_THRESHOLD = 3.0


@torch.no_grad()
def frame_kl(model, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
    """KL(q(z_t | x) || p(z_t | z_<t, cond)) per latent frame: Tensor[B, T'] nats (``model.to_sequence`` frames)."""
    x = x.to(model_device(model))
    return model.to_sequence(model.latent_kl(model.encode(x, cond), cond)).float().sum(-1)


def moving_average(values: torch.Tensor, width: int) -> torch.Tensor:
    """Centred moving average over the last axis, same length (the window shrinks at the edges)."""
    if width <= 1 or values.shape[-1] <= 1:
        return values
    width = min(width, values.shape[-1])
    kernel = torch.ones(1, 1, width, dtype=values.dtype, device=values.device)
    flat = values.reshape(-1, 1, values.shape[-1])
    pad = (width // 2, width - 1 - width // 2)
    sums = torch.nn.functional.conv1d(torch.nn.functional.pad(flat, pad), kernel)
    counts = torch.nn.functional.conv1d(torch.nn.functional.pad(torch.ones_like(flat), pad), kernel)
    return (sums / counts).reshape(values.shape)


def latent_rate(model) -> float:
    """Latent frames per second of an audio model: its front end's frame rate over its time_downsample."""
    return model.frontend.frames_per_second / model.time_downsample


def window_frames(model, seconds: float = WINDOW_SECONDS) -> int:
    """Latent frames in ``seconds`` for an audio model, else 1 (one frame per grid step of a MIDI model)."""
    if getattr(model, "frontend", None) is None:
        return 1
    return max(1, round(seconds * latent_rate(model)))


@dataclass(frozen=True)
class Calibration:
    """What a typical held-out window scores: the windowed frame KL has mean ``mean`` and standard deviation
    ``std`` (nats per latent frame) over ``windows`` window positions of ``recordings`` held-out recordings.
    ``threshold``: the calibrated score above which a span is flagged."""

    mean: float
    std: float
    window: int
    windows: int
    recordings: int
    threshold: float = DEFAULT_THRESHOLD

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Calibration":
        return cls(**values)


@torch.no_grad()
def calibrate(model, inputs, *, window_seconds: float = WINDOW_SECONDS) -> Calibration:
    """Calibration from held-out inputs: an iterable of (x Tensor[1, ...], cond or None), e.g. whole recordings.
    ``window_seconds``: how long a stretch the map averages over (shorter finds short defects more precisely and
    flags more clean music)."""
    if window_seconds <= 0:
        raise ParameterError(f"the window must be positive, got {window_seconds} s")
    width = window_frames(model, window_seconds)
    kls = [moving_average(frame_kl(model, x, cond), width).flatten().cpu() for x, cond in inputs]
    if not kls:
        raise ParameterError("calibration needs at least one held-out input")
    kl = torch.cat(kls)
    return Calibration(mean=float(kl.mean()), std=float(kl.std().clamp_min(1e-6)), window=width,
                       windows=int(kl.numel()), recordings=len(kls))


@torch.no_grad()
def calibrated_map(model, x: torch.Tensor, calibration: Calibration, cond: torch.Tensor | None = None
                   ) -> torch.Tensor:
    """How far each window's KL is above the model's typical held-out window, in standard deviations:
    Tensor[B, T']."""
    return (moving_average(frame_kl(model, x, cond), calibration.window) - calibration.mean) / calibration.std


def flagged_spans(scores: torch.Tensor, threshold: float, frames_per_second: float, *, merge_gap: float = 0.25
                  ) -> list[tuple[float, float, float]]:
    """Runs of a calibrated map Tensor[T'] above ``threshold`` as (start s, end s, peak score), in time order;
    runs less than ``merge_gap`` seconds apart are one span (a defect whose score dips for a frame is one defect)."""
    above = (scores > threshold).tolist()
    runs, start = [], None
    for t, flag in enumerate(above + [False]):
        if flag and start is None:
            start = t
        elif not flag and start is not None:
            runs.append([start, t])
            start = None
    merged = []
    for run in runs:
        if merged and (run[0] - merged[-1][1]) / frames_per_second < merge_gap:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    return [(a / frames_per_second, b / frames_per_second, float(scores[a:b].max())) for a, b in merged]
