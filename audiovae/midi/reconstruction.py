"""How well a MIDI model reconstructs held-out segments: onset and sustain F1, KL and negative ELBO."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import AudioVAEError
from ..models.posterior import active_units


def batches(segments: np.ndarray, genre_ids: np.ndarray, batch_size: int = 256):
    """Yield (rolls float32 Tensor[b, 2, S, P], genre ids int64 Tensor[b]) over bool segments [N, 2, S, P]."""
    for start in range(0, len(segments), batch_size):
        yield (torch.from_numpy(segments[start:start + batch_size].astype(np.float32)),
               torch.from_numpy(np.asarray(genre_ids[start:start + batch_size], dtype=np.int64)))


def f1_score(tp: float, fp: float, fn: float) -> float:
    return 2 * tp / max(2 * tp + fp + fn, 1.0)


@torch.no_grad()
def reconstruction_metrics(model, segments: np.ndarray, genre_ids: np.ndarray, *,
                           batch_size: int = 256) -> dict[str, float]:
    """Held-out reconstruction through the posterior mode, thresholded at 0.5.

    segments: bool [N, 2, S, P]; genre_ids: int64 [N] (-1 = unknown; ignored by unconditional models).
    Returns micro onset/sustain F1 over all cells, KL (nats per segment), negative ELBO (nats per segment,
    reconstruction at the posterior mode), active latent units and the segment count.
    """
    if len(segments) == 0:
        raise AudioVAEError("no segments to evaluate (is the validation split empty? raise data.val_fraction)")
    device = next(model.parameters()).device
    counts = np.zeros((2, 3))  # [onset, sustain] x [tp, fp, fn]
    kl_sum = nll_sum = 0.0
    means = []
    for x, genre in batches(segments, genre_ids, batch_size):
        x = x.to(device)
        cond = genre.to(device) if model.conditions else None
        posterior = model.encode(x, cond)
        logits = model.decode(posterior.mode(), cond)
        predicted, truth = logits > 0, x > 0.5
        for channel in range(2):
            p, t = predicted[:, channel], truth[:, channel]
            counts[channel] += [float((p & t).sum()), float((p & ~t).sum()), float((~p & t).sum())]
        kl_sum += float(model.latent_kl(posterior, cond).sum())
        nll_sum += float(model.reconstruction_nll(x, logits).sum())
        means.append(posterior.mean.cpu())
    n = len(segments)
    return {"val/onset_f1": f1_score(*counts[0]), "val/sustain_f1": f1_score(*counts[1]), "val/kl": kl_sum / n,
            "val/nelbo": (nll_sum + kl_sum) / n, "val/active_units": float(active_units(torch.cat(means))),
            "val/segments": float(n)}
