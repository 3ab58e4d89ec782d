"""Recipes: TOML files mapped onto dataclasses, with `base = "other.toml"` inheritance and `--set a.b=c` overrides.

Models never import this module; :func:`audiovae.train.tasks` turn a recipe into plain model keyword arguments.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..audio.features import MelConfig
from ..errors import ConfigError

TASKS = ("mel_vae", "midi_cvae")


@dataclass
class DataConfig:
    """Where the data is and how it is cut. Audio keys apply to mel_vae, MIDI keys to midi_cvae."""

    path: str | None = None             # the data folder (usually given by --data)
    cache_dir: str | None = None        # default: <run>/cache; never inside the data folder
    val_fraction: float = 0.1           # share of files (audio) or pieces (MIDI) held out, split by file
    labels: bool = True                 # genre labels from first-level subfolders
    workers: int = 2                    # preprocessing processes (0 = in-process)
    crop_frames: int = 128              # audio: training crop, mel frames
    normalization: str = "peak"         # audio: peak | loudness | none
    min_seconds: float = 0.5            # audio: shorter files are skipped
    steps_per_quarter: int = 4          # MIDI grid
    pitch_low: int = 21
    pitch_high: int = 108
    segment_bars: int = 4
    beats_per_bar: int = 4
    hop_bars: int = 2                   # MIDI: segment hop
    transpose: int = 0                  # MIDI: random transposition in [-k, k] semitones (training only)


@dataclass
class LossConfig:
    beta: float = 1.0                   # KL weight after warm-up
    beta_warmup_steps: int = 1000       # linear warm-up from 0
    free_bits: float = 0.0              # nats per latent channel (per position) below which KL is free
    spectral_weight: float = 0.0        # mel: weight of a spectral-convergence term on mel magnitudes


@dataclass
class TrainConfig:
    max_steps: int = 10000
    batch_size: int = 32                # global batch; split across ranks under torchrun
    lr: float = 3e-4
    lr_min_ratio: float = 0.1           # cosine decay to lr * lr_min_ratio at max_steps
    warmup_steps: int = 200             # linear learning-rate warm-up
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"                # auto | cpu | cuda | cuda:N
    precision: str = "auto"             # auto (bf16 autocast on GPU) | bf16 | fp32
    threads: int = 0                    # torch CPU threads (0 = torch default)
    num_workers: int = 0                # DataLoader workers
    log_every: int = 25
    val_every: int = 500
    checkpoint_every: int = 250
    sample_every: int = 1000
    keep_checkpoints: int = 2
    max_nonfinite: int = 10             # consecutive non-finite steps that stop the run
    time_limit_minutes: float = 0.0     # stop (with a checkpoint) after this much training; 0 = no limit


@dataclass
class Recipe:
    task: str = "mel_vae"
    mel: dict = field(default_factory=lambda: MelConfig().to_dict())
    data: DataConfig = field(default_factory=DataConfig)
    model: dict = field(default_factory=dict)   # plain keyword arguments of the model class
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def mel_config(self) -> MelConfig:
        return MelConfig(**self.mel)


_SECTIONS = {"data": DataConfig, "loss": LossConfig, "train": TrainConfig}


def _merge(base: dict, delta: dict) -> dict:
    out = dict(base)
    for key, value in delta.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_toml_tree(path: str | Path, _seen: tuple = ()) -> dict:
    """Read a recipe file, resolving ``base = "file.toml"`` (relative to the file) recursively."""
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError(f"recipe inheritance loops through {path}")
    try:
        tree = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"recipe {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"recipe {path} is not valid TOML: {exc}") from exc
    base = tree.pop("base", None)
    if base:
        tree = _merge(read_toml_tree(path.parent / base, _seen + (path,)), tree)
    return tree


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=1e-3"`` -> (["train", "lr"], 0.001). Values are TOML literals; bare words are strings."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.strip().split("."), value


def apply_overrides(tree: dict, overrides: list[str]) -> dict:
    tree = _merge({}, tree)
    for text in overrides:
        keys, value = parse_override(text)
        node = tree
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {k} is not a section")
        node[keys[-1]] = value
    return tree


def recipe_from_tree(tree: dict) -> Recipe:
    """Validate a merged tree into a Recipe; unknown sections or keys are errors that list the known ones."""
    tree = dict(tree)
    unknown = set(tree) - {"task", "mel", "data", "model", "loss", "train"}
    if unknown:
        raise ConfigError(f"unknown recipe section(s) {sorted(unknown)}; known: task, mel, data, model, loss, train")
    task = tree.get("task", "mel_vae")
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    kwargs: dict[str, Any] = {"task": task, "model": dict(tree.get("model", {}))}
    mel = MelConfig().to_dict() | dict(tree.get("mel", {}))
    if mel.get("f_max") is None:  # TOML has no null: spell "up to Nyquist" out so the saved recipe round-trips
        mel["f_max"] = mel["sample_rate"] / 2
    try:
        kwargs["mel"] = MelConfig(**mel).to_dict()
    except TypeError as exc:
        raise ConfigError(f"[mel]: {exc}; known keys: {', '.join(MelConfig().to_dict())}") from exc
    for name, cls in _SECTIONS.items():
        values = dict(tree.get(name, {}))
        known = {f.name for f in dataclasses.fields(cls)}
        bad = set(values) - known
        if bad:
            raise ConfigError(f"[{name}] has unknown key(s) {sorted(bad)}; known: {', '.join(sorted(known))}")
        kwargs[name] = cls(**values)
    return Recipe(**kwargs)


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    return recipe_from_tree(apply_overrides(read_toml_tree(path), list(overrides)))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} to TOML")


def recipe_to_toml(recipe: Recipe) -> str:
    """The resolved recipe as TOML (None values are left out: they mean "default")."""
    tree = recipe.to_dict()
    lines = [f"task = {_toml_value(tree.pop('task'))}"]
    for section, values in tree.items():
        lines.append(f"\n[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if v is not None]
    return "\n".join(lines) + "\n"
