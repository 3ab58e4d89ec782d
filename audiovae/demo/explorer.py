"""The latent explorer's handlers: move a clip (or a prior sample) along the model's principal latent directions,
and decode a point of a 2-D pad whose four corners are clips or genres. Plain functions, no gradio.

Sources are encoded once and kept in a small cache (keyed by model, file, size and modification time, or by genre,
seed and length for prior samples), so a slider move costs one decode, one vocoder pass and one picture: about
0.2-0.3 s for a 10 s clip with ``default-mel`` on two CPU cores.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..audio.io import write_wav
from ..inference import model_mel_config
from ..latent import condition_weights, latent_directions, move_along, prior_samples
from ..latent.sampling import time_axes
from .handlers import (AudioResult, DemoInputError, MAX_SAMPLE_SECONDS, Progress, _check_range, _genre_or_none,
                       _encode, _picture, _report, _slug, _vocode, clip_samples, fresh_dir,
                       read_clip)

SLIDERS = 8                 # directions offered as sliders
MAX_OFFSET = 3.0            # slider range, standard deviations along a direction
CACHE_SIZE = 32             # encoded sources kept
CLIP_PREFIX, GENRE_PREFIX = "clip:", "genre:"


@dataclass
class Source:
    """An encoded starting point: z Tensor[1, *latent_shape], the condition to decode it with, its mel frames,
    the log-mel it stands for (the clip, or the decoded prior sample), a short name, and its length in samples at
    the model's rate."""

    z: torch.Tensor
    cond: torch.Tensor | None
    frames: int
    mel: torch.Tensor
    name: str
    samples: int


_cache: OrderedDict = OrderedDict()
_lock = threading.Lock()


def _cached(key, build):
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    value = build()
    with _lock:
        _cache[key] = value
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return value


@torch.no_grad()
def clip_source(model, path, *, label: str, max_seconds: float) -> Source:
    """An uploaded clip, checked like every upload (:func:`audiovae.demo.handlers.read_clip`) and encoded with
    no genre (posterior mean)."""
    if path is None or str(path) == "":
        raise DemoInputError(f"{label}: no audio given; upload a file or record one")
    path = Path(path)
    stat = path.stat() if path.is_file() else None
    key = (id(model), "clip", str(path), stat.st_size if stat else -1, stat.st_mtime_ns if stat else -1, max_seconds)

    def build():
        mel = read_clip(model, path, label=label, max_seconds=max_seconds)
        return Source(_encode(model, mel)[None], None, mel.shape[-1], mel, path.name, clip_samples(model, path))

    return _cached(key, build)


@torch.no_grad()
def prior_source(model, *, genre: str | None, seed: int, seconds: float) -> Source:
    """A prior sample of ``seconds`` under ``genre`` (None = no genre) at temperature 1, decoded once."""
    genre = _genre_or_none(model, genre)
    seconds = _check_range("seconds", seconds, 0.5, MAX_SAMPLE_SECONDS)
    key = (id(model), "prior", genre, int(seed), seconds)

    def build():
        config = model_mel_config(model)
        frames = config.num_frames(int(seconds * config.sample_rate))
        cond = condition_weights(model, {genre: 1.0}) if genre else None
        z = prior_samples(model, 1, seed=int(seed), frames=model.latent_frames(frames), cond=cond,
                          guidance=getattr(model, "guidance", 0.0))
        return Source(z, cond, frames, model.decode(z, cond, frames=frames)[0],
                      f"prior sample of {genre or 'no genre'}, seed {int(seed)}", int(seconds * config.sample_rate))

    return _cached(key, build)


def _offsets(offsets: Sequence[float]) -> list[float]:
    values = [_check_range(f"direction {i + 1}", v, -MAX_OFFSET, MAX_OFFSET) for i, v in enumerate(offsets)]
    if len(values) > SLIDERS:
        raise DemoInputError(f"give at most {SLIDERS} direction offsets, got {len(values)}")
    return values


@torch.no_grad()
def move_source(model, *, path=None, genre: str | None = None, seed: int = 0, seconds: float = 10.0,
                offsets: Sequence[float] = (), max_seconds: float = 30.0, vocoder: str = "auto",
                out_dir: str | os.PathLike, progress: Progress = None) -> AudioResult:
    """Move a clip (``path``) or, without one, a prior sample (``genre``, ``seed``, ``seconds``) by ``offsets[i]``
    standard deviations (-MAX_OFFSET..MAX_OFFSET) along the model's principal direction i
    (:func:`audiovae.latent.latent_directions`), decode and vocode it. The picture shows the start and the moved
    log-mel; the wav lasts as long as the start."""
    offsets = _offsets(offsets)
    _report(progress, 0.0, "encoding")
    source = (clip_source(model, path, label="The clip", max_seconds=max_seconds) if path
              else prior_source(model, genre=genre, seed=seed, seconds=seconds))
    directions = latent_directions(model)
    z = move_along(model, source.z, offsets, directions)
    mel = model.decode(z, source.cond, frames=source.frames)[0]
    _report(progress, 0.4, "vocoding")
    config = model_mel_config(model)
    out = fresh_dir(out_dir, "move")
    moved = ", ".join(f"{i + 1}: {v:+.1f}" for i, v in enumerate(offsets) if v) or "none"
    stem = _slug(Path(path).stem if path else f"prior_{genre or 'nogenre'}_seed{int(seed)}")
    audio = write_wav(out / f"{stem}_moved.wav", _vocode(model, mel, vocoder, source.samples), config.sample_rate)
    picture = _picture(out / "moved.png", [source.mel, mel], [f"start: {source.name}", f"moved ({moved})"], model)
    _report(progress, 1.0, "done")
    return AudioResult(picture, audio, f"Moved {source.name} along directions {moved} (standard deviations; "
                                       f"directions from {directions.get('source', 'the model')})")


def corner_choices(model, clips: dict[str, str | os.PathLike]) -> list[tuple[str, str]]:
    """(label, value) pairs a pad corner can be: each offered clip ("clip:<name>", ``clips`` maps names to files)
    and each genre's prior sample ("genre:<name>")."""
    return ([(f"clip: {name}", f"{CLIP_PREFIX}{name}") for name in clips]
            + [(f"genre: {g}", f"{GENRE_PREFIX}{g}") for g in model.conditions])


def corner_name(spec: str) -> str:
    """"rock (clip)" for "clip:rock", "jazz (genre)" for "genre:jazz": how the pad picture names a corner."""
    kind, _, name = str(spec).partition(":")
    return f"{name} ({kind})"


def _corner(model, spec: str, clips: dict, *, seconds: float, max_seconds: float) -> Source:
    spec = str(spec or "")
    if spec.startswith(CLIP_PREFIX):
        name = spec[len(CLIP_PREFIX):]
        if name not in clips:  # only the offered clips: a request never names a server file
            raise DemoInputError(f"unknown pad clip {name!r}; offered: {', '.join(clips) or '(none)'}")
        return clip_source(model, clips[name], label=f"Pad corner {name}", max_seconds=max_seconds)
    if spec.startswith(GENRE_PREFIX):
        return prior_source(model, genre=spec[len(GENRE_PREFIX):], seed=0, seconds=seconds)
    raise DemoInputError(f"a pad corner must be {CLIP_PREFIX}<name> or {GENRE_PREFIX}<name>, got {spec!r}")


@torch.no_grad()
def pad_point(model, corners: Sequence[str], *, x: float, y: float, clips: dict | None = None, seconds: float = 10.0,
              max_seconds: float = 30.0, vocoder: str = "auto", out_dir: str | os.PathLike,
              progress: Progress = None) -> AudioResult:
    """Decode the point (x, y) of the unit square whose corners (bottom-left, bottom-right, top-left, top-right)
    are ``corners`` ("clip:<name>" of ``clips`` {name: file}, or "genre:<name>"; see :func:`corner_choices`): z is
    the bilinear mix
    (1-x)(1-y) z_bl + x(1-y) z_br + (1-x)y z_tl + xy z_tr of the corners' latents, cropped to the shortest.
    Genre corners decode under their genre; the point decodes under those genres' mixture, weighted like their
    latents, when they hold at least half the weight, else with no genre. The picture is the pad with the point."""
    from .plots import pad_picture

    if len(corners) != 4:
        raise DemoInputError(f"the pad needs four corners, got {len(corners)}")
    x, y = _check_range("x", x, 0.0, 1.0), _check_range("y", y, 0.0, 1.0)
    _report(progress, 0.0, "encoding the corners")
    sources = [_corner(model, c, clips or {}, seconds=seconds, max_seconds=max_seconds) for c in corners]
    weights = [(1 - x) * (1 - y), x * (1 - y), (1 - x) * y, x * y]
    latents = [s.z for s in sources]
    if time_axes(model) > 0:  # crop every corner to the shortest (mel VAE: the last axis is time)
        shortest = min(z.shape[-1] for z in latents)
        latents = [z[..., :shortest] for z in latents]
    z = sum(w * zi for w, zi in zip(weights, latents))
    genre_weights: dict[str, float] = {}
    for spec, w in zip(corners, weights):
        if str(spec).startswith(GENRE_PREFIX):
            name = str(spec)[len(GENRE_PREFIX):]
            genre_weights[name] = genre_weights.get(name, 0.0) + w
    total = sum(genre_weights.values())
    cond = (condition_weights(model, {g: w / total for g, w in genre_weights.items() if w > 0})
            if total >= 0.5 else None)
    frames = min(s.frames for s in sources)
    mel = model.decode(z, cond, frames=frames)[0]
    _report(progress, 0.5, "vocoding")
    config = model_mel_config(model)
    out = fresh_dir(out_dir, "pad")
    audio = write_wav(out / f"pad_x{x:.2f}_y{y:.2f}.wav",
                      _vocode(model, mel, vocoder, min(s.samples for s in sources)), config.sample_rate)
    names = [corner_name(c) for c in corners]
    picture = pad_picture(names, (x, y), out / "pad.png")
    _report(progress, 1.0, "done")
    mix = ", ".join(f"{n} {w:.2f}" for n, w in zip(names, weights) if w > 0.005)
    return AudioResult(picture, audio, f"Pad point x = {x:.2f}, y = {y:.2f}: {mix}")
