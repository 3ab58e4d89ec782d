"""Recipes: TOML files mapped onto dataclasses, with `base = "other.toml"` inheritance and `--set a.b=c` overrides.

Models never import this module; :func:`audiovae.train.tasks` turn a recipe into plain model keyword arguments.
"""
from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..audio.features import MelConfig
from ..errors import ConfigError, ParameterError

TASKS = ("mel_vae", "midi_cvae", "mel_prior", "vocoder", "mel_vqvae", "mel_vqvae_prior")


@dataclass
class DataConfig:
    """Where the data is and how it is cut. Audio keys apply to mel_vae and vocoder, MIDI keys to midi_cvae."""

    path: str | list[str] | None = None  # the data folder, or several (audio) pooled by genre name (usually --data)
    cache_dir: str | None = None        # default: <run>/cache; never inside the data folder
    val_fraction: float = 0.1           # share of recordings (audio) or pieces (MIDI) held out
    split_group: str = "file"           # audio: what one recording is, for the split: "file", "parent" (its
                                        # folder) or "regex:<pattern>" (the match in the path names it)
    length_weighted: bool = False       # audio: draw training crops in proportion to each recording's length
    labels: bool = True                 # genre labels from first-level subfolders
    workers: int = 2                    # preprocessing processes (0 = in-process)
    crop_frames: int = 128              # audio: training crop, mel frames
    normalization: Literal["peak", "loudness", "none"] = "peak"  # audio: per-clip level normalisation
    min_seconds: float = 0.5            # audio: shorter files are skipped
    steps_per_quarter: int = 4          # MIDI grid
    pitch_low: int = 21
    pitch_high: int = 108
    segment_bars: int = 4
    beats_per_bar: int = 4
    hop_bars: int = 2                   # MIDI: segment hop
    transpose: int = 0                  # MIDI: random transposition in [-k, k] semitones (training only)

    def __post_init__(self):
        if self.split_group not in ("file", "parent") and not self.split_group.startswith("regex:"):
            raise ConfigError(f'data.split_group must be "file", "parent" or "regex:<pattern>", got '
                              f"{self.split_group!r}")


@dataclass
class LossConfig:
    beta: float = 1.0                   # KL weight after warm-up
    beta_warmup_steps: int = 1000       # linear warm-up from 0
    free_bits: float = 0.0              # nats per latent channel (per position) below which KL is free
    spectral_weight: float = 0.0        # mel: weight of a spectral-convergence term on mel magnitudes
    stft_weight: float = 1.0            # vocoder: weight of the multi-resolution STFT distance
    mel_weight: float = 1.0             # vocoder: weight of the log-mel L1 of the output
    adversarial: bool = False           # vocoder: add multi-period + multi-resolution discriminators (GPU runs)
    adversarial_weight: float = 1.0     # vocoder: least-squares GAN loss of the generator
    feature_weight: float = 2.0         # vocoder: discriminator feature matching


@dataclass
class TrainConfig:
    """How long and how fast to train.

    ``schedule`` says what the learning rate follows after its linear warm-up over ``warmup_steps`` steps:
    "steps": cosine decay over steps ``warmup_steps .. max_steps - 1``; the run ends at max_steps (or earlier at
    the time limit, wherever the decay then is).
    "time": cosine decay over the fraction of ``time_limit_minutes`` used (train_seconds / (60 * minutes)), or of
    max_steps when that is larger, so whichever ends the run also ends the decay: the last step always runs at
    lr * lr_min_ratio. The warm-up ramp (still in steps) multiplies the cosine. Needs time_limit_minutes > 0.
    """

    max_steps: int = 10000              # the run never goes past this step ("time": a cap only)
    batch_size: int = 32                # global batch; split across ranks under torchrun
    lr: float = 3e-4                    # peak learning rate, reached at the end of the warm-up
    lr_min_ratio: float = 0.1           # cosine decay to lr * lr_min_ratio on the last step
    warmup_steps: int = 200             # linear learning-rate warm-up, in optimizer steps (both schedules)
    schedule: Literal["steps", "time"] = "steps"  # what the cosine decay follows: steps or the time limit
    weight_decay: float = 0.01
    grad_clip: float = 1.0              # max global gradient norm (0 = no clipping)
    seed: int = 0
    device: str = "auto"                # auto | cpu | cuda | cuda:N
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto = bf16 autocast on GPU, fp32 on CPU
    threads: int = 0                    # torch CPU threads (0 = torch default)
    num_workers: int = 0                # DataLoader workers
    log_every: int = 25                 # steps between metrics.jsonl lines (the last step is always logged)
    val_every: int = 500                # steps between validations
    checkpoint_every: int = 250         # steps between checkpoints (the last step always gets one)
    sample_every: int = 1000            # steps between sample folders (0 = none until the final one)
    keep_checkpoints: int = 2
    max_nonfinite: int = 10             # consecutive non-finite steps that stop the run
    time_limit_minutes: float = 0.0     # stop (with a checkpoint) after this much training, wall clock; 0 = none
    stop_on_plateau: int = 0            # stop after this many validations in a row without a better main
                                        # validation figure (the task's monitor); 0 = never
    ema_decay: float = 0.0              # > 0: validate and publish an exponential moving average of the
                                        # weights with this decay per step (e.g. 0.999); 0 = the last weights

    def __post_init__(self):
        if self.schedule == "time" and not self.time_limit_minutes > 0:
            raise ConfigError(f'train.schedule = "time" needs a positive train.time_limit_minutes (got '
                              f'{self.time_limit_minutes}): set one, e.g. --set train.time_limit_minutes=30, or use '
                              'train.schedule = "steps"')
        for name in ("max_steps", "batch_size", "log_every", "val_every", "checkpoint_every", "max_nonfinite"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "sample_every", "time_limit_minutes", "stop_on_plateau", "threads",
                     "num_workers", "grad_clip"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in [0, 1) (0 = off), got {self.ema_decay}")


@dataclass
class Recipe:
    """A whole recipe. ``mel`` is the typed front end from the recipe to the model, the cache and the vocoder;
    it becomes a dict only when the recipe is written out as JSON or TOML (:meth:`to_dict`)."""

    task: str = "mel_vae"
    mel: MelConfig = field(default_factory=MelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: dict = field(default_factory=dict)   # plain keyword arguments of the model class
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def mel_config(self) -> MelConfig:
        """The front end (the same object as ``mel``)."""
        return self.mel


_SECTIONS = {"mel": MelConfig, "data": DataConfig, "loss": LossConfig, "train": TrainConfig}


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


def _type_name(annotation) -> str:
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(c) for c in typing.get_args(annotation))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "nothing (leave the key out)"
    if annotation is bool:
        return "bool (true or false)"
    if typing.get_origin(annotation) in (list, tuple):
        args = typing.get_args(annotation)
        return typing.get_origin(annotation).__name__ + (f"[{_type_name(args[0])}]" if args else "")
    return getattr(annotation, "__name__", str(annotation))


_MISMATCH = object()


def _coerce(value, annotation):
    """``value`` as ``annotation`` (int -> float widened, integral float -> int), or _MISMATCH."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin is Literal:
        return value if any(type(value) is type(c) and value == c for c in args) else _MISMATCH
    if origin in (typing.Union, types.UnionType):
        for option in args:
            converted = _coerce(value, option)
            if converted is not _MISMATCH:
                return converted
        return _MISMATCH
    if annotation is type(None):
        return None if value is None else _MISMATCH
    if annotation is bool:
        return value if isinstance(value, bool) else _MISMATCH
    if isinstance(value, bool):  # bool is an int subclass in Python; true/false is never a number here
        return _MISMATCH
    if annotation is float:
        return float(value) if isinstance(value, (int, float)) else _MISMATCH
    if annotation is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)  # 1e4 reads as a float in TOML
        return value if isinstance(value, int) else _MISMATCH
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return _MISMATCH
        item = args[0] if args else Any
        items = [_coerce(v, item) for v in value]
        return _MISMATCH if any(v is _MISMATCH for v in items) else origin(items)
    cls = origin or annotation
    return value if isinstance(cls, type) and isinstance(value, cls) else _MISMATCH


def check_fields(section_name: str, cls: type, values: dict) -> dict:
    """Check a recipe section's ``values`` against the fields of dataclass ``cls``; return them converted.

    Unknown keys are refused with the list of known ones. Each value must fit its field's annotation: ``float``
    takes ints too (converted), ``int`` takes integral floats such as 1e4 (converted), ``bool`` and numbers never
    stand in for each other, ``X | None`` also takes None, ``Literal["a", "b"]`` lists the allowed strings and
    ``list[X]`` checks every item. A mismatch raises ConfigError naming ``section.key``, what it expects, the
    value it got and the default as an example.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    bad = set(values) - set(fields)
    if bad:
        raise ConfigError(f"[{section_name}] has unknown key(s) {sorted(bad)}; known: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    out = {}
    for key, value in values.items():
        converted = _coerce(value, hints[key])
        if converted is _MISMATCH:
            default = fields[key].default
            try:
                example = f"; e.g. {section_name}.{key} = {_toml_value(default)} (the default)"
            except ConfigError:  # no default, or one TOML cannot spell (None, a table)
                example = ""
            raise ConfigError(f"{section_name}.{key} expects {_type_name(hints[key])}, got {value!r} "
                              f"({type(value).__name__}){example}")
        out[key] = converted
    return out


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
    for name, cls in _SECTIONS.items():
        section = tree.get(name, {})
        if not isinstance(section, dict):
            raise ConfigError(f"[{name}] must be a table of keys, got {section!r}")
        values = check_fields(name, cls, section)
        if name == "mel" and values.get("f_max", MelConfig.f_max) is None:
            values["f_max"] = values.get("sample_rate", MelConfig.sample_rate) / 2  # TOML has no null: spell out
        try:
            kwargs[name] = cls(**values)
        except ParameterError as exc:  # MelConfig's own range checks
            raise ConfigError(f"[{name}]: {exc}") from exc
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
