"""Models for the demo: device choice, and loading a mel or MIDI model once without ever failing the page.

A model that cannot be loaded gives ``(None, message)``; the app shows the message in that model's tabs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..errors import AudioVAEError
from ..models.protocol import LatentModel

DEFAULT_MODELS = {"mel": "default-mel", "midi": "default-midi"}
FLAGS = {"mel": "--mel-model", "midi": "--midi-model"}
KIND_NAMES = {"mel": "mel VAE (audio)", "midi": "MIDI CVAE (piano roll)"}
MODALITIES = {"mel": "audio", "midi": "midi"}


def device_label(device: torch.device) -> str:
    """"CPU" or "CUDA (NVIDIA H100 80GB HBM3)": what the page says it runs on."""
    if device.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(device)})"
    return "CPU"


def is_kind(model, kind: str) -> bool:
    """Whether ``model`` serves the demo's ``kind`` ("mel": an audio model, "midi": a MIDI model)."""
    return isinstance(model, LatentModel) and model.modality == MODALITIES[kind]


@dataclass
class LoadedModel:
    """``model`` in eval mode on the demo's device, or None with ``message`` saying what is missing."""

    kind: str
    model: torch.nn.Module | None
    source: str
    message: str = ""
    vocoder: str = "auto"  # mel models: how their log-mels become sound (see audiovae.inference.vocoder_for)


def load_demo_model(spec, kind: str, device: torch.device) -> LoadedModel:
    """spec: a loaded model, a checkpoint/run folder, or None (the bundled default for ``kind``, "mel"/"midi")."""
    from .. import load

    if isinstance(spec, torch.nn.Module):
        model = spec.to(device).eval()
        source = str(getattr(spec, "checkpoint_path", None) or type(spec).__name__)
    else:
        source = os.fspath(spec) if spec is not None else DEFAULT_MODELS[kind]
        try:
            model = load(source, device=device)
        except (AudioVAEError, OSError, ValueError, KeyError, RuntimeError) as exc:
            return LoadedModel(kind, None, source, _missing(kind, f"could not load {source!r}: {exc}"))
    if not is_kind(model, kind):
        return LoadedModel(kind, None, source,
                           _missing(kind, f"{source} holds a {type(model).__name__}, not a {KIND_NAMES[kind]} model"))
    return LoadedModel(kind, model, source)


def _missing(kind: str, why: str) -> str:
    flag = FLAGS[kind]
    return (f"No {KIND_NAMES[kind]} model is loaded: {why}. Start the demo with `audiovae demo {flag} PATH` "
            f"(a run folder or a checkpoint folder), or pass it to `build_demo({kind}_model=PATH)`.")
