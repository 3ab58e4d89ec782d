"""One genre-conditioned autoregressive prior over a latent sequence, shared by every model family.

p(z | genre) = prod_t N(z_t; mean_t, diag(exp(logvar_t))), (mean_t, logvar_t) = out(GRU(inp([z_<t, genre]))).
z: Tensor[B, T, dim] in time order: the MIDI CVAE's latent chunks (T fixed, one per position of a segment), or a
mel VAE's latent frames (any T: the GRU's state carries the context, so sampling runs past the training length).
Equivalently z = f(eps) with eps ~ N(0, I): :meth:`TemporalPrior.sample` runs f (T sequential GRU steps),
:meth:`TemporalPrior.noise` its inverse (one parallel pass). Temperature scales eps. Classifier-free guidance
pushes the means away from the "no genre" prior's: mean + w * (mean - mean | no genre), both given the same z_<t.
The output layer starts at zero, so an untrained prior is exactly N(0, I).
"""
from __future__ import annotations

import math

import torch
from torch import nn

LOGVAR_RANGE = (-8.0, 4.0)


class TemporalPrior(nn.Module):
    """Args: dim (values per step of z), cond_dim (genre embedding size, 0 = unconditional), hidden (GRU size),
    positions (None for sequences of any length; an int adds a learned per-position input for fixed-length
    sequences of that many steps)."""

    def __init__(self, dim: int, cond_dim: int, hidden: int, positions: int | None = None):
        super().__init__()
        self.dim, self.positions = dim, positions
        self.start = nn.Parameter(torch.zeros(dim))
        self.inp = nn.Linear(dim + cond_dim, hidden)
        self.position = nn.Parameter(torch.zeros(positions, hidden)) if positions else None
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 2 * dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def _inputs(self, previous: torch.Tensor, c: torch.Tensor | None, first: int) -> torch.Tensor:
        """previous: Tensor[B, L, dim] (z_{t-1} for t = first .. first + L - 1) -> GRU inputs Tensor[B, L, hidden]."""
        if c is not None:
            previous = torch.cat([previous, c[:, None].expand(-1, previous.shape[1], -1)], -1)
        h = self.inp(previous.to(self.inp.weight.dtype))
        if self.position is not None:
            if first + previous.shape[1] > self.positions:
                raise ValueError(f"this prior covers {self.positions} positions; got {first + previous.shape[1]}")
            h = h + self.position[first:first + previous.shape[1]]
        return h

    def _split(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.out(h).float().chunk(2, -1)
        return mean, logvar.clamp(*LOGVAR_RANGE)

    def _shifted(self, z: torch.Tensor) -> torch.Tensor:
        """[start, z_0, ..., z_{T-2}]: what each step sees as its predecessor."""
        return torch.cat([self.start.expand(z.shape[0], 1, -1).to(z.dtype), z[:, :-1]], 1)

    def params(self, z: torch.Tensor, c: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """z: Tensor[B, T, dim] -> (mean, logvar) Tensor[B, T, dim] of each z_t given z_<t (teacher forced)."""
        h, _ = self.gru(self._inputs(self._shifted(z), c, 0))
        return self._split(h)

    def log_prob(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """log p(z_t | z_<t, genre) per step, summed over dim: Tensor[B, T], nats."""
        mean, logvar = self.params(z, c)
        return -0.5 * (((z.float() - mean) ** 2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(-1)

    def noise(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """The inverse of :meth:`sample`: z Tensor[B, T, dim] -> eps."""
        mean, logvar = self.params(z, c)
        return (z.float() - mean) * torch.exp(-0.5 * logvar)

    def kl(self, mean_q: torch.Tensor, logvar_q: torch.Tensor, z: torch.Tensor, c: torch.Tensor | None
           ) -> torch.Tensor:
        """KL(q(z_t) || p(z_t | z_<t)) per element, Tensor[B, T, dim], nats, for a diagonal Gaussian q with
        mean_q, logvar_q: Tensor[B, T, dim], the prior's context taken from z (a sample of q, or its mean)."""
        mean, logvar = self.params(z, c)
        return 0.5 * (logvar - logvar_q + (logvar_q.exp() + (mean_q - mean) ** 2) / logvar.exp() - 1.0)

    def sample(self, eps: torch.Tensor, c: torch.Tensor | None, *, guide: torch.Tensor | None = None,
               guidance: float = 0.0, prefix: torch.Tensor | None = None) -> torch.Tensor:
        """eps: Tensor[B, T, dim] -> z: Tensor[B, T, dim], z_t = mean_t + exp(logvar_t / 2) * eps_t.

        guide: the "no genre" condition; with ``guidance`` w > 0 the means become mean_t + w * (mean_t - mean_t |
        no genre). prefix: Tensor[B, P, dim] latents to continue from (the returned z follows them).
        """
        previous = self.start.expand(eps.shape[0], 1, -1)
        state = guide_state = None
        first = 0
        if prefix is not None and prefix.shape[1]:
            inputs = torch.cat([previous, prefix.to(previous.dtype)], 1)
            _, state = self.gru(self._inputs(inputs[:, :-1], c, 0))
            if guide is not None and guidance:
                _, guide_state = self.gru(self._inputs(inputs[:, :-1], guide, 0))
            previous, first = inputs[:, -1:], prefix.shape[1]
        out = []
        for t in range(eps.shape[1]):
            h, state = self.gru(self._inputs(previous, c, first + t), state)
            mean, logvar = self._split(h)
            if guide is not None and guidance:
                h_free, guide_state = self.gru(self._inputs(previous, guide, first + t), guide_state)
                mean = mean + guidance * (mean - self._split(h_free)[0])
            previous = mean + torch.exp(0.5 * logvar) * eps[:, t:t + 1].float()
            out.append(previous)
        return torch.cat(out, 1)
