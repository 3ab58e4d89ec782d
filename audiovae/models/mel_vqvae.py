"""MelVQVAE: the mel VAE's encoder and decoder around a (residual) vector quantiser, and its code prior.

A clip of F mel frames encodes to pre-quantisation vectors z_e: Tensor[B, code_dim, ceil(F / time_downsample)],
each frame quantised by ``num_codebooks`` residual stages of ``codebook_size`` codes (audiovae.models.quantiser)
into z_q (the sum of the stages' code vectors) and integer codes LongTensor[B, num_codebooks, T']. The decoder
takes z_q. Bitrate: num_codebooks * log2(codebook_size) bits per latent frame (about 21.5 frames per second with
the default front end and 4x downsampling).

The model protocol (audiovae.models.LatentModel) holds as for the mel VAE, with z = z_q:

- ``encode`` returns a :class:`QuantisedPosterior`: ``sample()`` and ``mode()`` are z_q, ``mean`` is z_e (what
  interpolation and genre centroids work on; :meth:`MelVQVAE.project_latent` quantises a blend again), and
  ``kl()`` is log K per code (the KL of a one-hot posterior against a uniform prior).
- The prior over codes is uniform until a :class:`~audiovae.models.prior.CategoricalPrior` is fitted as a second
  stage (recipes/mel_vqvae_prior.toml, ``prior = "categorical"``); then ``latent_kl`` is the codes' negative
  log-likelihood under it (the anomaly map), and ``latent_from_noise`` draws codes from it.
- Noise to codes: the protocol hands over Gaussian noise eps ~ N(0, T^2 I) shaped like z. Its root mean square
  per item is taken as the temperature T, and Phi(eps[:, j, t] / T) as the uniform number that draws code j of
  frame t by inverse CDF; so T = 1 samples the prior exactly, T -> 0 takes the most likely codes, and the same
  seed gives the same codes.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ParameterError
from .base import saves_init_args
from .mel_vae import MelVAE
from .prior import CategoricalPrior, pick_codes
from .quantiser import ResidualQuantiser

PRIORS = ("uniform", "categorical")


class QuantisedPosterior:
    """What :meth:`MelVQVAE.encode` returns: ``mean`` z_e Tensor[B, D, T'] (the encoder's continuous output),
    ``quantised`` z_q Tensor[B, D, T'], ``codes`` LongTensor[B, n, T'] and ``commitment`` Tensor[] (mean squared
    distance of z_e to its codes, summed over the stages; the commitment loss)."""

    def __init__(self, mean: torch.Tensor, quantised: torch.Tensor, codes: torch.Tensor, codebook_size: int,
                 commitment: torch.Tensor):
        self.mean, self.quantised, self.codes = mean, quantised, codes
        self.codebook_size, self.commitment = codebook_size, commitment

    def sample(self, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """z_q: quantisation is deterministic, so every draw is the mode (temperature and generator are unused)."""
        return self.quantised

    def mode(self) -> torch.Tensor:
        return self.quantised

    def kl(self) -> torch.Tensor:
        """KL(one-hot q || uniform over K codes) = log K nats per code, spread evenly over the D values of each
        latent frame: Tensor[B, D, T'] (a frame sums to num_codebooks * log K)."""
        per_value = self.codes.shape[1] * math.log(self.codebook_size) / self.quantised.shape[1]
        return torch.full_like(self.quantised, per_value, dtype=torch.float32)

    def kl_per_item(self) -> torch.Tensor:
        return self.kl().flatten(1).sum(1)


@saves_init_args
class MelVQVAE(MelVAE):
    """Vector-quantised mel autoencoder (the mel VAE's encoder/decoder trunk; see the module docstring).

    Args (plain keywords; they are the saved config), beside the mel VAE's trunk arguments (frontend, hidden,
    downsample_stages, blocks_per_stage, mid_blocks, genres, cond_dim, cond_dropout, recon_scale, input_shift,
    input_scale):
        code_dim: D, values per latent frame (the code vectors' size).
        codebook_size: K codes per codebook. num_codebooks: residual stages (1 = plain VQ).
        commitment: weight of the commitment loss ||z_e - sg(z_q)||^2 (read by the training task).
        codebook_decay: EMA decay of the codebooks. kmeans_batches: training batches whose encoder outputs start
            the codebooks by k-means. restart_threshold: a code whose moving count of uses per batch falls below
            this is restarted at a recent encoder output.
        prior: "uniform" (every code equally likely) or "categorical" (a learned
            :class:`~audiovae.models.prior.CategoricalPrior`). prior_hidden: its GRU size. prior_dropout: its
            training-time dropout.
        guidance: default classifier-free guidance weight of sampling. top_k: default top-k of sampling (0 = off).
    """

    def __init__(self, *, frontend=None, hidden: int = 256, code_dim: int = 32, codebook_size: int = 256,
                 num_codebooks: int = 1, downsample_stages: int = 2, blocks_per_stage: int = 2,
                 mid_blocks: int | None = None, genres=(), cond_dim: int = 32, cond_dropout: float = 0.1,
                 recon_scale: float = 0.1, input_shift: float = -5.0, input_scale: float = 2.5,
                 commitment: float = 0.25, codebook_decay: float = 0.99, kmeans_batches: int = 4,
                 restart_threshold: float = 0.1, prior: str = "uniform", prior_hidden: int = 256,
                 prior_dropout: float = 0.0, guidance: float = 0.0, top_k: int = 0):
        super().__init__(frontend=frontend, hidden=hidden, latent_channels=code_dim,
                         downsample_stages=downsample_stages, blocks_per_stage=blocks_per_stage,
                         mid_blocks=mid_blocks, genres=genres, cond_dim=cond_dim, cond_dropout=cond_dropout,
                         recon_scale=recon_scale, input_shift=input_shift, input_scale=input_scale,
                         prior="standard", guidance=guidance)
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
        if not 1 <= num_codebooks <= code_dim:
            raise ValueError(f"num_codebooks must be in 1..code_dim ({code_dim}), got {num_codebooks}")
        self.enc_out = nn.Conv1d(hidden, code_dim, 3, padding=1)  # z_e, not a Gaussian's two halves
        self.code_dim, self.codebook_size, self.num_codebooks = code_dim, codebook_size, num_codebooks
        self.commitment, self.top_k = commitment, int(top_k)
        self.quantiser = ResidualQuantiser(code_dim, codebook_size, num_codebooks, decay=codebook_decay,
                                           kmeans_batches=kmeans_batches, restart_threshold=restart_threshold)
        if prior == "categorical":
            self.latent_prior = CategoricalPrior(num_codebooks, codebook_size, self.cond_dim, prior_hidden,
                                                 prior_dropout)

    @property
    def bits_per_second(self) -> float:
        """num_codebooks * log2(codebook_size) bits per latent frame, times latent frames per second."""
        rate = self.frontend.frames_per_second / self.time_downsample
        return self.num_codebooks * math.log2(self.codebook_size) * rate

    # --- encoding and decoding --------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> QuantisedPosterior:
        """x: log-mel Tensor[B, n_mels, frames] -> :class:`QuantisedPosterior` over T' = ceil(frames /
        time_downsample) latent frames (in training mode the codebooks learn from it)."""
        z_e = self.encode_features(x, cond).float()
        z_q, codes, commitment = self.quantiser(z_e)
        return QuantisedPosterior(z_e, z_q, codes, self.codebook_size, commitment)

    def encode_codes(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """x: log-mel Tensor[B, n_mels, frames] -> codes LongTensor[B, num_codebooks, T'] (never changes the
        codebooks)."""
        return self.quantiser.encode_codes(self.encode_features(x, cond).float())

    def check_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes as LongTensor[B, num_codebooks, T'] on the model's device; ParameterError when the shape or a value
        does not fit this model's codebooks."""
        codes = torch.as_tensor(codes)
        if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
            raise ParameterError(f"codes must be integers, got {codes.dtype}")
        if codes.dim() != 3 or codes.shape[1] != self.num_codebooks or codes.shape[2] < 1:
            raise ParameterError(f"codes must be [B, {self.num_codebooks}, frames] for this model's "
                                 f"{self.num_codebooks} codebook(s), got {tuple(codes.shape)}")
        low, high = int(codes.min()), int(codes.max())
        if low < 0 or high >= self.codebook_size:
            raise ParameterError(f"codes range over {low}..{high}; this model's codebooks hold {self.codebook_size} "
                                 f"codes (0..{self.codebook_size - 1})")
        return codes.long().to(self.quantiser.stages[0].codebook.device)

    def codes_to_latent(self, codes: torch.Tensor) -> torch.Tensor:
        """codes LongTensor[B, num_codebooks, T'] -> z_q Tensor[B, code_dim, T'] (the sum of the stages' codes)."""
        return self.quantiser.decode_codes(self.check_codes(codes))

    def decode_codes(self, codes: torch.Tensor, cond: torch.Tensor | None = None, *, frames: int | None = None
                     ) -> torch.Tensor:
        """codes LongTensor[B, num_codebooks, T'] -> log-mel Tensor[B, n_mels, frames] (default T' *
        time_downsample)."""
        return self.decode(self.codes_to_latent(codes), cond, frames=frames)

    def project_latent(self, z: torch.Tensor) -> torch.Tensor:
        """Any vectors Tensor[B, code_dim, T'] (a blend, a shifted latent) -> their quantisation z_q, same shape."""
        return self.quantiser.decode_codes(self.quantiser.encode_codes(z.float())).to(z.dtype)

    # --- the prior over codes ---------------------------------------------------------------------------------
    def code_logits(self, codes: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Logits Tensor[B, T', n, K] of every code given the codes before it: the learned prior's, or zeros (uniform)."""
        codes = self.check_codes(codes)
        if self.latent_prior is None:
            return torch.zeros(*codes.transpose(1, 2).shape, self.codebook_size, device=codes.device)
        c = self.embed_condition(cond, codes.shape[0], codes.device)
        return self.latent_prior.logits(codes.transpose(1, 2), c)

    def code_nll(self, codes: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """-log p(codes of each latent frame | the earlier codes, genre): Tensor[B, T'] nats (num_codebooks * log K
        under the uniform prior)."""
        log_p = torch.log_softmax(self.code_logits(codes, cond), -1)
        return -log_p.gather(-1, self.check_codes(codes).transpose(1, 2)[..., None])[..., 0].sum(-1)

    def latent_kl(self, posterior: QuantisedPosterior, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The codes' negative log-likelihood under the prior per latent frame, spread evenly over the D values of
        the frame: Tensor[B, D, T'] nats (for a one-hot posterior this is KL(q || p))."""
        per_frame = self.code_nll(posterior.codes, cond)
        return (per_frame[:, None, :] / self.code_dim).expand(-1, self.code_dim, -1)

    def sample_codes(self, uniforms: torch.Tensor, cond: torch.Tensor | None = None, *,
                     temperature: torch.Tensor | float = 1.0, guidance: float = 0.0, top_k: int | None = None,
                     prefix: torch.Tensor | None = None) -> torch.Tensor:
        """uniforms Tensor[B, n, T'] in [0, 1) -> codes LongTensor[B, n, T'] drawn from the prior (see
        :meth:`CategoricalPrior.sample <audiovae.models.prior.CategoricalPrior.sample>`); prefix: codes
        LongTensor[B, n, P] to continue. top_k None takes the model's default."""
        top_k = self.top_k if top_k is None else int(top_k)
        uniforms = uniforms.transpose(1, 2)
        temperature = torch.as_tensor(temperature, dtype=torch.float32, device=uniforms.device).reshape(-1, 1)
        if self.latent_prior is None:
            flat = torch.zeros(uniforms.shape[0] * uniforms.shape[1] * uniforms.shape[2], self.codebook_size,
                               device=uniforms.device)
            repeated = temperature.expand(uniforms.shape[0], 1).repeat_interleave(uniforms[0].numel(), 0)
            return pick_codes(flat, uniforms.reshape(-1), repeated, top_k).reshape(uniforms.shape).transpose(1, 2)
        c = self.embed_condition(cond, uniforms.shape[0], uniforms.device)
        guide = self.embed_condition(None, uniforms.shape[0], uniforms.device) if self.conditions else None
        prefix = None if prefix is None else self.check_codes(prefix).transpose(1, 2)
        codes = self.latent_prior.sample(uniforms, c, temperature=temperature, top_k=top_k, guide=guide,
                                         guidance=guidance, prefix=prefix)
        return codes.transpose(1, 2)

    def latent_from_noise(self, eps: torch.Tensor, cond: torch.Tensor | None = None, *, guidance: float = 0.0,
                          prefix: torch.Tensor | None = None, top_k: int | None = None) -> torch.Tensor:
        """Noise eps Tensor[B, code_dim, T'] ~ N(0, T^2 I) -> z_q Tensor[B, code_dim, T'] drawn from the code prior
        at temperature T (see the module docstring). prefix: latents Tensor[B, code_dim, P] to continue."""
        temperature = eps.float().pow(2).mean((1, 2)).sqrt()  # [B]
        uniforms = torch.special.ndtr(eps[:, :self.num_codebooks].float() / temperature.clamp_min(1e-12)[:, None, None])
        prefix_codes = None if prefix is None else self.quantiser.encode_codes(prefix.float())
        codes = self.sample_codes(uniforms, cond, temperature=temperature, guidance=guidance, top_k=top_k,
                                  prefix=prefix_codes)
        return self.quantiser.decode_codes(codes)

    def noise_from_latent(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The inverse of :meth:`latent_from_noise` at temperature 1 without guidance or top-k: z Tensor[B, code_dim,
        T'] is quantised, and each code becomes the normal quantile of the middle of its interval of the prior's
        CDF; the other values are set so the noise's root mean square is 1."""
        codes = self.quantiser.encode_codes(z.float())
        probs = torch.softmax(self.code_logits(codes, cond), -1)  # [B, T', n, K]
        upper = probs.cumsum(-1).gather(-1, codes.transpose(1, 2)[..., None])[..., 0]
        lower = upper - probs.gather(-1, codes.transpose(1, 2)[..., None])[..., 0]
        middle = ((lower + upper) / 2).clamp(1e-6, 1 - 1e-6)
        eps = torch.zeros(z.shape[0], self.code_dim, z.shape[2], device=z.device)
        eps[:, :self.num_codebooks] = torch.special.ndtri(middle).transpose(1, 2)
        spare = self.code_dim - self.num_codebooks
        if spare:
            left = (eps[0].numel() - eps.pow(2).sum((1, 2))).clamp_min(0) / (spare * z.shape[2])
            eps[:, self.num_codebooks:] = left.sqrt()[:, None, None]
        return eps
