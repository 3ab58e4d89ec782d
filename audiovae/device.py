"""The one device resolver: what "auto", "cpu", "cuda" or "cuda:N" means on this machine."""
from __future__ import annotations

import torch

from .errors import AudioVAEError


def resolve_device(device: str | torch.device | None = "auto", *, local_rank: int = 0) -> torch.device:
    """None or "auto" -> the GPU when torch sees one, else the CPU; anything else as given ("cpu", "cuda:1").

    A bare "cuda" means this process's GPU under torchrun (``local_rank``). Asking for CUDA on a machine without a
    visible GPU raises AudioVAEError with what to pass instead.
    """
    name = "auto" if device is None else str(device)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    try:
        resolved = torch.device(name)
    except RuntimeError:
        raise AudioVAEError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise AudioVAEError(f"device {name} was asked for but torch sees no CUDA GPU; use cpu or auto")
    return resolved


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's parameters (the CPU for a model without any)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))
