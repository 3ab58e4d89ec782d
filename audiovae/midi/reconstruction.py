"""How well a MIDI model reconstructs held-out segments: onset and sustain F1, KL and negative ELBO."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import AudioVAEError
from ..models.posterior import active_units
from .pianoroll import roll_tensor, with_velocity


def batches(segments: np.ndarray, genre_ids: np.ndarray, batch_size: int = 256,
            velocities: np.ndarray | None = None):
    """Yield (rolls float32 Tensor[b, C, S, P], genre ids int64 Tensor[b]) over bool segments [N, 2, S, P]; with
    their onset velocities uint8 [N, S, P] the rolls carry dynamics (C = 3, see
    :func:`audiovae.midi.pianoroll.roll_tensor`)."""
    for start in range(0, len(segments), batch_size):
        part = segments[start:start + batch_size]
        if velocities is not None:
            part = with_velocity(part, velocities[start:start + batch_size])
        yield roll_tensor(part), torch.from_numpy(np.asarray(genre_ids[start:start + batch_size], dtype=np.int64))


def f1_score(tp: float, fp: float, fn: float) -> float:
    return 2 * tp / max(2 * tp + fp + fn, 1.0)


@torch.no_grad()
def reconstruction_metrics(model, segments: np.ndarray, genre_ids: np.ndarray, *, batch_size: int = 256,
                           velocities: np.ndarray | None = None) -> dict[str, float]:
    """Held-out reconstruction through the posterior mode, thresholded at 0.5.

    segments: bool [N, 2, S, P]; genre_ids: int64 [N] (-1 = unknown; ignored by unconditional models);
    velocities: uint8 [N, S, P], each onset's MIDI velocity (for a model with dynamics).
    Returns micro onset/sustain F1 over all cells, KL (nats per segment), negative ELBO (nats per segment,
    reconstruction at the posterior mode), active latent units and the segment count; for a model with dynamics
    given velocities, also the mean absolute velocity error at the true onsets (MIDI steps).
    """
    if len(segments) == 0:
        raise AudioVAEError("no segments to evaluate (is the validation split empty? raise data.val_fraction)")
    device = next(model.parameters()).device
    counts = np.zeros((2, 3))  # [onset, sustain] x [tp, fp, fn]
    kl_sum = nll_sum = 0.0
    means = []
    velocity_error = velocity_count = 0.0
    dynamics = model.velocity and velocities is not None
    for x, genre in batches(segments, genre_ids, batch_size, velocities if dynamics else None):
        x = x.to(device)
        cond = genre.to(device) if model.conditions else None
        posterior = model.encode(x, cond)
        logits = model.decode(posterior.mode(), cond)
        predicted, truth = logits > 0, x > 0.5
        for channel in range(2):
            p, t = predicted[:, channel], truth[:, channel]
            counts[channel] += [float((p & t).sum()), float((p & ~t).sum()), float((~p & t).sum())]
        if dynamics:
            onset = truth[:, 0]
            velocity_error += float((torch.sigmoid(logits[:, 2].float()) - x[:, 2]).abs()[onset].sum()) * 127
            velocity_count += float(onset.sum())
        kl_sum += float(model.latent_kl(posterior, cond).sum())
        nll_sum += float(model.reconstruction_nll(x, logits).sum())
        means.append(posterior.mean.cpu())
    n = len(segments)
    extra = {"val/velocity_mae": velocity_error / max(velocity_count, 1.0)} if dynamics else {}
    return extra | {"val/onset_f1": f1_score(*counts[0]), "val/sustain_f1": f1_score(*counts[1]), "val/kl": kl_sum / n,
            "val/nelbo": (nll_sum + kl_sum) / n, "val/active_units": float(active_units(torch.cat(means))),
            "val/segments": float(n)}
