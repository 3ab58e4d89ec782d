"""Genre requests: the one parser for what a user types ("irish_fiddle", "baroque_chorale=0.7,irish_fiddle=0.3",
nothing) and the condition tensors models take for them. Both CLIs, the latent toolkit and the demo use it."""
from __future__ import annotations

import math

import torch

from .device import model_device
from .errors import ConfigError, ParameterError


class UnknownGenreError(ConfigError):
    """A genre name the model was not trained on; the message lists the known ones."""

    def __init__(self, name: str, known: list[str]):
        self.name, self.known = name, list(known)
        super().__init__(f"unknown genre {name!r}; this model knows: {', '.join(known) or '(none: unconditional)'}")


def parse_genre_request(spec: str | None) -> str | dict[str, float] | None:
    """Text -> None (no genre: None, "" or "none"), a genre name ("irish_fiddle"), or mixture weights
    ({"baroque_chorale": 0.7, "irish_fiddle": 0.3} from "baroque_chorale=0.7,irish_fiddle=0.3"; a name without
    "=w" weighs 1). Weights must be finite and >= 0 with a positive sum; they are not yet rescaled."""
    if spec is None or not spec.strip() or spec.strip().lower() == "none":
        return None
    spec = spec.strip()
    if "=" not in spec and "," not in spec:
        return spec
    weights: dict[str, float] = {}
    for part in spec.split(","):
        name, _, value = part.partition("=")
        name = name.strip()
        if not name:
            raise ConfigError(f"genre mixture {spec!r} has an empty name (write a=0.7,b=0.3)")
        try:
            weight = float(value) if value.strip() else 1.0
        except ValueError:
            raise ConfigError(f"genre weight {value.strip()!r} for {name} is not a number (write {name}=0.5)") from None
        if weight < 0 or not math.isfinite(weight):
            raise ConfigError(f"genre weight for {name} must be finite and >= 0, got {weight}")
        weights[name] = weights.get(name, 0.0) + weight
    if sum(weights.values()) <= 0:
        raise ConfigError(f"genre mixture {spec!r} has no positive weight")
    return weights


def check_genre(model, name: str) -> int:
    """The condition id of genre ``name``; ConfigError for an unconditional model, UnknownGenreError listing the
    known genres otherwise."""
    known = list(model.conditions)
    if not known:
        raise ConfigError(f"this model has no genre conditions; drop the genre {name!r}")
    if name not in known:
        raise UnknownGenreError(name, known)
    return known.index(name)


def condition_weights(model, weights: dict[str, float]) -> torch.Tensor:
    """Genre mixture weights FloatTensor[1, num_genres] on the model's device, rescaled to sum to 1.

    weights: {genre name: weight >= 0}; genres left out get 0. Give the result to ``model.decode(z, cond)`` to
    decode with the mixture of those genres' embeddings.
    """
    if not model.conditions:
        raise ConfigError("this model has no genre conditions; blend through the latent instead "
                          "(blend_genres(..., path='centroid') or shift_latent)")
    out = torch.zeros(1, len(model.conditions))
    for name, weight in weights.items():
        index = check_genre(model, name)
        weight = float(weight)
        if not (weight >= 0 and math.isfinite(weight)):
            raise ParameterError(f"the weight of {name!r} must be finite and >= 0, got {weight}")
        out[0, index] += weight
    total = float(out.sum())
    if total <= 0:
        raise ParameterError(f"genre weights {weights} hold no positive weight")
    return (out / total).to(model_device(model))


def as_weights(model, cond: torch.Tensor) -> torch.Tensor:
    """A condition as mixture weights FloatTensor[B, num_genres]: genre ids LongTensor[B] become one-hot rows,
    mixture weights pass through."""
    if cond.is_floating_point():
        return cond.float()
    return torch.nn.functional.one_hot(cond.long(), len(model.conditions)).float()


def genre_condition(model, request: str | dict[str, float] | None) -> torch.Tensor | None:
    """A model condition for a request (text as :func:`parse_genre_request` reads it, a name, or weights):
    None -> None ("no genre"); one genre -> LongTensor[1]; a mixture -> FloatTensor[1, num_genres] summing to 1.
    On the model's device; unknown names raise UnknownGenreError listing the known ones."""
    if isinstance(request, str) or request is None:
        request = parse_genre_request(request)
    if request is None:
        return None
    if isinstance(request, str):
        return torch.tensor([check_genre(model, request)], device=model_device(model))
    return condition_weights(model, request)
