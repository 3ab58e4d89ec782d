"""Principal directions of a latent space: where the model's latent frames vary most, for sliders that move a clip.

A latent frame is one row of ``model.to_sequence(z)`` (a mel VAE's z Tensor[B, C, T'] has T' frames of C channels;
a vector latent is one frame). The directions are the principal axes of the frames of the model's own training
latents (posterior means, encoded with no genre), computed once and stored with the model as
``latent_stats["directions"]``::

    {"mean": [dim], "components": [k][dim] (unit vectors, largest variance first), "std": [k] (the spread of the
     frames along each component, latent units), "explained": [k] (fraction of the total variance), "frames": N,
     "source": "training latents" | "prior samples"}

Moving a latent by ``offsets[i]`` (in standard deviations, see :func:`move_along`) adds
``offsets[i] * std[i] * components[i]`` to every frame. A model saved without directions gets them on first use
from samples of its own prior (:func:`directions_from_prior`), kept in memory only.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from ..device import model_device
from ..errors import ParameterError
from .sampling import prior_samples, time_axes

DEFAULT_COUNT = 8          # directions kept per model
PRIOR_SAMPLES = 16         # prior draws of the fallback (per genre and "no genre")
PRIOR_FRAMES = 64          # latent frames per prior draw of the fallback


def principal_directions(model, latents: Iterable[torch.Tensor], *, count: int = DEFAULT_COUNT,
                         source: str = "training latents") -> dict:
    """The ``count`` principal axes of the latent frames in ``latents``, as the JSON-able dict of the module
    docstring.

    latents: Tensors shaped like one z (``model.latent_shape`` without batch, e.g. Tensor[C, T'] for a mel VAE) or
    batches of them (Tensor[B, *latent_shape]); all their frames are pooled. ``count`` is capped at the frame
    dimension. Raises ParameterError when there are fewer than two frames.
    """
    if count < 1:
        raise ParameterError(f"count must be >= 1, got {count}")
    rank = len(model.latent_shape)
    frames = []
    for z in latents:
        z = torch.as_tensor(z, dtype=torch.float32)
        z = z[None] if z.dim() == rank else z
        frames.append(model.to_sequence(z).reshape(-1, model.to_sequence(z).shape[-1]).detach().cpu().double())
    if not frames or sum(f.shape[0] for f in frames) < 2:
        raise ParameterError("principal_directions needs latents with at least two frames in all")
    pooled = torch.cat(frames)
    mean = pooled.mean(0)
    centred = pooled - mean
    covariance = centred.T @ centred / (pooled.shape[0] - 1)
    variances, vectors = torch.linalg.eigh(covariance)  # ascending
    order = torch.argsort(variances, descending=True)[: min(count, pooled.shape[1])]
    variances, vectors = variances[order].clamp_min(0.0), vectors[:, order].T
    # a sign convention, so recomputing gives the same slider directions: the largest entry of each is positive
    signs = torch.sign(vectors.gather(1, vectors.abs().argmax(1, keepdim=True))).squeeze(1)
    vectors = vectors * signs[:, None]
    total = float(torch.clamp(torch.diagonal(covariance).sum(), min=1e-12))
    return {"mean": mean.tolist(), "components": vectors.tolist(), "std": variances.sqrt().tolist(),
            "explained": (variances / total).tolist(), "frames": int(pooled.shape[0]), "source": source}


@torch.no_grad()
def directions_from_items(model, items: Iterable, *, count: int = DEFAULT_COUNT) -> dict:
    """Directions from model inputs: ``items`` yields x (one input without a batch axis, e.g. a log-mel
    Tensor[n_mels, frames]) or tuples whose second element is x (an AudioFolder's ``eval_items()``: (name, mel,
    genre)). Each is encoded with no genre and its posterior mean's frames are pooled. This is what training can call
    on its training split; :func:`audiovae.checkpoint.update_config` stores the result under latent_stats."""
    device = model_device(model)

    def latents():
        for item in items:
            x = item[1] if isinstance(item, tuple) else item
            yield model.encode(torch.as_tensor(x, dtype=torch.float32, device=device)[None]).mean[0].cpu()

    return principal_directions(model, latents(), count=count)


@torch.no_grad()
def directions_from_prior(model, *, count: int = DEFAULT_COUNT, samples: int = PRIOR_SAMPLES,
                          frames: int = PRIOR_FRAMES, seed: int = 0) -> dict:
    """Directions from draws of the model's own prior (temperature 1, every genre and "no genre"): the fallback
    for a model saved without them. Under a standard-normal prior these axes carry little meaning (every
    direction varies alike); a learned prior gives the directions its samples actually use."""
    from ..genres import condition_weights

    temporal = time_axes(model) > 0
    conds = [None] + [condition_weights(model, {g: 1.0}) for g in model.conditions]
    draws = [prior_samples(model, samples, seed=seed + i, frames=frames if temporal else None, cond=cond).cpu()
             for i, cond in enumerate(conds)]
    return principal_directions(model, draws, count=count, source="prior samples")


def latent_directions(model, *, count: int = DEFAULT_COUNT) -> dict:
    """The model's stored directions (``latent_stats["directions"]``), or ones computed from its prior on first
    use and kept in ``model.latent_stats`` (in memory; the model folder is not written)."""
    stats = model.latent_stats if isinstance(model.latent_stats, dict) else {}
    found = stats.get("directions")
    if not found or len(found.get("components", [])) < 1:
        found = directions_from_prior(model, count=count)
        model.latent_stats = {**stats, "directions": found}
    return found


def move_along(model, z: torch.Tensor, offsets: Sequence[float], directions: dict) -> torch.Tensor:
    """z (Tensor[B, *latent_shape]) moved by ``offsets[i]`` standard deviations along direction i, every frame
    alike; missing offsets count as 0, and so may extra ones (a model with fewer directions than sliders), but a
    non-zero offset beyond the known directions is refused. Same shape as z."""
    components = torch.tensor(directions["components"], dtype=z.dtype, device=z.device)  # [k, dim]
    std = torch.tensor(directions["std"], dtype=z.dtype, device=z.device)               # [k]
    offsets = [float(v) for v in offsets]
    known = components.shape[0]
    if any(offsets[known:]):
        raise ParameterError(f"an offset is given for direction {len(offsets)}, but only {known} directions are "
                             "known for this model")
    offsets = torch.tensor(offsets[:known], dtype=z.dtype, device=z.device)
    shift = (offsets * std[: offsets.numel()]) @ components[: offsets.numel()]         # [dim]
    sequence = model.to_sequence(z)
    if sequence.shape[-1] != shift.shape[0]:
        raise ParameterError(f"the directions have {shift.shape[0]} dimensions, the latent frames "
                             f"{sequence.shape[-1]}: they belong to another model")
    return model.from_sequence(sequence + shift)
