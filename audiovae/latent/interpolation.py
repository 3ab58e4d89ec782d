"""Interpolation between latents: lerp, slerp (guarded), and paths of N steps."""
from __future__ import annotations

import torch


def lerp(a: torch.Tensor, b: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
    """(1 - alpha) * a + alpha * b, elementwise; a and b broadcast."""
    return a + (b - a) * alpha


def slerp(a: torch.Tensor, b: torch.Tensor, alpha: float | torch.Tensor, *, dim: int = -1,
          eps: float = 1e-4) -> torch.Tensor:
    """Spherical interpolation along ``dim`` (for temporal latents [C, T], dim=0 slerps each frame's C-vector).

    Where a and b are near-parallel (angle below ~eps radians) or either is ~zero, slerp's 1/sin(angle) blows up,
    so those positions fall back to lerp.
    """
    a_norm = a / a.norm(dim=dim, keepdim=True).clamp_min(1e-12)
    b_norm = b / b.norm(dim=dim, keepdim=True).clamp_min(1e-12)
    cos = (a_norm * b_norm).sum(dim=dim, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    degenerate = (sin.abs() < eps) | (a.norm(dim=dim, keepdim=True) < 1e-8) | (b.norm(dim=dim, keepdim=True) < 1e-8)
    safe_sin = torch.where(degenerate, torch.ones_like(sin), sin)
    alpha = torch.as_tensor(alpha, dtype=a.dtype, device=a.device)
    spherical = (torch.sin((1 - alpha) * omega) * a + torch.sin(alpha * omega) * b) / safe_sin
    return torch.where(degenerate, lerp(a, b, alpha), spherical)


def interpolate(a: torch.Tensor, b: torch.Tensor, alpha: float, *, method: str = "slerp", dim: int = 0) -> torch.Tensor:
    """``method`` is "lerp" or "slerp"; ``dim`` is the latent-vector axis for slerp."""
    if method == "lerp":
        return lerp(a, b, alpha)
    if method == "slerp":
        return slerp(a, b, alpha, dim=dim)
    raise ValueError(f"unknown interpolation {method!r}; choose 'lerp' or 'slerp'")


def interpolation_path(a: torch.Tensor, b: torch.Tensor, steps: int, *, method: str = "slerp", dim: int = 0) -> torch.Tensor:
    """``steps`` latents from a (first) to b (last), evenly spaced in alpha: Tensor[steps, *a.shape]."""
    if steps < 2:
        raise ValueError(f"a path needs at least 2 steps, got {steps}")
    return torch.stack([interpolate(a, b, i / (steps - 1), method=method, dim=dim) for i in range(steps)])
