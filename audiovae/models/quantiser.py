"""Vector quantisation with EMA codebooks, k-means initialisation, dead-code restarts and residual stages.

A stage holds K code vectors of size D. ``nearest`` maps each input vector to the index of its nearest code
(squared Euclidean distance); ``lookup`` maps indices back to code vectors. In training, each stage moves its
codes toward the mean of the vectors assigned to them by an exponential moving average (van den Oord et al. 2017,
appendix; Razavi et al. 2019), so the codebook gets no gradient. A code whose moving count of assignments falls
below ``restart_threshold`` (uses per batch) is dead: it is restarted at a random input vector of the current
batch (Dhariwal et al. 2020, Jukebox). Before the first update the codebook is set by k-means on the vectors of the
first ``kmeans_batches`` training batches (the output passes the input through unchanged until then).

Residual quantisation (Zeghidour et al. 2021, SoundStream): stage j quantises what stages < j left over; the
quantised vector is the sum of the stages' codes. Codes: LongTensor[B, num_codebooks, T], one index per stage.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

KMEANS_ITERATIONS = 12
KMEANS_MAX_POINTS = 32768


def kmeans_plus_plus(x: torch.Tensor, k: int) -> torch.Tensor:
    """k-means++ seeds (Arthur and Vassilvitskii 2007): x Tensor[N, D] -> Tensor[k, D], each next seed a row drawn
    with probability proportional to its squared distance from the seeds so far. When fewer than k distinct rows
    exist, the rest are rows with a little noise. Uses the global torch RNG."""
    centres = [x[torch.randint(x.shape[0], (1,), device=x.device)][0]]
    nearest = (x - centres[0]).pow(2).sum(1)
    for _ in range(k - 1):
        if float(nearest.sum()) > 0:
            row = x[torch.multinomial(nearest, 1)[0]]
        else:
            row = x[torch.randint(x.shape[0], (1,), device=x.device)][0]
            row = row + 1e-3 * x.std().clamp_min(1e-6) * torch.randn_like(row)
        centres.append(row)
        nearest = torch.minimum(nearest, (x - row).pow(2).sum(1))
    return torch.stack(centres)


def kmeans(x: torch.Tensor, k: int, *, iterations: int = KMEANS_ITERATIONS) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on x: Tensor[N, D] -> (centres Tensor[k, D], counts Tensor[k] of the last assignment), from
    k-means++ seeds; an empty cluster keeps its centre. Uses the global torch RNG."""
    x = x.float()
    centres = kmeans_plus_plus(x, k)
    counts = torch.zeros(k, device=x.device)
    for _ in range(iterations):
        codes = torch.cdist(x, centres).argmin(1)
        counts = torch.bincount(codes, minlength=k).float()
        sums = torch.zeros_like(centres).index_add_(0, codes, x)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres, counts


class VectorQuantiser(nn.Module):
    """One codebook of ``size`` codes of ``dim`` values, updated by EMA (``decay``) with dead-code restarts.

    Buffers (saved with the weights): ``codebook`` Tensor[size, dim], ``cluster_size`` Tensor[size] (moving count of
    assignments per batch) and ``embed_sum`` Tensor[size, dim] (moving sum of assigned vectors).
    """

    def __init__(self, dim: int, size: int, *, decay: float = 0.99, restart_threshold: float = 0.1,
                 eps: float = 1e-5):
        super().__init__()
        self.dim, self.size, self.decay, self.restart_threshold, self.eps = dim, size, decay, restart_threshold, eps
        codebook = torch.randn(size, dim)
        self.register_buffer("codebook", codebook)
        self.register_buffer("cluster_size", torch.ones(size))
        self.register_buffer("embed_sum", codebook.clone())

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """x: Tensor[N, dim] -> the index of each row's nearest code, LongTensor[N]."""
        x = x.float()
        distance = (x.pow(2).sum(1, keepdim=True) - 2 * x @ self.codebook.T + self.codebook.pow(2).sum(1)[None])
        return distance.argmin(1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: LongTensor[...] -> code vectors Tensor[..., dim]."""
        return F.embedding(codes, self.codebook)

    @torch.no_grad()
    def set_codebook(self, centres: torch.Tensor, counts: torch.Tensor) -> None:
        """Start the moving averages at ``centres`` Tensor[size, dim] used ``counts`` Tensor[size] times per batch."""
        self.codebook.copy_(centres)
        self.cluster_size.copy_(counts)
        self.embed_sum.copy_(centres * counts[:, None])

    @torch.no_grad()
    def update(self, x: torch.Tensor, codes: torch.Tensor) -> int:
        """One EMA step toward the batch's assignments (x: Tensor[N, dim], codes: LongTensor[N]), then restart the
        dead codes at random rows of x. Returns how many codes were restarted."""
        x = x.float()
        counts = torch.bincount(codes, minlength=self.size).float()
        sums = torch.zeros_like(self.embed_sum).index_add_(0, codes, x)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.size * self.eps) * total
        self.codebook.copy_(self.embed_sum / smoothed[:, None])
        dead = (self.cluster_size < self.restart_threshold).nonzero().flatten()
        if len(dead):
            rows = x[torch.randint(x.shape[0], (len(dead),), device=x.device)]
            self.codebook[dead] = rows
            self.cluster_size[dead] = 1.0  # a grace period: it takes log(threshold) / log(decay) unused steps to die
            self.embed_sum[dead] = rows
        return int(len(dead))


class ResidualQuantiser(nn.Module):
    """``num_codebooks`` :class:`VectorQuantiser` stages in sequence over vectors of ``dim`` values (1 = plain VQ).

    forward(z_e Tensor[B, dim, T]) -> (z_q Tensor[B, dim, T], codes LongTensor[B, num_codebooks, T], commitment
    Tensor[] = mean squared distance of each stage's input to its code, summed over stages). In training z_q is
    the straight-through estimate z_e + (z_q - z_e).detach(), and the codebooks move (EMA, restarts, the k-means
    start); in eval mode nothing changes and z_q is exactly :meth:`decode_codes` of the codes.
    """

    def __init__(self, dim: int, codebook_size: int, num_codebooks: int = 1, *, decay: float = 0.99,
                 kmeans_batches: int = 4, restart_threshold: float = 0.1):
        super().__init__()
        if num_codebooks < 1 or codebook_size < 2:
            raise ValueError(f"need num_codebooks >= 1 and codebook_size >= 2, got {num_codebooks}, {codebook_size}")
        self.dim, self.codebook_size, self.num_codebooks = dim, codebook_size, num_codebooks
        self.kmeans_batches = kmeans_batches
        self.stages = nn.ModuleList(VectorQuantiser(dim, codebook_size, decay=decay,
                                                    restart_threshold=restart_threshold)
                                    for _ in range(num_codebooks))
        self.register_buffer("initialised", torch.tensor(kmeans_batches <= 0))
        self._collected: list[torch.Tensor] = []
        self.restarts = 0  # codes restarted by the last training step, summed over stages

    def encode_codes(self, z_e: torch.Tensor) -> torch.Tensor:
        """z_e: Tensor[B, dim, T] -> codes LongTensor[B, num_codebooks, T] (greedy, stage by stage)."""
        residual = z_e.float().transpose(1, 2).reshape(-1, self.dim)
        codes = []
        for stage in self.stages:
            index = stage.nearest(residual)
            residual = residual - stage.lookup(index)
            codes.append(index)
        return torch.stack(codes, 1).reshape(z_e.shape[0], z_e.shape[2], -1).transpose(1, 2)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: LongTensor[B, num_codebooks, T] -> z_q Tensor[B, dim, T], the sum of the stages' code vectors."""
        z_q = sum(stage.lookup(codes[:, j]) for j, stage in enumerate(self.stages))
        return z_q.transpose(1, 2)

    @torch.no_grad()
    def _kmeans_start(self) -> None:
        """k-means on the collected first batches, stage by stage on what the earlier stages leave over."""
        x = torch.cat(self._collected)
        self._collected = []
        if x.shape[0] > KMEANS_MAX_POINTS:
            x = x[torch.randperm(x.shape[0], device=x.device)[:KMEANS_MAX_POINTS]]
        for stage in self.stages:
            centres, counts = kmeans(x, self.codebook_size)
            stage.set_codebook(centres, counts / self.kmeans_batches)
            x = x - stage.lookup(stage.nearest(x))
        self.initialised.fill_(True)

    def forward(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        flat = z_e.float().transpose(1, 2).reshape(-1, self.dim)
        if self.training and not bool(self.initialised):
            self._collected.append(flat.detach())
            if len(self._collected) >= self.kmeans_batches:
                self._kmeans_start()
            else:  # still collecting the k-means sample: the decoder sees the encoder's output itself
                return z_e, self.encode_codes(z_e), z_e.new_zeros(())
        residual, codes, parts, commitment = flat, [], [], flat.new_zeros(())
        self.restarts = 0
        for stage in self.stages:
            index = stage.nearest(residual.detach())
            vector = stage.lookup(index)
            commitment = commitment + F.mse_loss(residual, vector.detach())
            if self.training:
                self.restarts += stage.update(residual.detach(), index)
            residual = residual - vector.detach()
            codes.append(index)
            parts.append(vector)
        codes = torch.stack(codes, 1).reshape(z_e.shape[0], z_e.shape[2], -1).transpose(1, 2)
        if not self.training:
            return self.decode_codes(codes).to(z_e.dtype), codes, commitment
        z_q = sum(parts).reshape(z_e.shape[0], z_e.shape[2], self.dim).transpose(1, 2)
        return z_e + (z_q.to(z_e.dtype) - z_e).detach(), codes, commitment


def code_statistics(codes: torch.Tensor, codebook_size: int) -> dict[str, float]:
    """How a set of codes LongTensor[num_codebooks, N] uses its codebooks, averaged over the codebooks: "usage" (share
    of the K codes used at least once), "perplexity" (exp of the entropy of the code histogram, in codes; K when
    every code is equally frequent), "perplexity_ratio" (perplexity / K) and "dead" (share never used); and the
    weakest codebook's "worst_perplexity_ratio" and "worst_dead", which an average over codebooks hides."""
    usage, perplexity = [], []
    for row in codes:
        p = torch.bincount(row.flatten(), minlength=codebook_size).float()
        p = p / p.sum().clamp_min(1)
        usage.append(float((p > 0).float().mean()))
        perplexity.append(float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum())))
    used, ppl = sum(usage) / len(usage), sum(perplexity) / len(perplexity)
    return {"usage": used, "perplexity": ppl, "perplexity_ratio": ppl / codebook_size, "dead": 1.0 - used,
            "worst_perplexity_ratio": min(perplexity) / codebook_size, "worst_dead": 1.0 - min(usage)}
