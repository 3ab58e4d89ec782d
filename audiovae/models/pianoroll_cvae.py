"""PianoRollCVAE: a conditional VAE over piano-roll segments.

A segment is a roll Tensor[B, 2, S, P] in {0, 1} (channel 0 onsets, channel 1 sustain; S grid steps, P pitches;
see :mod:`audiovae.midi.pianoroll`). Both networks read it as a 1-D signal over time whose channels are the
2 * P (channel, pitch) rows, so every layer is a 1-D convolution over time: that keeps a batch of a thousand
4-bar segments well under a second on a CPU. The decoder is non-autoregressive (all steps and pitches at once)
and gives independent Bernoulli logits for every onset and sustain cell.

With ``velocity=True`` the model also carries dynamics: a third channel holds each onset's velocity / 127 (0
elsewhere). The encoder reads it, so z holds a segment's dynamics, and the decoder's third output channel is the
logit of each cell's velocity / 127, scored as a Gaussian (std VELOCITY_STD) at the onset cells of the input.
A 2-channel input to such a model gets DEFAULT_VELOCITY at every onset.

q(z | roll, genre) = N(mean, diag(exp(logvar))), z: Tensor[B, latent_dim]; p(roll | z, genre) Bernoulli. The
prior is N(0, I) over a noise vector eps: Tensor[B, latent_dim]. With ``prior="standard"`` z = eps. With
``prior="autoregressive"`` z = f(eps, genre), an affine autoregressive map over the latent positions (z_t =
mean_t(z_<t, genre) + std_t(z_<t, genre) * eps_t, see :class:`~audiovae.models.prior.TemporalPrior`), trained jointly through the KL term;
it lets one genre's latents sit where that genre's music lives, so decoding a prior sample with the genre it was
drawn for gives music of that genre. Temperature always scales eps. The genre is a learned embedding that modulates every residual block (FiLM) and is also fed to the
decoder's input layer. Row ``num_genres`` of the embedding is a learned "no genre" entry, used for ``cond=None``
and, during training, with probability ``cond_dropout``; a mixture of genres is the weighted sum of their rows.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .base import saves_init_args
from .blocks import Stage
from .posterior import DiagonalGaussian
from .prior import TemporalPrior
from .protocol import LatentModelBase

ONSET_RATE, SUSTAIN_RATE = 0.007, 0.035  # typical cell densities; they set the initial output biases
INITIAL_LOGVAR = -6.0
VELOCITY_STD = 0.08       # of velocity / 127 (about 10 MIDI steps): the width of the velocity likelihood
DEFAULT_VELOCITY = 90     # what onsets of a roll without dynamics are read as (audiovae.midi.pianoroll's default)


def roll_to_rows(x: torch.Tensor, substeps: int = 1) -> torch.Tensor:
    """Tensor[B, 2, S, P] -> Tensor[B, 2 * P * substeps, S / substeps]: one channel per (onset/sustain, pitch,
    step within a group of ``substeps``) row, so the time axis runs over groups of steps (e.g. quarter notes)."""
    b, c, s, p = x.shape
    return x.reshape(b, c, s // substeps, substeps, p).permute(0, 1, 4, 3, 2).reshape(b, c * p * substeps, -1)


def rows_to_roll(h: torch.Tensor, pitches: int, substeps: int = 1) -> torch.Tensor:
    """Inverse of :func:`roll_to_rows`: Tensor[B, C * P * substeps, T] -> Tensor[B, C, T * substeps, P]."""
    b, rows, t = h.shape
    c = rows // (pitches * substeps)
    return h.reshape(b, c, pitches, substeps, t).permute(0, 1, 4, 3, 2).reshape(b, c, t * substeps, pitches)


class TimeEncoder(nn.Module):
    """Rows Tensor[B, in_channels, T] -> features Tensor[B, channels[-1], T / 2**(len(channels) - 1)].

    Stage i runs at T / 2**i positions with ``channels[i]`` channels; a stride-2 convolution joins stages.
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...], num_blocks: int, cond_dim: int):
        super().__init__()
        self.conv_in = nn.Conv1d(in_channels, channels[0], 3, padding=1)
        self.stages = nn.ModuleList(Stage(c, num_blocks, cond_dim, norm_between=False) for c in channels)
        self.downs = nn.ModuleList(nn.Conv1d(c, o, 4, stride=2, padding=1) for c, o in zip(channels, channels[1:]))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = self.stages[0](self.conv_in(x), cond)
        for down, stage in zip(self.downs, self.stages[1:]):
            h = stage(down(F.silu(h)), cond)
        return F.silu(h)


class TimeDecoder(nn.Module):
    """Features Tensor[B, channels[-1], T'] -> Tensor[B, channels[0], T' * 2**(len(channels) - 1)]: the mirror
    of :class:`TimeEncoder` (transposed stride-2 convolutions between stages)."""

    def __init__(self, channels: tuple[int, ...], num_blocks: int, cond_dim: int):
        super().__init__()
        coarse_first = channels[::-1]
        self.stages = nn.ModuleList(Stage(c, num_blocks, cond_dim, norm_between=False) for c in coarse_first)
        self.ups = nn.ModuleList(nn.ConvTranspose1d(c, o, 4, stride=2, padding=1)
                                 for c, o in zip(coarse_first, coarse_first[1:]))

    def forward(self, h: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = self.stages[0](h, cond)
        for up, stage in zip(self.ups, self.stages[1:]):
            h = stage(up(F.silu(h)), cond)
        return F.silu(h)


@saves_init_args
class PianoRollCVAE(LatentModelBase):
    """Conditional VAE over piano-roll segments [B, 2, S, P] with a vector latent z [B, latent_dim].

    z is laid out in time: it is ``latent_positions`` = S / (substeps * 2**(len(channels) - 1)) chunks of
    latent_dim / latent_positions values, chunk t read by the encoder at (and written by the decoder to) the t-th
    stretch of the segment, with the convolutions giving each chunk context on both sides. Keeping the path from
    a bar to its part of z local is what lets the model learn to reconstruct in minutes rather than hours on a
    CPU; the prior is N(0, I) over the whole noise vector (mapped to z by the optional autoregressive prior).

    Args (plain keywords; they are the saved config):
        roll: the RollConfig dict of the grid (steps_per_quarter, pitch_low, pitch_high, segment_bars,
            beats_per_bar); S = segment_bars * beats_per_bar * steps_per_quarter.
        genres: genre names; empty = unconditional. latent_dim: size of z (a multiple of latent_positions).
        substeps: grid steps folded into channels, so the networks run over S / substeps positions (4 with
            4 steps per quarter = one position per quarter note).
        channels: conv channels per time resolution, finest first; each further entry halves the resolution
            (the decoder mirrors the encoder). S must divide by substeps * 2**(len(channels) - 1).
        blocks_per_stage: residual blocks per resolution. cond_dim: genre embedding size.
        cond_dropout: training probability of the "no genre" embedding.
        prior: "standard" (z ~ N(0, I)) or "autoregressive" (z = f(eps, genre), eps ~ N(0, I); see the module
            doc). prior_hidden: GRU size of the autoregressive prior.
        guidance: the default classifier-free guidance weight for generation (see
            :func:`audiovae.midi.generate.guided_probabilities`); it does not change training.
        velocity: carry dynamics as a third channel (see the module doc).
        genre_guidance: guidance weights of single genres that differ from ``guidance`` (name -> weight).
    """

    modality = "midi"

    def __init__(self, *, roll: dict | None = None, genres: list[str] | tuple[str, ...] = (), latent_dim: int = 256,
                 substeps: int = 4, channels: list[int] | tuple[int, ...] = (256,), blocks_per_stage: int = 1,
                 cond_dim: int = 32, cond_dropout: float = 0.1, prior: str = "standard", prior_hidden: int = 256,
                 guidance: float = 0.0, velocity: bool = False, genre_guidance: dict[str, float] | None = None):
        super().__init__(genres=genres, cond_dim=cond_dim, cond_dropout=cond_dropout)
        from ..midi.pianoroll import RollConfig  # deferred: models do not need the MIDI stack at import time

        self.roll = RollConfig(**(roll or {}))
        self.latent_dim = latent_dim
        self.guidance = float(guidance)
        self.genre_guidance = {str(g): float(w) for g, w in (genre_guidance or {}).items()}
        unknown = sorted(set(self.genre_guidance) - set(self.conditions))
        if unknown:
            raise ValueError(f"genre_guidance names genres the model does not know: {unknown}")
        self.steps, self.pitches, self.substeps = self.roll.segment_steps, self.roll.num_pitches, substeps
        channels = tuple(channels)
        reduction = substeps * 2 ** (len(channels) - 1) if channels else 0
        if not channels or substeps < 1 or self.steps % reduction:
            raise ValueError(f"segment steps {self.steps} must divide by substeps * 2**(len(channels) - 1) = "
                             f"{reduction} (substeps={substeps}, channels={list(channels)})")
        self.latent_positions = self.steps // reduction
        if latent_dim % self.latent_positions:
            raise ValueError(f"latent_dim {latent_dim} must be a multiple of the {self.latent_positions} latent "
                             "positions")
        self.chunk = latent_dim // self.latent_positions
        if prior not in ("standard", "autoregressive"):
            raise ValueError(f"prior must be 'standard' or 'autoregressive', got {prior!r}")
        cdim = self.cond_dim
        self.velocity = bool(velocity)
        self.channels = 3 if self.velocity else 2
        rows = self.channels * self.pitches * substeps

        self.encoder = TimeEncoder(rows, channels, blocks_per_stage, cdim)
        self.to_posterior = nn.Conv1d(channels[-1] + cdim, 2 * self.chunk, 1)
        self.from_latent = nn.Conv1d(self.chunk + cdim, channels[-1], 1)
        self.decoder = TimeDecoder(channels, blocks_per_stage, cdim)
        self.conv_out = nn.Conv1d(channels[0], rows, 1)
        self.latent_prior = TemporalPrior(self.chunk, cdim, prior_hidden, positions=self.latent_positions) \
            if prior == "autoregressive" else None
        with torch.no_grad():
            # Start with a nearly deterministic encoder (std 0.05) so the decoder can use z from the first steps.
            self.to_posterior.bias[self.chunk:].fill_(INITIAL_LOGVAR)
            bias = self.conv_out.bias.view(self.channels, -1)
            bias[0].fill_(math.log(ONSET_RATE / (1 - ONSET_RATE)))
            bias[1].fill_(math.log(SUSTAIN_RATE / (1 - SUSTAIN_RATE)))
            if self.velocity:
                bias[2].fill_(math.log(DEFAULT_VELOCITY / (127 - DEFAULT_VELOCITY)))

    # --- model protocol ---------------------------------------------------------------------------------
    @property
    def latent_shape(self) -> tuple[int]:
        return (self.latent_dim,)

    @property
    def segment_shape(self) -> tuple[int, int, int]:
        """(C, S, P) of one segment as the decoder gives it: C = 3 with dynamics, else 2."""
        return (self.channels, self.steps, self.pitches)

    def as_input(self, x: torch.Tensor) -> torch.Tensor:
        """A roll Tensor[B, 2 or 3, S, P] in the channels this model reads: a model with dynamics reads a 2-channel
        roll's onsets at DEFAULT_VELOCITY; a model without them drops the velocity channel."""
        if x.dim() != 4 or x.shape[1] not in (2, 3) or tuple(x.shape[2:]) != (self.steps, self.pitches):
            raise ValueError(f"expected rolls [B, 2 or 3, {self.steps}, {self.pitches}], got {tuple(x.shape)}")
        if x.shape[1] == self.channels:
            return x
        if not self.velocity:
            return x[:, :2]
        return torch.cat([x, x[:, :1] * (DEFAULT_VELOCITY / 127.0)], 1)

    def _with_cond(self, h: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """Append the condition to every position: Tensor[B, C, T] -> Tensor[B, C + cond_dim, T]."""
        return h if c is None else torch.cat([h, c[:, :, None].expand(-1, -1, h.shape[-1])], 1)

    def encode(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> DiagonalGaussian:
        """x: Tensor[B, 2 or 3, S, P] in [0, 1] (see :meth:`as_input`) -> q(z | x, genre) over z: Tensor[B, latent_dim]."""
        x = self.as_input(x)
        c = self.embed_condition(cond, x.shape[0], x.device)
        h = self.encoder(roll_to_rows(x.to(self.conv_out.weight.dtype), self.substeps), c)
        mean, logvar = self.to_posterior(self._with_cond(h, c)).float().chunk(2, dim=1)  # [B, chunk, positions]
        return DiagonalGaussian(mean.flatten(1), logvar.flatten(1))

    def decode(self, z: torch.Tensor, cond: torch.Tensor | None = None, *, frames: int | None = None) -> torch.Tensor:
        """z: Tensor[B, latent_dim] -> logits Tensor[B, C, S, P] of p(cell on | z, genre) (see :meth:`probabilities`),
        and with dynamics (C = 3) the logit of each cell's velocity / 127. ``frames``, when given, must be the
        segment's S steps: a roll segment has a fixed length."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected z [B, {self.latent_dim}], got {tuple(z.shape)}")
        if frames not in (None, self.steps):
            raise ValueError(f"a roll segment has {self.steps} steps; cannot decode {frames}")
        c = self.embed_condition(cond, z.shape[0], z.device)
        h = self.from_latent(self._with_cond(z.view(-1, self.chunk, self.latent_positions), c))
        return rows_to_roll(self.conv_out(self.decoder(h, c)), self.pitches, self.substeps)

    def probabilities(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """z: Tensor[B, latent_dim] -> Tensor[B, C, S, P] in (0, 1): sigmoid of :meth:`decode`."""
        return torch.sigmoid(self.decode(z, cond).float())

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None, temperature: float = 1.0):
        """Returns (logits Tensor[B, C, S, P], posterior); z is sampled in training mode, the mode otherwise."""
        posterior = self.encode(x, cond)
        z = posterior.sample(temperature) if self.training else posterior.mode()
        return self.decode(z, cond), posterior

    # --- the prior's view of z: the latent chunks in time order -----------------------------------------------
    def to_sequence(self, z: torch.Tensor) -> torch.Tensor:
        """Tensor[B, latent_dim] -> Tensor[B, positions, chunk] (time order)."""
        return z.reshape(-1, self.chunk, self.latent_positions).transpose(1, 2)

    def from_sequence(self, chunks: torch.Tensor) -> torch.Tensor:
        return chunks.transpose(1, 2).reshape(chunks.shape[0], -1)

    def frame_nll(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """-log p(x | z) per grid step, Tensor[B, S], nats: Bernoulli cross-entropy summed over the onset and sustain
        cells of each step; with dynamics plus the Gaussian velocity term of its onset cells (up to a constant).
        x: a roll Tensor[B, 2 or 3, S, P] (see :meth:`as_input`); logits: :meth:`decode`'s output."""
        x, logits = self.as_input(x).float(), logits.float()
        nll = F.binary_cross_entropy_with_logits(logits[:, :2], x[:, :2], reduction="none").sum((1, 3))
        if self.velocity:
            error = (torch.sigmoid(logits[:, 2]) - x[:, 2]) * x[:, 0]
            nll = nll + (error.square() / (2 * VELOCITY_STD**2)).sum(2)
        return nll

    def frames_of(self, x: torch.Tensor) -> int:
        """Grid steps S of a segment (x: Tensor[B, 2 or 3, S, P])."""
        return self.steps
