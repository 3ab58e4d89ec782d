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
def anomaly_scores(model, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
    """Negative ELBO per input frame: Tensor[B], nats per frame (see the module docstring).

    x: a batch of model inputs (log-mel Tensor[B, n_mels, frames], or rolls Tensor[B, 2, S, P]); cond: the genre
    condition for conditional models (None = the "no genre" condition). The model should be in eval mode.
    """
    x = x.to(model_device(model))
    posterior = model.encode(x, cond)
    frames = model.frames_of(x)
    x_hat = model.decode(posterior.mode(), cond, frames=frames)
    nelbo = model.reconstruction_nll(x, x_hat).float() + model.latent_kl(posterior, cond).flatten(1).sum(1).float()
    return nelbo / frames
