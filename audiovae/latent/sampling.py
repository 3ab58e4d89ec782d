"""Prior samples shaped for any model of the protocol (``model.latent_shape``): noise eps ~ N(0, temperature^2 I),
mapped through the model's learned prior when it has one (``model.latent_from_noise(eps, cond)``)."""
from __future__ import annotations

import torch

from ..device import model_device
from ..errors import ParameterError


def time_axes(model) -> int:
    """How many axes of ``model.latent_shape`` follow the input's length (entries None): 1 for a mel VAE's
    (C, None), 0 for a vector latent (D,)."""
    return sum(size is None for size in model.latent_shape)


def prior_samples(model, n: int, *, temperature: float = 1.0, seed: int = 0, frames: int | None = None,
                  cond: torch.Tensor | None = None, guidance: float = 0.0) -> torch.Tensor:
    """``n`` draws from the prior: Tensor[n, *latent_shape] on the model's device, ready to decode with ``cond``.

    The noise is N(0, temperature^2 I), mapped through the model's prior ``model.latent_from_noise(noise, cond,
    guidance=guidance)`` (the identity for a standard-normal prior), where ``cond`` is the genre condition the
    samples will be decoded with (ids LongTensor[n] or [1], mixture weights, or None) and ``guidance`` the
    classifier-free guidance weight of a learned prior.

    frames: latent frames for temporal latents (``latent_shape`` holds None, e.g. a mel VAE's (C, None); a clip
    of F mel frames has ceil(F / time_downsample) latent frames); must be None for vector latents.
    The draw comes from a CPU ``torch.Generator`` seeded with ``seed``, so the same seed gives the same samples on
    every device, and changing ``temperature`` only scales them.
    """
    if n < 1:
        raise ParameterError(f"n must be >= 1, got {n}")
    if not temperature >= 0:
        raise ParameterError(f"temperature must be >= 0, got {temperature}")
    temporal = time_axes(model) > 0
    if temporal and frames is None:
        raise ParameterError(f"this model's latent {tuple(model.latent_shape)} follows the clip length; pass "
                             "frames= (latent frames, e.g. model.latent_frames(mel_frames))")
    if not temporal and frames is not None:
        raise ParameterError(f"this model's latent has the fixed shape {tuple(model.latent_shape)}; drop frames=")
    if temporal and frames < 1:
        raise ParameterError(f"frames must be >= 1, got {frames}")
    shape = tuple(frames if size is None else size for size in model.latent_shape)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    z = (torch.randn((n, *shape), generator=generator) * temperature).to(model_device(model))
    if cond is not None and cond.shape[0] == 1 and n > 1:
        cond = cond.expand(n, *cond.shape[1:])
    with torch.no_grad():
        return model.latent_from_noise(z, None if cond is None else cond.to(z.device), guidance=guidance)
