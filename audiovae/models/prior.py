"""One genre-conditioned autoregressive prior over a latent sequence, shared by every model family.

p(z | genre) = prod_t N(z_t; mean_t, diag(exp(logvar_t))), (mean_t, logvar_t) = out(GRU(inp([z_<t, genre]))).
z: Tensor[B, T, dim] in time order: the MIDI CVAE's latent chunks (T fixed, one per position of a segment), or a
mel VAE's latent frames (any T: the GRU's state carries the context, so sampling runs past the training length).
Equivalently z = f(eps) with eps ~ N(0, I): :meth:`TemporalPrior.sample` runs f (T sequential GRU steps),
:meth:`TemporalPrior.noise` its inverse (one parallel pass). Temperature scales eps. Classifier-free guidance
pushes the means away from the "no genre" prior's: mean + w * (mean - mean | no genre), both given the same z_<t.
The output layer starts at zero, so an untrained prior is exactly N(0, I).

:class:`CategoricalPrior` is the same idea over discrete codes (the VQ-VAE's): a GRU over the frames, a categorical
distribution per code, autoregressive over the residual codebooks within a frame, with temperature, top-k and the
same guidance on logits.
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


class CategoricalPrior(nn.Module):
    """A genre-conditioned autoregressive prior over discrete codes: the VQ-VAE's counterpart of
    :class:`TemporalPrior`, over time and, for residual codes, over the codebooks of each frame.

    p(codes | genre) = prod_t prod_j p(k_{t,j} | k_{<t}, k_{t,<j}, genre). codes: LongTensor[B, T, n] (T frames, n
    codebooks of ``size`` codes). A GRU runs over the frames; its input at frame t is the sum of the code embeddings
    of frame t - 1 (a learned start vector at t = 0) and the genre embedding, so the prior runs for any length.
    Codebook j of frame t reads the GRU state plus embeddings of the codes k_{t,<j} already drawn for that frame.
    The output layers start at zero, so an untrained prior is uniform. Sampling takes one uniform number per code,
    a temperature, top-k and classifier-free guidance on the logits: l + w * (l - l | no genre). ``dropout``: the
    training-time dropout rate of the code embeddings and of the heads' inputs (a regulariser; off in eval mode).
    """

    def __init__(self, num_codebooks: int, size: int, cond_dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.num_codebooks, self.size = num_codebooks, size
        self.dropout = nn.Dropout(dropout)
        self.start = nn.Parameter(torch.zeros(hidden))
        self.frame_embed = nn.ModuleList(nn.Embedding(size, hidden) for _ in range(num_codebooks))
        self.depth_embed = nn.ModuleList(nn.Embedding(size, hidden) for _ in range(num_codebooks - 1))
        self.inp = nn.Linear(hidden + cond_dim, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.heads = nn.ModuleList(nn.Linear(hidden, size) for _ in range(num_codebooks))
        for head in self.heads:
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def _frame_inputs(self, previous: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """previous: the embedded frames before each step Tensor[B, L, hidden] -> GRU inputs Tensor[B, L, hidden]."""
        if c is not None:
            previous = torch.cat([previous, c[:, None].expand(-1, previous.shape[1], -1)], -1)
        return self.inp(previous)

    def _embed_frames(self, codes: torch.Tensor) -> torch.Tensor:
        """codes LongTensor[B, L, n] -> the sum of each frame's code embeddings Tensor[B, L, hidden]."""
        return self.dropout(sum(table(codes[..., j]) for j, table in enumerate(self.frame_embed)))

    def _head(self, h: torch.Tensor, codes: torch.Tensor, j: int) -> torch.Tensor:
        """Logits Tensor[..., size] of codebook j from the GRU state h Tensor[..., hidden] and the frame's codes
        LongTensor[..., >= j] of the codebooks before j."""
        for i in range(j):
            h = h + self.depth_embed[i](codes[..., i])
        return self.heads[j](self.dropout(torch.nn.functional.silu(h))).float()

    def logits(self, codes: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """codes: LongTensor[B, T, n] -> logits Tensor[B, T, n, size] of every code given what precedes it
        (teacher forced)."""
        frames = self._embed_frames(codes)
        shifted = torch.cat([self.start.expand(codes.shape[0], 1, -1), frames[:, :-1]], 1)
        h, _ = self.gru(self._frame_inputs(shifted, c))
        return torch.stack([self._head(h, codes, j) for j in range(self.num_codebooks)], 2)

    def log_prob(self, codes: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """log p(codes of frame t | earlier codes, genre) per frame, summed over codebooks: Tensor[B, T], nats."""
        log_p = torch.log_softmax(self.logits(codes, c), -1)
        return log_p.gather(-1, codes[..., None])[..., 0].sum(-1)

    def sample(self, uniforms: torch.Tensor, c: torch.Tensor | None, *, temperature: torch.Tensor | float = 1.0,
               top_k: int = 0, guide: torch.Tensor | None = None, guidance: float = 0.0,
               prefix: torch.Tensor | None = None) -> torch.Tensor:
        """uniforms: Tensor[B, T, n] in [0, 1) -> codes LongTensor[B, T, n] by inverse-CDF sampling of each code.

        temperature: Tensor[B] or a float; the logits are divided by it (0 takes the most likely code). top_k > 0
        keeps the k most likely codes. guide: the "no genre" condition for classifier-free guidance of weight
        ``guidance``. prefix: LongTensor[B, P, n] codes to continue (the returned codes follow them).
        """
        batch = uniforms.shape[0]
        temperature = torch.as_tensor(temperature, dtype=torch.float32, device=uniforms.device).reshape(-1, 1)
        guided = guide is not None and guidance != 0
        previous = self.start.expand(batch, 1, -1)
        state = guide_state = None
        if prefix is not None and prefix.shape[1]:
            context = torch.cat([previous, self._embed_frames(prefix)], 1)
            _, state = self.gru(self._frame_inputs(context[:, :-1], c))
            if guided:
                _, guide_state = self.gru(self._frame_inputs(context[:, :-1], guide))
            previous = context[:, -1:]
        out = []
        for t in range(uniforms.shape[1]):
            h, state = self.gru(self._frame_inputs(previous, c), state)
            if guided:
                h_free, guide_state = self.gru(self._frame_inputs(previous, guide), guide_state)
            frame = torch.zeros(batch, self.num_codebooks, dtype=torch.long, device=uniforms.device)
            for j in range(self.num_codebooks):
                logits = self._head(h[:, 0], frame, j)
                if guided:
                    logits = logits + guidance * (logits - self._head(h_free[:, 0], frame, j))
                frame[:, j] = pick_codes(logits, uniforms[:, t, j], temperature, top_k)
            out.append(frame)
            previous = self._embed_frames(frame[:, None])
        return torch.stack(out, 1)


def pick_codes(logits: torch.Tensor, uniforms: torch.Tensor, temperature: torch.Tensor, top_k: int = 0
               ) -> torch.Tensor:
    """Inverse-CDF draw of one code per row: logits Tensor[B, K], uniforms Tensor[B] in [0, 1), temperature
    Tensor[B, 1] (rows at 0 take the argmax) -> LongTensor[B]. top_k > 0 keeps only the k largest logits."""
    if top_k and top_k < logits.shape[-1]:
        threshold = logits.topk(top_k, -1).values[:, -1:]
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    cold = temperature[:, 0] <= 0
    probs = torch.softmax(logits / temperature.clamp_min(1e-6), -1)
    cdf = probs.cumsum(-1)
    value = uniforms.float().clamp(1e-7, 1 - 1e-7) * cdf[:, -1]  # > 0: never a code of probability 0
    drawn = torch.searchsorted(cdf, value[:, None].contiguous())[:, 0]
    drawn = drawn.clamp_max(logits.shape[-1] - 1)
    return torch.where(cold, logits.argmax(-1), drawn)
