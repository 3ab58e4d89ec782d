"""Framewise alignment of two temporal latents of unequal length, and interpolation between them.

Temporal latents are Tensor[..., C, T]: C channels per latent frame, T frames (a mel VAE's latent frame covers
``time_downsample`` mel frames). Leading axes (e.g. a batch) must match; only T may differ.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ..errors import ParameterError
from .interpolation import interpolate

ALIGN_MODES = ("crop", "loop", "stretch")
METHODS = ("slerp", "lerp")


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.dim() < 2 or b.dim() < 2:
        raise ParameterError(f"temporal latents must be [C, T] (or [..., C, T]), got {tuple(a.shape)} and "
                             f"{tuple(b.shape)}")
    if a.shape[:-1] != b.shape[:-1]:
        raise ParameterError(f"latents {tuple(a.shape)} and {tuple(b.shape)} may differ only in length (last axis)")
    if a.shape[-1] < 1 or b.shape[-1] < 1:
        raise ParameterError("latents need at least one frame")


def _loop(x: torch.Tensor, frames: int) -> torch.Tensor:
    return x[..., torch.arange(frames, device=x.device) % x.shape[-1]]


def _stretch(x: torch.Tensor, frames: int) -> torch.Tensor:
    """Linear interpolation over time onto ``frames`` frames; the first and last frames stay in place."""
    if x.shape[-1] == 1:
        return x.expand(*x.shape[:-1], frames).clone()
    flat = x.reshape(1, -1, x.shape[-1])
    out = F.interpolate(flat.float(), size=frames, mode="linear", align_corners=True).to(x.dtype)
    return out.reshape(*x.shape[:-1], frames)


def align_latents(a: torch.Tensor, b: torch.Tensor, *, mode: str = "crop") -> tuple[torch.Tensor, torch.Tensor]:
    """Bring a: Tensor[..., C, Ta] and b: Tensor[..., C, Tb] to one length T; returns (a', b') Tensor[..., C, T].

    mode: "crop" cuts both to the shorter (T = min); "loop" repeats the shorter from its start until it is as long
    as the longer (T = max); "stretch" resamples the shorter over time by linear interpolation to the longer
    (T = max; its first and last frames are kept, its tempo changes). The longer one is returned unchanged.
    """
    if mode not in ALIGN_MODES:
        raise ParameterError(f"unknown alignment {mode!r}; choose one of {', '.join(ALIGN_MODES)}")
    _check_pair(a, b)
    ta, tb = a.shape[-1], b.shape[-1]
    if ta == tb:
        return a, b
    if mode == "crop":
        frames = min(ta, tb)
        return a[..., :frames], b[..., :frames]
    grow = _loop if mode == "loop" else _stretch
    return (grow(a, tb), b) if ta < tb else (a, grow(b, ta))


def interpolate_temporal(a: torch.Tensor, b: torch.Tensor, alpha: float, *, method: str = "slerp",
                         align: str = "crop") -> torch.Tensor:
    """Align a: Tensor[..., C, Ta] and b: Tensor[..., C, Tb] (see :func:`align_latents`), then interpolate each
    frame's C-vector: Tensor[..., C, T]. alpha 0 gives a, 1 gives b; method "slerp" (guarded) or "lerp"."""
    if method not in METHODS:
        raise ParameterError(f"unknown interpolation {method!r}; choose one of {', '.join(METHODS)}")
    a, b = align_latents(a, b, mode=align)
    return interpolate(a, b, alpha, method=method, dim=-2)
