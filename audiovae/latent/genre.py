"""Genre centroids, attribute vectors and genre blending, over the model protocol.

A model can be moved toward a genre in two ways, and :func:`blend_genres` picks the one that fits:

- **Through the condition** (conditional models, ``model.conditions`` non-empty). The decoder takes the genre as
  an input; a blend of genres is a mixture of their learned embeddings (mixture weights FloatTensor[1, G] given to
  ``decode(z, cond)``, see :func:`condition_weights`). z stays as it is: it keeps what the clip or sample is
  (melody, rhythm, texture) while the condition says how it should sound.
- **Through the latent** (unconditional models, or on request). The genre lives in z itself. Each genre has a
  centroid, the average posterior mean of its examples (time-averaged for temporal latents), stored at training
  time in ``model.latent_stats["centroids"]`` or computed with :func:`centroids_from_folder`. Moving from genre a
  to b adds ``amount * (centroid[b] - centroid[a])`` (:func:`attribute_vector`) to z, the same vector at every
  latent frame; z is then decoded with no condition.

Centroid vectors are Tensor[C] (C = ``model.latent_shape[0]``: channels of a temporal latent, or the whole
vector of a vector latent). Latents are Tensor[..., *latent_shape] (a leading batch axis is optional).
"""
from __future__ import annotations

from collections.abc import Iterable

import torch

from ..device import model_device
from ..errors import ConfigError, ParameterError
from ..genres import condition_weights
from .sampling import time_axes

PATHS = ("auto", "condition", "centroid")


def genre_centroids(model) -> dict[str, torch.Tensor]:
    """The per-genre centroids stored with the model: {genre: Tensor[C]} on the model's device."""
    stats = model.latent_stats or {}
    stored = stats.get("centroids")
    if not stored:
        missing = "latent_stats is empty" if not stats else "latent_stats has no 'centroids'"
        raise ConfigError(f"this model carries no genre centroids ({missing}: it was trained without genre labels "
                          "or saved without latent statistics); compute them from labelled examples with "
                          "centroids_from_folder(model, items)")
    size = model.latent_shape[0]
    device = model_device(model)
    out = {}
    for genre, values in stored.items():
        vector = torch.as_tensor(values, dtype=torch.float32, device=device)
        if vector.shape != (size,):
            raise ConfigError(f"the stored centroid of {genre!r} has shape {tuple(vector.shape)}; this model's "
                              f"latent needs ({size},)")
        out[genre] = vector
    return out


@torch.no_grad()
def centroids_from_folder(model, items: Iterable[tuple[torch.Tensor, str]]) -> dict[str, torch.Tensor]:
    """Genre centroids from labelled examples, for models saved without them: {genre: Tensor[C]}, sorted by name.

    items: (x, genre name) pairs, x one model input without a batch axis (a log-mel Tensor[n_mels, frames] for a
    mel VAE, a roll Tensor[2, S, P] for the MIDI CVAE). Each is encoded with no genre condition, so every genre
    lands in one comparable space (as the stored centroids are); its posterior mean, averaged over time for
    temporal latents, counts once toward its genre's centroid.
    """
    device = model_device(model)
    axes = tuple(range(-time_axes(model), 0))
    per_genre: dict[str, list[torch.Tensor]] = {}
    for x, genre in items:
        mean = model.encode(torch.as_tensor(x, dtype=torch.float32, device=device)[None]).mean[0]
        per_genre.setdefault(str(genre), []).append(mean.mean(axes) if axes else mean)
    if not per_genre:
        raise ParameterError("centroids_from_folder got no items; give (x, genre name) pairs")
    return {g: torch.stack(v).mean(0) for g, v in sorted(per_genre.items())}


def _known(names, what: str = "genre") -> str:
    return ", ".join(names) or f"(none: the model has no {what}s)"


def attribute_vector(centroids: dict[str, torch.Tensor], a: str, b: str) -> torch.Tensor:
    """centroid[b] - centroid[a]: Tensor[C], the direction from genre a to genre b in latent space."""
    for name in (a, b):
        if name not in centroids:
            raise ConfigError(f"no centroid for genre {name!r}; known: {_known(list(centroids))}")
    return centroids[b] - centroids[a]


def _as_channel_vector(model, vector: torch.Tensor) -> torch.Tensor:
    """Tensor[C] -> Tensor[C, 1, ...] that broadcasts over z's time axes (and any leading batch axes)."""
    return vector.reshape(-1, *([1] * time_axes(model)))


def _time_average(model, z: torch.Tensor) -> torch.Tensor:
    axes = tuple(range(-time_axes(model), 0))
    return z.mean(axes, keepdim=True) if axes else z


def _check_latent(model, z: torch.Tensor) -> None:
    rank = len(model.latent_shape)
    if z.dim() not in (rank, rank + 1) or z.shape[-rank] != model.latent_shape[0]:
        raise ParameterError(f"z {tuple(z.shape)} does not fit this model's latent {tuple(model.latent_shape)} "
                             "(with an optional leading batch axis)")


def _project(model, z: torch.Tensor) -> torch.Tensor:
    """``model.project_latent`` on z with or without its leading batch axis (quantises a VQ model's latent)."""
    if z.dim() == len(model.latent_shape):
        return model.project_latent(z[None])[0]
    return model.project_latent(z)


def shift_latent(model, z: torch.Tensor, *, source: str | None, target: str, amount: float = 1.0,
                 centroids: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Move z: Tensor[..., *latent_shape] toward genre ``target`` along the centroid direction; same shape.

    With ``source``: z + amount * (centroid[target] - centroid[source]), the same vector at every latent frame.
    With source None (genre of z unknown): z + amount * (centroid[target] - time-average of z), so amount 1 puts
    z's average onto the target centroid while keeping its movement over time. Decode the result with no genre
    condition. Meant for unconditional models; it works on any model with centroids (default: the stored ones).
    The result goes through ``model.project_latent`` (a VQ model quantises it again).
    """
    _check_latent(model, z)
    centroids = genre_centroids(model) if centroids is None else centroids
    if source is None:
        if target not in centroids:
            raise ConfigError(f"no centroid for genre {target!r}; known: {_known(list(centroids))}")
        toward = _as_channel_vector(model, centroids[target]).to(z) - _time_average(model, z)
        return _project(model, z + amount * toward)
    return _project(model, z + amount * _as_channel_vector(model, attribute_vector(centroids, source, target)).to(z))


def blend_genres(model, z: torch.Tensor, weights: dict[str, float], *, source: str | None = None,
                 amount: float = 1.0, path: str = "auto", centroids: dict[str, torch.Tensor] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Steer z: Tensor[..., *latent_shape] toward a mixture of genres; returns ``(z', cond)`` for
    ``model.decode(z', cond)`` (mel models also take ``frames=``).

    weights: {genre: weight >= 0}, rescaled to sum to 1. ``amount`` in [0, 1] goes from where z is (0) to the
    mixture (1). path: "condition" blends the genre embeddings (z' = z; cond = mixture weights
    FloatTensor[B, G], mixed with ``source``'s one-hot by 1 - amount; amount < 1 needs ``source``);
    "centroid" moves z toward the weighted mean of the genre centroids (from ``centroids[source]``, or from z's
    time average when source is None; cond = None, the "no genre" condition); "auto" takes "condition" for
    conditional models and "centroid" otherwise. See the module docstring for the two paths.
    """
    if path not in PATHS:
        raise ParameterError(f"unknown blend path {path!r}; choose one of {', '.join(PATHS)}")
    _check_latent(model, z)
    if path == "auto":
        path = "condition" if model.conditions else "centroid"
    batch = z.shape[0] if z.dim() > len(model.latent_shape) else 1
    if path == "condition":
        mix = condition_weights(model, weights)
        if source is not None:
            mix = (1 - amount) * condition_weights(model, {source: 1.0}) + amount * mix
        elif amount != 1.0:
            raise ParameterError("a partial blend through the condition (amount < 1) needs the source genre")
        return z, mix.expand(batch, -1)
    centroids = genre_centroids(model) if centroids is None else centroids
    total = sum(float(w) for w in weights.values())
    for name, weight in weights.items():
        if name not in centroids:
            raise ConfigError(f"no centroid for genre {name!r}; known: {_known(list(centroids))}")
        if not float(weight) >= 0:
            raise ParameterError(f"the weight of {name!r} must be >= 0, got {weight}")
    if not total > 0:
        raise ParameterError(f"genre weights {weights} hold no positive weight")
    goal = _as_channel_vector(model, sum(float(w) / total * centroids[name] for name, w in weights.items())).to(z)
    if source is None:
        return _project(model, z + amount * (goal - _time_average(model, z))), None
    if source not in centroids:
        raise ConfigError(f"no centroid for genre {source!r}; known: {_known(list(centroids))}")
    return _project(model, z + amount * (goal - _as_channel_vector(model, centroids[source]).to(z))), None
