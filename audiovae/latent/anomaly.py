"""Anomaly scores: how badly a trained model explains an input, as its negative ELBO per input frame.

score(x) = ( -log p(x | z = mode of q(z|x)) + KL(q(z|x) || p(z)) ) / frames, in nats per frame,
with the reconstruction term from the model's own likelihood (``model.reconstruction_nll``: Laplace per log-mel bin
for mel VAEs, Bernoulli per roll cell for the MIDI CVAE), the KL against the model's prior (``model.latent_kl``)
and frames the input's length (``model.frames_of``: mel frames, or grid steps of a roll segment). Taking z at the
posterior mode rather than sampling makes the score deterministic. Higher means stranger: scores rank inputs of
one model against each other; they do not compare across models. Files are read by :mod:`audiovae.scoring`.
"""
from __future__ import annotations

import torch

from ..device import model_device


@torch.no_grad()
def anomaly_map(model, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
    """Negative ELBO per latent frame: Tensor[B, T'] nats, T' = the latent's frames (``model.to_sequence``; about
    21.5 per second for the mel VAE, one per grid step for the MIDI CVAE).

    Each latent frame gets the reconstruction NLL of the input frames it covers (``model.frame_nll`` at the
    posterior mode; the last frame also covers any remainder) plus its KL against the model's prior (given the
    earlier frames, for a learned prior). The map sums to the negative ELBO of the input.
    """
    x = x.to(model_device(model))
    posterior = model.encode(x, cond)
    frames = model.frames_of(x)
    nll = model.frame_nll(x, model.decode(posterior.mode(), cond, frames=frames))  # [B, frames]
    kl = model.to_sequence(model.latent_kl(posterior, cond)).float().sum(-1)  # [B, T']
    per = -(-frames // kl.shape[1])  # input frames per latent frame, rounded up
    nll = torch.nn.functional.pad(nll.float(), (0, per * kl.shape[1] - frames)).reshape(len(nll), kl.shape[1], per)
    return nll.sum(-1) + kl


@torch.no_grad()
def anomaly_scores(model, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
    """Negative ELBO per input frame: Tensor[B], nats per frame (see the module docstring).

    x: a batch of model inputs (log-mel Tensor[B, n_mels, frames], or rolls Tensor[B, 2, S, P]); cond: the genre
    condition for conditional models (None = the "no genre" condition). The model should be in eval mode.
    """
    return anomaly_map(model, x, cond).sum(1) / model.frames_of(x)
