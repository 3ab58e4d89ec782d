"""Model folders: the one module that reads and writes them, and the registry of model classes they name.

A model folder holds ``config.json`` (what rebuilds the model) and ``model.safetensors`` (its weights). Loading
never unpickles anything and never imports :mod:`audiovae.train`: run checkpoints and resume state are the
trainer's business (:mod:`audiovae.train.checkpoint`).

config.json, format version 2, states each fact once::

    {"format": "audiovae-checkpoint", "format_version": 2,
     "model_class": "MelVAE", "model_args": {... constructor keywords, the mel front end and genres included ...},
     "latent_stats": {...}, ...anything a writer adds (recipe, training record, calibration)}

Version 1 folders (which also repeated ``conditions`` and ``frontend`` at the top level and ``n_mels`` beside the
front end) still load: :func:`migrate_config` turns them into version 2.

Every write is atomic (a temporary sibling folder renamed into place), so a process killed at any moment leaves
either the old or the new folder, never a torn one.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ._atomic import atomic_dir
from .errors import ConfigError

FORMAT = "audiovae-checkpoint"
FORMAT_VERSION = 2
LATEST = "LATEST"

# name -> (role, "module:attribute" or the class). Imported on first use, so loading one model imports only its
# own module. Roles: "latent" models satisfy audiovae.models.LatentModel; "judge" models are the genre
# classifiers that evaluation trains on real data; "vocoder" models turn log-mels into waveforms.
_REGISTRY: dict[str, tuple[str, str | type]] = {
    "MelVAE": ("latent", "audiovae.models.mel_vae:MelVAE"),
    "MelVQVAE": ("latent", "audiovae.models.mel_vqvae:MelVQVAE"),
    "PianoRollCVAE": ("latent", "audiovae.models.pianoroll_cvae:PianoRollCVAE"),
    "AudioGenreClassifier": ("judge", "audiovae.models.judges:AudioGenreClassifier"),
    "GenreClassifier": ("judge", "audiovae.models.judges:GenreClassifier"),
    "MelVocoder": ("vocoder", "audiovae.models.vocoder:MelVocoder"),
}
ROLES = ("latent", "judge", "vocoder")


def register_model(cls: type | None = None, *, role: str = "latent"):
    """Make ``cls`` loadable from model folders by its class name (usable as ``@register_model``)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")

    def register(klass: type) -> type:
        _REGISTRY[klass.__name__] = (role, klass)
        return klass

    return register if cls is None else register(cls)


def model_class(name: str) -> type:
    """The registered class called ``name``; ConfigError listing the known names otherwise."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model class {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    role, target = _REGISTRY[name]
    if isinstance(target, str):
        module, attribute = target.split(":")
        target = getattr(importlib.import_module(module), attribute)
        _REGISTRY[name] = (role, target)
    return target


def model_names(role: str | None = None) -> list[str]:
    """Registered class names, of one role ("latent" or "judge") or all."""
    return sorted(name for name, (r, _) in _REGISTRY.items() if role in (None, r))


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module under DistributedDataParallel and torch.compile wrappers."""
    while True:
        if isinstance(getattr(model, "module", None), torch.nn.Module):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), torch.nn.Module):
            model = model._orig_mod
        else:
            return model


def _jsonable(value):
    """Constructor arguments as JSON: dataclasses (MelConfig, RollConfig) become dicts, tuples lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def model_config(model: torch.nn.Module) -> dict:
    """The JSON-able description that rebuilds ``model``: class name, constructor keywords, latent stats."""
    model = unwrap(model)
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "model_class": type(model).__name__,
            "model_args": _jsonable(model.init_args), "latent_stats": _jsonable(model.latent_stats)}


def write_model_folder(folder: str | os.PathLike, model: torch.nn.Module, *, extra: dict | None = None,
                       train_state: dict | None = None) -> Path:
    """Write a complete model folder atomically (temporary sibling + rename). Returns ``folder``.

    extra: more JSON to store in config.json (a recipe, a training record). train_state: resume state, written
    as train_state.pt (plain tensors and dicts; the trainer's run checkpoints use it). An existing folder of the
    same name is replaced only after the new one is complete.
    """
    folder = Path(folder)
    with atomic_dir(folder, fsync=True) as tmp:
        plain = unwrap(model)
        config = model_config(plain) | _jsonable(extra or {})
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in plain.state_dict().items()}
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": FORMAT})
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        if train_state is not None:
            torch.save(train_state, tmp / "train_state.pt")
    return folder


def update_config(folder: str | os.PathLike, values: dict) -> Path:
    """Add or replace top-level keys of a model folder's config.json (atomically; the weights are untouched)."""
    from ._atomic import atomic_write_text

    folder = resolve(folder)
    config = read_config(folder) | _jsonable(values)
    atomic_write_text(folder / "config.json", json.dumps(config, indent=2, sort_keys=True))
    return folder


def resolve(path: str | os.PathLike) -> Path:
    """The model folder meant by ``path``: the folder itself; a run folder (its final model/, else its latest
    checkpoint); a run's checkpoints/ folder; or the name of a bundled model ("default-mel", "default-midi")."""
    from .pretrained import bundled_model_path, is_bundled_name

    if is_bundled_name(path):
        return bundled_model_path(path)
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    if (path / "model" / "config.json").is_file():
        return path / "model"
    for root in (path / "checkpoints", path):
        pointer = root / LATEST
        if pointer.is_file():
            target = root / pointer.read_text().strip()
            if (target / "config.json").is_file():
                return target
    raise ConfigError(f"{path} is not a model: expected config.json and model.safetensors in it, a run folder "
                      "with model/ or checkpoints/LATEST, or a bundled model name (default-mel, default-midi, "
                      "default-vocoder)")


def migrate_config(config: dict, *, source: str | os.PathLike = "config.json") -> dict:
    """A version 1 config as version 2: the repeated top-level ``conditions``/``frontend`` are dropped, and a
    mel model's ``n_mels`` argument, now derived from its front end, is checked against it and removed."""
    if config.get("format_version", 1) >= 2:
        return config
    config = dict(config)
    args = dict(config.get("model_args", {}))
    config.pop("conditions", None)
    frontend = config.pop("frontend", None)
    if "n_mels" in args and "frontend" in args:
        front = args["frontend"] or frontend or {}
        if front.get("n_mels", args["n_mels"]) != args["n_mels"]:
            raise ConfigError(f"{source}: n_mels {args['n_mels']} contradicts the front end's "
                              f"n_mels {front.get('n_mels')}")
        args.pop("n_mels")
    config["model_args"], config["format_version"] = args, 2
    return config


def read_config(folder: str | os.PathLike) -> dict:
    """config.json of a model folder, as version 2 (see :func:`migrate_config`)."""
    path = Path(folder) / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if config.get("format") != FORMAT:
        raise ConfigError(f"{path} is not an audiovae model (format={config.get('format')!r})")
    if config.get("format_version", 1) > FORMAT_VERSION:
        raise ConfigError(f"{path} has format version {config['format_version']}; this audiovae reads up to "
                          f"{FORMAT_VERSION}: upgrade audiovae")
    return migrate_config(config, source=path)


def load(path: str | os.PathLike, *, device: str | torch.device = "cpu", modality: str | None = None
         ) -> torch.nn.Module:
    """Rebuild the model in a model folder (see :func:`resolve`), load its weights, eval mode, on ``device``.

    modality: "audio" or "midi" to require a latent model of that kind (a clear error names what the folder
    holds instead); None takes any registered model, genre classifiers included.
    """
    from .device import resolve_device

    folder = resolve(path)
    config = read_config(folder)
    name = config.get("model_class")
    cls = model_class(name)
    kind = getattr(cls, "modality", None)
    if modality is not None and kind != modality:
        what = f"a {kind} model" if kind else "not a latent model"
        raise ConfigError(f"{path} holds a {name} ({what}); this needs a {modality} model")
    try:
        model = cls(**config["model_args"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{folder}/config.json does not rebuild a {name}: {exc}") from exc
    state = load_file(str(folder / "model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ConfigError(f"{folder}: weights do not fit {name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.latent_stats = config.get("latent_stats") or {}
    model.anomaly_calibration = config.get("anomaly_calibration")  # see audiovae.latent.anomaly.Calibration
    model.checkpoint_path = folder
    return model.to(resolve_device(device)).eval()
