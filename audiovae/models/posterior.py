"""The guarded diagonal Gaussian posterior q(z|x), the KL terms with free bits, and the beta schedule."""
from __future__ import annotations

import math

import torch

LOGVAR_MIN = -30.0
LOGVAR_MAX = 20.0


class DiagonalGaussian:
    """q(z|x) = N(mean, exp(logvar)) with the log-variance clamped to [-30, 20] so exp() never overflows.

    mean, logvar: Tensor[B, *latent_shape]. All KL values are in nats against the N(0, I) prior.
    """

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        if mean.shape != logvar.shape:
            raise ValueError(f"mean {tuple(mean.shape)} and logvar {tuple(logvar.shape)} must have the same shape")
        self.mean = mean
        self.logvar = logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)

    @classmethod
    def from_params(cls, params: torch.Tensor, dim: int = 1) -> "DiagonalGaussian":
        """Split ``params`` into (mean, logvar) halves along ``dim``."""
        mean, logvar = params.chunk(2, dim=dim)
        return cls(mean, logvar)

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(self, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """A reparameterised draw ``mean + temperature * std * eps``; temperature 0 gives the mean."""
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + temperature * self.std * eps

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        """Elementwise KL(q || N(0, I)) in nats, Tensor[B, *latent_shape]."""
        return 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar)

    def kl_per_item(self) -> torch.Tensor:
        """KL summed over every latent dimension, Tensor[B], nats."""
        return self.kl().flatten(1).sum(1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x) summed over latent dimensions, Tensor[B], nats."""
        elem = -0.5 * ((z - self.mean).pow(2) / self.logvar.exp() + self.logvar + math.log(2 * math.pi))
        return elem.flatten(1).sum(1)


def kl_with_free_bits(kl: torch.Tensor, free_bits: float) -> torch.Tensor:
    """The KL term to optimise, Tensor[] in nats per item, with free bits per latent channel.

    kl: Tensor[B, C, ...] elementwise KL. Each channel's KL is averaged over the batch (and summed over any
    trailing time axis, then averaged per position) and floored at ``free_bits`` nats, as in Kingma et al. 2016 and
    MusicVAE: channels below the floor get no KL gradient, which keeps them from collapsing early.
    """
    per_channel = kl.flatten(2).mean(2).mean(0) if kl.dim() > 2 else kl.mean(0)  # [C], nats per position
    positions = kl[0, 0].numel() if kl.dim() > 2 else 1
    if free_bits > 0:
        per_channel = per_channel.clamp(min=free_bits)
    return per_channel.sum() * positions


def active_units(means: torch.Tensor, threshold: float = 1e-2) -> int:
    """How many latent channels carry information: Var_x[E_q[z_c]] > threshold (Burda et al. 2016).

    means: Tensor[N, C, ...] posterior means over a validation set (trailing axes are pooled as samples).
    """
    flat = means.transpose(0, 1).flatten(1) if means.dim() > 2 else means.T
    return int((flat.float().var(dim=1) > threshold).sum())


def beta_at(step: int, *, beta: float, warmup_steps: int) -> float:
    """Linear beta warm-up from 0 to ``beta`` over ``warmup_steps`` optimizer steps."""
    if warmup_steps <= 0:
        return beta
    return beta * min(1.0, step / warmup_steps)
