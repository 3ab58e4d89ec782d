"""What the demo's buttons do, as plain functions: file paths and numbers in; paths (wav, PNG, .mid) and a status
line out. The latent explorer's handlers are in :mod:`audiovae.demo.explorer`.

No gradio here. Every problem a user can cause (a missing, empty, corrupt, silent or too long upload, a setting out
of range, an unknown genre) raises :class:`DemoInputError` or another :class:`~audiovae.errors.AudioVAEError` whose
message names the problem in plain words; the app shows it in the page. Outputs go to a fresh folder under
``out_dir`` per call, so concurrent requests never share a file.

``progress``: an optional callable ``progress(fraction in [0, 1], desc=str)`` (``gr.Progress`` fits).
"""
from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ..audio.io import write_wav
from ..errors import AudioReadError, AudioVAEError, ConfigError
from ..genres import check_genre
from ..inference import clip_to_mel, mel_to_waveform, model_mel_config
from ..latent import BLEND_METHODS, align_latents, blend_genres, condition_weights, latent_blend, prior_samples
from ..latent.align import ALIGN_MODES

STRIP_STEPS = 5            # alphas 0, 0.25, 0.5, 0.75, 1
STRIP_GAP_S = 0.3          # silence between the steps of a morph strip
OUTPUT_MAX_AGE_S = 3600.0  # output folders older than this are removed (gradio has copied them to its cache by then)
MAX_BARS = 64
MIN_TEMPO, MAX_TEMPO = 30.0, 300.0  # quarter notes per minute
MIDI_PREVIEW_RATE = 22050
MAX_SAMPLE_SECONDS = 30.0
ROUTES = ("condition", "centroid")
READABLE = "wav, flac, ogg, mp3 or aiff"

Progress = Callable[..., object] | None


class DemoInputError(AudioVAEError):
    """An upload or a setting the demo cannot use; the message says what is wrong and what to do."""


@dataclass
class BlendResult:
    """picture: PNG of the log-mels of A, B and the blend side by side; audio: the blend (wav); strip: the morph
    strip (wav, alphas 0..1 in STRIP_STEPS steps with STRIP_GAP_S s of silence between) or None; steps: each
    step of the strip as its own wav ([] without a strip); strip_picture: PNG of the strip with each step's start
    and α marked, or None; message: one status line."""

    picture: Path
    audio: Path
    strip: Path | None
    steps: list[Path]
    strip_picture: Path | None
    message: str


@dataclass
class AudioResult:
    """picture: PNG of the log-mel(s); audio: wav; message: one status line."""

    picture: Path
    audio: Path
    message: str


@dataclass
class MidiResult:
    """picture: piano-roll PNG; audio: preview wav; midi: the .mid; message: one status line."""

    picture: Path
    audio: Path
    midi: Path
    message: str


# --- small helpers -------------------------------------------------------------------------------------------
def _report(progress: Progress, fraction: float, desc: str) -> None:
    if progress is not None:
        progress(fraction, desc=desc)


def fresh_dir(out_dir: str | os.PathLike, prefix: str) -> Path:
    """A new empty folder under ``out_dir``; folders there older than OUTPUT_MAX_AGE_S are removed first."""
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - OUTPUT_MAX_AGE_S
    for old in root.iterdir():
        try:
            if old.is_dir() and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except FileNotFoundError:  # a concurrent call removed it first
            pass
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=root))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_") or "audio"


def _check_range(name: str, value, low: float, high: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise DemoInputError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise DemoInputError(f"{name} must be between {low:g} and {high:g}, got {value:g}")
    return value


def _check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise DemoInputError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _genre_or_none(model, genre: str | None) -> str | None:
    """"" and None mean no genre; a name must be one of the model's (the message lists them)."""
    if not genre:
        return None
    try:
        check_genre(model, genre)
    except ConfigError as exc:
        raise DemoInputError(str(exc)) from None
    return genre


def _picture(path: Path, mels, titles, model) -> Path:
    """A light PNG of log-mels side by side (see :mod:`audiovae.demo.plots`)."""
    from .plots import mel_panels

    return mel_panels(mels, titles, path, frames_per_second=model_mel_config(model).frames_per_second)


def release_gpu_memory() -> None:
    """Hand cached GPU memory back after a job (a no-op without CUDA), so a long-running demo does not hold it."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --- reading uploads -----------------------------------------------------------------------------------------
def read_clip(model, path: str | os.PathLike | None, *, label: str, max_seconds: float) -> torch.Tensor:
    """An uploaded or recorded clip as the model's log-mel Tensor[n_mels, frames] on the model's device.

    label: how the page names the input ("Clip A"). Raises DemoInputError for a missing, empty, unreadable,
    silent, too short or longer than ``max_seconds`` clip (the length is checked before decoding).
    """
    if path is None or str(path) == "":
        raise DemoInputError(f"{label}: no audio given; upload a file or record one")
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise DemoInputError(f"{label} ({name}) did not arrive; upload it again")
    if path.stat().st_size == 0:
        raise DemoInputError(f"{label} ({name}) is an empty file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        raise DemoInputError(f"{label} ({name}) is not an audio file this demo can read; use {READABLE}") from None
    if info.duration > max_seconds:
        raise DemoInputError(f"{label} ({name}) is {info.duration:.1f} s long; this demo takes clips of up to "
                             f"{max_seconds:g} s, so trim it and upload it again")
    try:
        return clip_to_mel(model, path, max_seconds=max_seconds)
    except AudioReadError as exc:
        reason = exc.reason
        if reason.startswith("not a readable audio file"):
            reason = f"is damaged or not audio this demo can read; use {READABLE}"
        elif reason == "silent":
            reason = "is silent"
        elif reason.startswith("too short"):
            reason = f"is {reason}"
        raise DemoInputError(f"{label} ({name}) {reason}") from None


def check_upload(model, path, *, label: str, max_seconds: float) -> str:
    """The check an upload gets the moment it arrives: :func:`read_clip`'s (not audio, empty, damaged, silent, too
    short, too long -> DemoInputError). Returns a status line for a good clip ("" when the input was cleared)."""
    if path is None or str(path) == "":
        return ""
    read_clip(model, path, label=label, max_seconds=max_seconds)
    seconds = clip_samples(model, path) / model_mel_config(model).sample_rate
    return f"{label} ({Path(path).name}): {seconds:.1f} s, ready"


def _encode(model, mel: torch.Tensor, cond=None) -> torch.Tensor:
    """log-mel Tensor[n_mels, frames] -> the posterior mean Tensor[C, latent_frames] (a Gaussian's mode; a VQ
    model's continuous encoder output, which its decoder quantises again)."""
    return model.encode(mel[None], cond).mean[0]


def _vocode(model, mel: torch.Tensor, vocoder: str, samples: int | None = None) -> np.ndarray:
    """log-mel [n_mels, frames] -> waveform float32 [samples]. A vocoder gives (frames - 1) * hop samples, up to a
    hop short of the clip the mel came from; ``samples`` pads (or trims) it to that length, so a 10 s clip comes
    back as 10 s and the page's players show the same duration as the input's."""
    wav = mel_to_waveform(model, mel, vocoder=vocoder)
    if samples is None:
        return wav
    return np.pad(wav, (0, samples - len(wav))) if len(wav) < samples else wav[:samples]


def clip_samples(model, path) -> int:
    """How many samples ``path`` lasts at the model's sample rate (what reading it resampled gives)."""
    info = sf.info(str(path))
    return int(round(info.frames * model_mel_config(model).sample_rate / info.samplerate))


# --- Blend ---------------------------------------------------------------------------------------------------
@torch.no_grad()
def blend_clips(model, path_a, path_b, *, alpha: float = 0.5, method: str = "slerp", align: str = "crop",
                strip: bool = False, max_seconds: float = 30.0, vocoder: str = "auto",
                out_dir: str | os.PathLike, progress: Progress = None) -> BlendResult:
    """Blend two clips in the mel VAE's latent space: z = interpolate(z_A, z_B, alpha) frame by frame.

    alpha: 0 = A, 1 = B. method: "slerp" or "lerp" of the latents, or "noise" (slerp in the noise space of the
    model's prior, see :func:`audiovae.latent.latent_blend`). align: how clips of unequal length meet ("crop" to the
    shorter, "loop" or "stretch" the shorter to the longer). strip: also render a morph strip, alphas 0..1 in
    STRIP_STEPS steps with STRIP_GAP_S s of silence between. The blend (and each strip step) lasts as long as the
    shorter clip for "crop", the longer otherwise, to the sample at the model's rate.
    """
    alpha = _check_range("α", alpha, 0.0, 1.0)
    method = _check_choice("the interpolation", method, BLEND_METHODS)
    align = _check_choice("the length alignment", align, ALIGN_MODES)
    _report(progress, 0.0, "reading clips")
    mel_a = read_clip(model, path_a, label="Clip A", max_seconds=max_seconds)
    mel_b = read_clip(model, path_b, label="Clip B", max_seconds=max_seconds)
    _report(progress, 0.2, "encoding")
    z_a, z_b = _encode(model, mel_a), _encode(model, mel_b)
    frames = (min if align == "crop" else max)(mel_a.shape[-1], mel_b.shape[-1])
    alphas = [alpha] + ([i / (STRIP_STEPS - 1) for i in range(STRIP_STEPS)] if strip else [])
    z_a, z_b = align_latents(z_a, z_b, mode=align)
    z = torch.cat([latent_blend(model, z_a[None], z_b[None], a, method=method)[0] for a in alphas])
    samples = (min if align == "crop" else max)(clip_samples(model, path_a), clip_samples(model, path_b))
    mels = model.decode(z, None, frames=frames)
    config = model_mel_config(model)
    out = fresh_dir(out_dir, "blend")
    _report(progress, 0.4, "vocoding the blend")
    blend_path = write_wav(out / f"blend_alpha{alpha:.2f}_{method}.wav", _vocode(model, mels[0], vocoder, samples),
                           config.sample_rate)
    strip_path, step_paths, strip_png = None, [], None
    if strip:
        gap = np.zeros(int(STRIP_GAP_S * config.sample_rate), np.float32)
        pieces = []
        for i, (a, mel) in enumerate(zip(alphas[1:], mels[1:])):
            _report(progress, 0.5 + 0.4 * i / STRIP_STEPS, f"vocoding morph step {i + 1}/{STRIP_STEPS}")
            wav = _vocode(model, mel, vocoder, samples)
            step_paths.append(write_wav(out / f"morph_step{i + 1}_alpha{a:.2f}_{method}.wav", wav,
                                        config.sample_rate))
            pieces += [wav, gap]
        strip_path = write_wav(out / f"morph_strip_{method}.wav", np.concatenate(pieces[:-1]), config.sample_rate)
        from .plots import strip_picture

        strip_png = strip_picture(mels[1:], alphas[1:], STRIP_GAP_S, out / "morph_strip.png",
                                  frames_per_second=config.frames_per_second,
                                  title=f"morph strip, A to B ({method}): each step starts at a dashed line")
    name_a, name_b = Path(path_a).name, Path(path_b).name
    picture = _picture(out / "blend.png", [mel_a, mel_b, mels[0]],
                       [f"A: {name_a}", f"B: {name_b}", f"blend α={alpha:.2f} ({method})"], model)
    seconds = samples / config.sample_rate
    message = (f"Blended {name_a} and {name_b} at α = {alpha:.2f} ({method}, {align}): {seconds:.1f} s"
               + (f"; morph strip of {STRIP_STEPS} steps of {seconds:.1f} s" if strip else ""))
    _report(progress, 1.0, "done")
    return BlendResult(picture, blend_path, strip_path, step_paths, strip_png, message)


# --- Explore -------------------------------------------------------------------------------------------------
@torch.no_grad()
def sample_prior(model, *, genre: str | None = None, seconds: float = 4.0, temperature: float = 1.0, seed: int = 0,
                 vocoder: str = "auto", out_dir: str | os.PathLike, progress: Progress = None) -> AudioResult:
    """Decode a prior sample of ``seconds`` under ``genre`` (None = no genre): noise N(0, temperature^2 I)
    mapped through the model's prior for that genre."""
    genre = _genre_or_none(model, genre)
    seconds = _check_range("seconds", seconds, 0.5, MAX_SAMPLE_SECONDS)
    temperature = _check_range("temperature", temperature, 0.0, 3.0)
    config = model_mel_config(model)
    frames = config.num_frames(int(seconds * config.sample_rate))
    _report(progress, 0.1, "sampling")
    cond = condition_weights(model, {genre: 1.0}) if genre else None
    z = prior_samples(model, 1, temperature=temperature, seed=int(seed), frames=model.latent_frames(frames), cond=cond,
                      guidance=model.guidance)
    mel = model.decode(z, cond, frames=frames)[0]
    _report(progress, 0.4, "vocoding")
    label = genre or "no genre"
    out = fresh_dir(out_dir, "sample")
    audio = write_wav(out / f"sample_{_slug(label)}_seed{int(seed)}.wav",
                      _vocode(model, mel, vocoder, int(seconds * config.sample_rate)),
                      config.sample_rate)
    picture = _picture(out / "sample.png", [mel], [f"prior sample: {label} (T={temperature:g}, seed {int(seed)})"],
                       model)
    _report(progress, 1.0, "done")
    message = f"Sampled {seconds:g} s of {label} at temperature {temperature:g}, seed {int(seed)}"
    if temperature == 0:
        message += " (at temperature 0 every seed gives the same sample)"
    return AudioResult(picture, audio, message)


@torch.no_grad()
def shift_clip(model, path, *, target: str, amount: float = 1.0, source: str | None = None,
               route: str = "condition", max_seconds: float = 30.0, vocoder: str = "auto",
               out_dir: str | os.PathLike, progress: Progress = None) -> AudioResult:
    """Move a clip toward genre ``target`` by ``amount`` in [0, 1] (0 = the clip's reconstruction).

    route "condition": encode with the clip's genre ``source`` (None = unknown), decode with the genre input
    moved from source to target (a partial shift needs ``source``). route "centroid": encode with no genre, add
    amount * (centroid[target] - centroid[source], or the clip's time-averaged latent when source is None) to z,
    decode with no genre. See :func:`audiovae.latent.blend_genres`.
    """
    if not model.conditions:
        raise DemoInputError("this model has no genres to shift toward")
    target = _genre_or_none(model, target)
    if target is None:
        raise DemoInputError("pick a target genre")
    source = _genre_or_none(model, source)
    amount = _check_range("the shift amount", amount, 0.0, 1.0)
    route = _check_choice("the route", route, ROUTES)
    if route == "condition" and source is None and amount < 1.0:
        raise DemoInputError("a partial shift through the genre input starts from the clip's own genre: pick the "
                             "clip's genre, set the amount to 1, or use the latent (centroid) route")
    _report(progress, 0.0, "reading the clip")
    mel = read_clip(model, path, label="The clip", max_seconds=max_seconds)
    _report(progress, 0.2, "encoding")
    source_cond = condition_weights(model, {source: 1.0}) if (source and route == "condition") else None
    z = _encode(model, mel, source_cond)
    try:
        z_new, cond = blend_genres(model, z[None], {target: 1.0}, source=source, amount=amount, path=route)
    except ConfigError as exc:  # e.g. a model saved without genre centroids
        raise DemoInputError(f"the {route} route does not work with this model: {exc}") from None
    shifted = model.decode(z_new, cond, frames=mel.shape[-1])[0]
    _report(progress, 0.5, "vocoding")
    config = model_mel_config(model)
    out = fresh_dir(out_dir, "shift")
    audio = write_wav(out / f"{_slug(Path(path).stem)}_to_{_slug(target)}_{amount:.2f}.wav",
                      _vocode(model, shifted, vocoder, clip_samples(model, path)), config.sample_rate)
    picture = _picture(out / "shift.png", [mel, shifted],
                       [f"clip: {Path(path).name}", f"{amount:.2f} toward {target} ({route})"], model)
    _report(progress, 1.0, "done")
    return AudioResult(picture, audio, f"Moved {Path(path).name} {amount:.2f} of the way toward {target} "
                                      f"through the {route} (from {source or 'unknown genre'})")


# --- Inspect -------------------------------------------------------------------------------------------------
@torch.no_grad()
def inspect_clip(model, path, *, threshold: float | None = None, max_seconds: float = 30.0,
                 out_dir: str | os.PathLike, progress: Progress = None) -> AudioResult:
    """Where an uploaded clip looks damaged: its mel above the calibrated anomaly curve with the flagged spans
    shaded (see :func:`audiovae.scoring.inspect_files`), and the worst span (or, when none is flagged, the worst
    1 s window) as audio to listen to, with 0.25 s of context on each side."""
    from ..audio.io import normalize, read_audio
    from ..audio.plots import anomaly_figure
    from ..audio.hum import mains_hum
    from ..scoring import calibration_of, inspect_mel

    try:
        calibration = calibration_of(model)
    except ConfigError as exc:
        raise DemoInputError(str(exc)) from exc
    if calibration is None:
        raise DemoInputError("this mel model has no anomaly calibration, so it cannot say what is typical; run "
                             "`audiovae calibrate MODEL --data DIR` on the folders it was trained on")
    threshold = calibration.threshold if threshold is None else _check_range("the threshold", threshold, 0.0, 50.0)
    _report(progress, 0.0, "reading the clip")
    mel = read_clip(model, path, label="The clip", max_seconds=max_seconds)
    config = model_mel_config(model)
    wav = normalize(read_audio(path, sample_rate=config.sample_rate)[0])
    _report(progress, 0.3, "scoring")
    found = inspect_mel(model, mel, path=path, threshold=threshold, hum=mains_hum(wav, config.sample_rate))
    curve, spans, rate = found.curve, found.spans, found.frames_per_second
    worst = max(spans, key=lambda s: s[2]) if spans else None
    if worst is None:
        centre = (int(curve.argmax()) + 0.5) / rate
        start, end = centre - 0.5, centre + 0.5
    else:
        start, end = worst[0], worst[1]
    a, b = max(0, int((start - 0.25) * config.sample_rate)), int((end + 0.25) * config.sample_rate)
    out = fresh_dir(out_dir, "inspect")
    name = Path(path).name
    audio = write_wav(out / f"{_slug(Path(path).stem)}_{start:.1f}-{end:.1f}s.wav", wav[a:b], config.sample_rate)
    import matplotlib.pyplot as plt

    figure = anomaly_figure(mel, curve, spans, threshold=threshold, frames_per_second=config.frames_per_second,
                            curve_rate=rate, title=name)
    picture = out / "inspect.png"
    figure.savefig(picture, dpi=80)
    plt.close(figure)
    _report(progress, 1.0, "done")
    whole = (f"the whole recording is atypical against the model's held-out recordings ({'; '.join(found.whole)}). "
             if found.whole else "")
    if spans:
        listed = ", ".join(f"{s:.1f}-{e:.1f} s (peak {p:.1f})" for s, e, p in spans)
        message = (f"{name}: {whole}{len(spans)} flagged span{'s' if len(spans) > 1 else ''} above {threshold:g} "
                   f"standard deviations: {listed}. Playing the worst one.")
    else:
        message = (f"{name}: {whole}No window above {threshold:g} standard deviations (worst window "
                   f"{float(curve.max()):.1f}). Playing the worst 1 s window.")
    return AudioResult(picture, audio, message)


# --- MIDI by genre -------------------------------------------------------------------------------------------
@torch.no_grad()
def generate_midi(model, *, genre: str | None, second_genre: str | None = None, mix: float = 0.0, bars: int = 8,
                  temperature: float = 0.8, seed: int = 0, tempo: float | None = None, program: int | None = None,
                  velocity: int | None = None, out_dir: str | os.PathLike, progress: Progress = None) -> MidiResult:
    """One MIDI piece of ``bars`` bars from the piano-roll CVAE under ``genre`` (None = no genre), or a mixture
    (1 - mix) * genre + mix * second_genre; writes .mid, a piano-roll .png (pitch axis cropped to the notes used
    plus a margin) and a preview .wav.

    tempo: quarter notes per minute (MIN_TEMPO..MAX_TEMPO), None = the genre's usual tempo. program: General MIDI
    program 0..127, None = the genre's usual instrument. velocity: None keeps what the model wrote (its predicted
    dynamics, or the fixed default of a model without them); 1..127 sets every note to that velocity.
    """
    import pretty_midi

    from ..midi.generate import empty_message, generate_pieces, genre_defaults, save_piece
    from ..midi.render import render_audio, save_roll_png
    from .plots import cropped_roll

    genre, second_genre = _genre_or_none(model, genre), _genre_or_none(model, second_genre)
    mix = _check_range("the mix weight", mix, 0.0, 1.0)
    bars = int(_check_range("bars", bars, 1, MAX_BARS))
    temperature = _check_range("temperature", temperature, 0.0, 3.0)
    if tempo is not None:
        tempo = _check_range("the tempo (bpm)", tempo, MIN_TEMPO, MAX_TEMPO)
    if program is not None:
        program = int(_check_range("the General MIDI instrument", program, 0, 127))
    if velocity is not None:
        velocity = int(_check_range("the note velocity", velocity, 1, 127))
    if second_genre and not genre:
        raise DemoInputError("pick the first genre before a second one to mix in")
    weights = {genre: 1.0 - mix} if genre else {}
    if second_genre and mix > 0:
        weights[second_genre] = weights.get(second_genre, 0.0) + mix
    cond = condition_weights(model, weights) if weights else None
    label = "+".join(f"{g}={w:.2f}" if len(weights) > 1 else g for g, w in weights.items()) or "no genre"
    _report(progress, 0.1, "generating")
    roll = generate_pieces(model, n=1, bars=bars, genre=cond, temperature=temperature, seed=int(seed))[0]
    if not roll[:2].any():
        raise DemoInputError(empty_message(1, 1) + " Nothing was written.")
    usual_tempo, usual_program = genre_defaults(model, cond)
    tempo = usual_tempo if tempo is None else tempo
    program = usual_program if program is None else program
    _report(progress, 0.5, "writing MIDI and rendering the preview")
    out = fresh_dir(out_dir, "midi")
    stem = out / f"{_slug(label)}_seed{int(seed)}"
    midi_path = save_piece(roll, stem, config=model.roll, tempo=tempo, program=program, velocity=velocity)[0]
    pm = pretty_midi.PrettyMIDI(str(midi_path))
    preview = write_wav(stem.parent / f"{stem.name}.wav", render_audio(pm, sample_rate=MIDI_PREVIEW_RATE),
                        MIDI_PREVIEW_RATE)
    shown, shown_config = cropped_roll(roll, model.roll)
    picture = save_roll_png(shown, stem.parent / f"{stem.name}.png", config=shown_config,
                            title=f"{label} (T={temperature:g}, seed {int(seed)})")
    notes = sum(len(i.notes) for i in pm.instruments)
    _report(progress, 1.0, "done")
    dynamics = f"velocity {velocity}" if velocity is not None else "velocities from the model"
    message = (f"Generated {bars} bars of {label} at {tempo:g} bpm, {gm_instrument_name(program)} ({notes} notes, "
               f"{dynamics}, temperature {temperature:g}, seed {int(seed)})")
    if temperature == 0:
        message += "; at temperature 0 every seed gives the same piece"
    return MidiResult(picture, preview, midi_path, message)


def gm_instrument_name(program: int) -> str:
    """"Acoustic Grand Piano" for General MIDI program 0, ... (program 0..127)."""
    import pretty_midi

    return pretty_midi.program_to_instrument_name(int(program))
