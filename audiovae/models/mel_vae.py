"""MelVAE: a fully convolutional VAE over log-mel spectrograms, optionally conditioned on genre.

A clip of any length encodes to a temporal latent z: Tensor[B, latent_channels, ceil(frames / time_downsample)].
The mel axis is the channel axis of 1-D convolutions over time, which is what lets the model run fast on a CPU.
Conditioning: a learned genre embedding modulates every residual block (FiLM). Index ``num_genres`` of the
embedding is a learned "no genre" entry, used when ``cond`` is None and, during training, with probability
``cond_dropout``; so a conditional model also encodes and decodes clips whose genre is unknown.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..audio.features import MelConfig
from .base import saves_init_args
from .blocks import Stage
from .posterior import DiagonalGaussian
from .prior import TemporalPrior
from .protocol import LatentModelBase


@saves_init_args
class MelVAE(LatentModelBase):
    """Convolutional (conditional) VAE over natural-log mel spectrograms.

    Args (plain keywords; they are the saved config):
        frontend: the MelConfig (or a dict of its fields) the model reads and writes; n_mels comes from it.
        hidden: channels of the conv trunk. latent_channels: C of z.
        downsample_stages: each halves time, so time_downsample = 2 ** downsample_stages.
        blocks_per_stage: residual blocks per stage. mid_blocks: residual blocks at the coarsest resolution, on
            each side of the latent (None = blocks_per_stage); cheap depth with a wide receptive field (dilations
            1, 2, 4, ...). genres: genre names; empty = unconditional.
        cond_dim: genre embedding size. cond_dropout: training probability of the "no genre" embedding.
        recon_scale: Laplace scale b of p(x|z) in log-mel units (nats are computed with it).
        input_shift, input_scale: x is fed to the network as (x - shift) / scale.
        prior: "standard" (every latent frame N(0, I)) or "autoregressive" (a genre-conditioned
            :class:`~audiovae.models.prior.TemporalPrior` over the latent frames, usually fitted as a second stage
            on a trained model's latents: recipes/mel_prior.toml). prior_hidden: its GRU size.
        guidance: the default classifier-free guidance weight of sampling from the learned prior.
    """

    modality = "audio"

    def __init__(self, *, frontend: MelConfig | dict | None = None, hidden: int = 256, latent_channels: int = 32,
                 downsample_stages: int = 2, blocks_per_stage: int = 2, mid_blocks: int | None = None, genres: list[str] | tuple[str, ...] = (), cond_dim: int = 32,
                 cond_dropout: float = 0.1, recon_scale: float = 0.1, input_shift: float = -5.0,
                 input_scale: float = 2.5, prior: str = "standard", prior_hidden: int = 256, guidance: float = 0.0):
        super().__init__(genres=genres, cond_dim=cond_dim, cond_dropout=cond_dropout)
        self.frontend = MelConfig.from_any(frontend)
        self.n_mels, self.latent_channels = self.frontend.n_mels, latent_channels
        self.time_downsample = 2**downsample_stages
        self.recon_scale = recon_scale
        self.input_shift, self.input_scale = input_shift, input_scale
        cdim, n_mels = self.cond_dim, self.n_mels
        mid_blocks = blocks_per_stage if mid_blocks is None else mid_blocks

        self.enc_in = nn.Conv1d(n_mels, hidden, 3, padding=1)
        self.enc_stages = nn.ModuleList(Stage(hidden, blocks_per_stage, cdim) for _ in range(downsample_stages))
        self.enc_down = nn.ModuleList(nn.Conv1d(hidden, hidden, 4, stride=2, padding=1) for _ in range(downsample_stages))
        self.enc_mid = Stage(hidden, mid_blocks, cdim)
        self.enc_out = nn.Conv1d(hidden, 2 * latent_channels, 3, padding=1)

        self.dec_in = nn.Conv1d(latent_channels, hidden, 3, padding=1)
        self.dec_mid = Stage(hidden, mid_blocks, cdim)
        self.dec_up = nn.ModuleList(nn.ConvTranspose1d(hidden, hidden, 4, stride=2, padding=1) for _ in range(downsample_stages))
        self.dec_stages = nn.ModuleList(Stage(hidden, blocks_per_stage, cdim) for _ in range(downsample_stages))
        self.dec_out = nn.Conv1d(hidden, n_mels, 3, padding=1)
        if prior not in ("standard", "autoregressive"):
            raise ValueError(f"prior must be 'standard' or 'autoregressive', got {prior!r}")
        self.guidance = float(guidance)
        if prior == "autoregressive":
            self.latent_prior = TemporalPrior(latent_channels, cdim, prior_hidden)

    # --- model protocol ---------------------------------------------------------------------------------
    @property
    def latent_shape(self) -> tuple[int, None]:
        """(latent_channels, None): the time axis follows the clip, frames / time_downsample."""
        return (self.latent_channels, None)

    def latent_frames(self, frames: int) -> int:
        return math.ceil(frames / self.time_downsample)

    def to_sequence(self, z: torch.Tensor) -> torch.Tensor:
        """z: Tensor[B, C, T'] -> the prior's view Tensor[B, T', C] (latent frames in time order)."""
        return z.transpose(1, 2)

    def from_sequence(self, sequence: torch.Tensor) -> torch.Tensor:
        return sequence.transpose(1, 2)

    def encode(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> DiagonalGaussian:
        """x: Tensor[B, n_mels, frames] natural-log mel -> q(z|x): Tensor[B, C, ceil(frames/time_downsample)]."""
        return DiagonalGaussian.from_params(self.encode_features(x, cond).float(), dim=1)

    def encode_features(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The encoder network: x Tensor[B, n_mels, frames] natural-log mel -> its output layer's values
        Tensor[B, enc_out channels, ceil(frames / time_downsample)] (the posterior's parameters here; a subclass
        such as the VQ-VAE gives ``enc_out`` its own width)."""
        if x.dim() != 3 or x.shape[1] != self.n_mels:
            raise ValueError(f"expected log-mel [B, {self.n_mels}, frames], got {tuple(x.shape)}")
        c = self.embed_condition(cond, x.shape[0], x.device)
        pad = self.latent_frames(x.shape[-1]) * self.time_downsample - x.shape[-1]
        h = (x - self.input_shift) / self.input_scale
        h = F.pad(h, (0, pad), mode="replicate") if pad else h
        h = self.enc_in(h)
        for stage, down in zip(self.enc_stages, self.enc_down):
            h = down(stage(h, c))
        return self.enc_out(F.silu(self.enc_mid(h, c)))

    def decode(self, z: torch.Tensor, cond: torch.Tensor | None = None, *, frames: int | None = None) -> torch.Tensor:
        """z: Tensor[B, C, T'] -> log-mel Tensor[B, n_mels, frames] (frames defaults to T' * time_downsample)."""
        x_hat = self.decode_embedded(z, self.embed_condition(cond, z.shape[0], z.device))
        return x_hat if frames is None else x_hat[..., :frames]

    def decode_embedded(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """z: Tensor[B, C, T'], c: the embedded condition Tensor[B, cond_dim] (None when unconditional) ->
        log-mel Tensor[B, n_mels, T' * time_downsample]. The whole decoder as one graph (what export traces)."""
        h = self.dec_mid(self.dec_in(z), c)
        for up, stage in zip(self.dec_up, self.dec_stages):
            h = stage(up(h), c)
        return self.dec_out(F.silu(h)) * self.input_scale + self.input_shift

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None, temperature: float = 1.0):
        """Returns (x_hat Tensor[B, n_mels, frames], posterior)."""
        posterior = self.encode(x, cond)
        z = posterior.sample(temperature) if self.training else posterior.mode()
        return self.decode(z, cond, frames=x.shape[-1]), posterior

    def frame_nll(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) per mel frame under a Laplace(x_hat, recon_scale) per log-mel bin: Tensor[B, frames], nats."""
        b = self.recon_scale
        return ((x - x_hat.float()).abs() / b + math.log(2 * b)).sum(1)
