"""Anomaly scores: how badly a trained model explains an input, as its negative ELBO per input frame.

score(x) = ( -log p(x | z = mode of q(z|x)) + KL(q(z|x) || p(z)) ) / frames, in nats per frame,
with the reconstruction term from the model's own likelihood (``model.reconstruction_nll``: Laplace per log-mel bin
for mel VAEs, Bernoulli per roll cell for the MIDI CVAE) and frames the input's length (mel frames, or grid steps
of a roll segment). Taking z at the posterior mode rather than sampling makes the score deterministic. Higher
means stranger: scores rank inputs of one model against each other; they do not compare across models.
"""
from __future__ import annotations

import inspect
import os

import numpy as np
import torch

from ..errors import AudioReadError, ConfigError, MidiReadError
from .sampling import model_device


def frames_per_item(model, x: torch.Tensor) -> int:
    """The length of one input of ``x`` in frames, the unit of "per frame": ``model.frames_of(x)`` when the model
    defines it (mel VAE: x.shape[-1]); else the steps of a fixed-size segment (``model.segment_shape[1]``,
    the MIDI CVAE's [2, steps, pitches])."""
    if callable(getattr(model, "frames_of", None)):
        return int(model.frames_of(x))
    shape = getattr(model, "segment_shape", None)
    if shape is not None:
        return int(shape[1])
    raise ConfigError(f"{type(model).__name__} defines neither frames_of(x) nor segment_shape; anomaly scores "
                      "need to know the length of an input")


def _decode_takes_frames(model) -> bool:
    return "frames" in inspect.signature(model.decode).parameters


@torch.no_grad()
def anomaly_scores(model, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
    """Negative ELBO per input frame: Tensor[B], nats per frame (see the module docstring).

    x: a batch of model inputs (log-mel Tensor[B, n_mels, frames], or rolls Tensor[B, 2, S, P]); cond: the genre
    condition for conditional models (None = the "no genre" condition). The model should be in eval mode.
    """
    x = x.to(model_device(model))
    posterior = model.encode(x, cond)
    frames = frames_per_item(model, x)
    extra = {"frames": frames} if _decode_takes_frames(model) else {}
    x_hat = model.decode(posterior.mode(), cond, **extra)
    kl = model.latent_kl(posterior, cond) if hasattr(model, "latent_kl") else posterior.kl()
    nelbo = model.reconstruction_nll(x, x_hat).float() + kl.flatten(1).sum(1).float()
    return nelbo / frames


def _input_kind(model) -> str:
    if getattr(model, "frontend", None):
        return "audio"
    if getattr(model, "roll", None) is not None:
        return "midi"
    raise ConfigError(f"{type(model).__name__} reads neither audio (no mel front end) nor MIDI (no roll grid)")


def _file_score(model, path, kind: str, max_seconds: float | None) -> float:
    device = model_device(model)
    if kind == "audio":
        from ..inference import clip_to_mel

        return float(anomaly_scores(model, clip_to_mel(model, path, max_seconds=max_seconds)[None])[0])
    from ..midi.generate import read_roll, roll_to_segments

    roll, _ = read_roll(model, path)
    segments = roll_to_segments(roll, model.roll.segment_steps)
    segments = segments[segments.any(axis=(1, 2, 3))]  # the silent padding of a short file says nothing
    if len(segments) == 0:
        raise MidiReadError(path, "no notes on the model's grid")
    x = torch.from_numpy(segments.astype(np.float32)).to(device)
    return float(torch.cat([anomaly_scores(model, chunk) for chunk in x.split(256)]).mean())


def score_files(model, paths, *, max_seconds: float | None = None
                ) -> list[tuple[str, float | None, str | None]]:
    """Score audio files (mel models) or MIDI files (MIDI models): [(path, score, error)], in the given order.

    score: nats per input frame (a MIDI file's score is the mean over its non-empty segments), None when the
    file could not be used; error: why (unreadable, silent, too short or too long, no notes), else None.
    Bad files are reported, never raised. max_seconds: refuse longer audio files instead of encoding them.
    """
    kind = _input_kind(model)
    out = []
    for path in paths:
        path = os.fspath(path)
        try:
            out.append((path, _file_score(model, path, kind, max_seconds), None))
        except (AudioReadError, MidiReadError) as exc:
            out.append((path, None, exc.reason))
    return out
