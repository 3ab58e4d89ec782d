"""Blending two encoded inputs: in the latent space itself, or in the prior's noise space.

Latent slerp/lerp moves z from A to B directly. With a learned prior (z = f(eps, genre)), z is not distributed
evenly: where one recording's latent sits, the prior may be dense or sparse, so the half-way latent of a plain
slerp can still decode as mostly A. ``method="noise"`` maps each latent to the prior's noise under its own genre
(eps ~ N(0, I) by construction), slerps the noise, and maps the result back under the mixed genre: an even
path through the prior's own coordinates.
"""
from __future__ import annotations

import torch

from ..errors import ParameterError
from ..genres import as_weights
from .interpolation import interpolate

BLEND_METHODS = ("slerp", "lerp", "noise")


def mixed_condition(model, cond_a: torch.Tensor | None, cond_b: torch.Tensor | None, alpha: float
                    ) -> torch.Tensor | None:
    """(1 - alpha) * cond_a + alpha * cond_b as mixture weights FloatTensor[B, G]; genre ids LongTensor[B] or
    weights FloatTensor[B, G] in; None when either is None (decode with "no genre") or the model is unconditional."""
    if cond_a is None or cond_b is None or not model.conditions:
        return None
    return (1 - alpha) * as_weights(model, cond_a) + alpha * as_weights(model, cond_b)


def latent_blend(model, z_a: torch.Tensor, z_b: torch.Tensor, alpha: float, *, method: str = "slerp",
                 cond_a: torch.Tensor | None = None, cond_b: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Blend z_a and z_b (Tensor[B, *latent_shape], the same shape) at ``alpha`` (0 = A, 1 = B); returns
    ``(z, cond)`` for ``model.decode(z, cond)``, cond being the genre mixture (see :func:`mixed_condition`).

    method: "slerp" / "lerp" on z (each latent frame's channel vector for temporal latents), or "noise": slerp in
    the prior's noise space (see the module docstring; the same as "slerp" under a standard-normal prior).
    The blend goes through ``model.project_latent``: a VQ model quantises it again (blend its pre-quantisation
    vectors, ``encode(x).mean``, for a path between the clips' own encoder outputs).
    """
    if method not in BLEND_METHODS:
        raise ParameterError(f"unknown blend method {method!r}; choose one of {', '.join(BLEND_METHODS)}")
    if z_a.shape != z_b.shape:
        raise ParameterError(f"latents {tuple(z_a.shape)} and {tuple(z_b.shape)} must have the same shape "
                             "(align clips of unequal length first: latent.align_latents)")
    cond = mixed_condition(model, cond_a, cond_b, alpha)
    if method != "noise":
        return model.project_latent(interpolate(z_a, z_b, alpha, method=method, dim=1)), cond
    with torch.no_grad():
        eps_a, eps_b = model.noise_from_latent(z_a, cond_a), model.noise_from_latent(z_b, cond_b)
        return model.latent_from_noise(interpolate(eps_a, eps_b, alpha, method="slerp", dim=1), cond), cond
