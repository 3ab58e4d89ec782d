"""Hear and see piano rolls: preview audio (FluidSynth with a SoundFont, else a built-in additive synth),
piano-roll pictures, and atomic .mid writing."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pretty_midi

from .._atomic import atomic_file
from ..errors import AudioVAEError, ParameterError
from .pianoroll import ONSET, SUSTAIN, RollConfig, roll_to_midi, split_velocity

SOUNDFONT_ENV = "AUDIOVAE_SOUNDFONT"
DEBIAN_SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
HARMONICS = np.array([1.0, 0.5, 0.25, 0.12, 0.06])  # amplitude of partials 1..5 of the built-in synth
ATTACK_S, RELEASE_S, DECAY_PER_S = 0.005, 0.08, 1.5


def _fluidsynth_available() -> bool:
    try:
        import fluidsynth  # noqa: F401
    except (ImportError, OSError):  # OSError: the module imports but libfluidsynth is missing
        return False
    return True


def find_soundfont(soundfont: str | os.PathLike | None = None) -> Path | None:
    """The SoundFont to render with, or None for the built-in synth.

    Order: the argument, then ``$AUDIOVAE_SOUNDFONT``, then common Debian paths. One named by argument or
    environment must exist and needs the ``fluidsynth`` Python module, else :class:`AudioVAEError`; the
    Debian paths are used only when the file exists and the module imports.
    """
    named = soundfont if soundfont is not None else os.environ.get(SOUNDFONT_ENV) or None
    if named is not None:
        path = Path(named)
        if not path.is_file():
            raise AudioVAEError(f"SoundFont {path} does not exist; pass an existing .sf2 file or unset ${SOUNDFONT_ENV}")
        if not _fluidsynth_available():
            raise AudioVAEError(
                f"SoundFont {path} was given but the fluidsynth Python module does not import; install it with "
                f"`pip install pyfluidsynth` (plus the libfluidsynth system library) or leave the SoundFont out"
            )
        return path
    for candidate in DEBIAN_SOUNDFONTS:
        if Path(candidate).is_file() and _fluidsynth_available():
            return Path(candidate)
    return None


def _as_midi(pm_or_roll, config: RollConfig, tempo: float) -> pretty_midi.PrettyMIDI:
    if isinstance(pm_or_roll, pretty_midi.PrettyMIDI):
        return pm_or_roll
    return roll_to_midi(np.asarray(pm_or_roll), config=config, tempo=tempo)


def synthesize(pm: pretty_midi.PrettyMIDI, *, sample_rate: int = 22050) -> np.ndarray:
    """Built-in additive synth: float32 [samples], peak 0.9 (all zeros when there are no notes).

    Each pitched note sounds ``HARMONICS`` partials (those below Nyquist) under a 5 ms linear attack, a
    gentle exponential decay and an 80 ms release after the note-off; drums are left out.
    Length: ``ceil(pm.get_end_time() * sample_rate) + round(RELEASE_S * sample_rate)`` samples.
    """
    release = int(round(RELEASE_S * sample_rate))
    out = np.zeros(int(np.ceil(pm.get_end_time() * sample_rate)) + release, dtype=np.float64)
    partials = np.arange(1, len(HARMONICS) + 1)
    attack = max(1, int(round(ATTACK_S * sample_rate)))
    for inst in pm.instruments:
        if inst.is_drum:
            continue
        for note in inst.notes:
            start = int(round(note.start * sample_rate))
            held = max(1, int(round((note.end - note.start) * sample_rate)))
            t = np.arange(held + release) / sample_rate
            freqs = pretty_midi.note_number_to_hz(note.pitch) * partials
            amps = np.where(freqs < sample_rate / 2, HARMONICS, 0.0)
            tone = np.sin(2 * np.pi * np.outer(t, freqs)) @ amps
            env = np.minimum(1.0, np.arange(held + release) / attack) * np.exp(-DECAY_PER_S * t)
            env[held:] *= np.linspace(1.0, 0.0, release, endpoint=False)
            seg = tone * env * (note.velocity / 127.0)
            stop = min(start + len(seg), len(out))
            out[start:stop] += seg[: stop - start]
    top = np.abs(out).max() if out.size else 0.0
    return (out * (0.9 / top) if top > 0 else out).astype(np.float32)


def render_audio(
    pm_or_roll,
    *,
    sample_rate: int = 22050,
    soundfont: str | os.PathLike | None = None,
    config: RollConfig = RollConfig(),
    tempo: float = 120.0,
) -> np.ndarray:
    """Preview audio of a PrettyMIDI or a roll [2 or 3, steps, config.num_pitches]: float32 [samples], peak <= 0.9.

    Rolls are first turned into MIDI at ``tempo`` bpm. Uses FluidSynth when :func:`find_soundfont` finds
    one, else :func:`synthesize`.
    """
    if sample_rate <= 0:
        raise ParameterError(f"sample_rate must be positive, got {sample_rate}")
    pm = _as_midi(pm_or_roll, config, tempo)
    sf2 = find_soundfont(soundfont)
    if sf2 is None:
        return synthesize(pm, sample_rate=sample_rate)
    audio = pm.fluidsynth(fs=sample_rate, sf2_path=str(sf2))
    top = np.abs(audio).max() if audio.size else 0.0
    return (audio * (0.9 / top) if top > 0 else audio).astype(np.float32)


def write_midi(pm: pretty_midi.PrettyMIDI, path: str | os.PathLike) -> Path:
    """Write a .mid file atomically (temp file + rename). Returns the path."""
    path = Path(path)
    with atomic_file(path, suffix=path.suffix) as tmp:
        pm.write(str(tmp))
    return path


def save_roll_png(
    roll: np.ndarray,
    path: str | os.PathLike,
    *,
    config: RollConfig = RollConfig(),
    title: str | None = None,
) -> Path:
    """Draw a roll [2 or 3, steps, config.num_pitches] as a PNG, atomically. Returns the path.

    Pitch on y (C notes labelled), grid steps on x, bar lines every ``config.steps_per_bar`` steps;
    sustain is drawn light and onsets dark.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # deferred: matplotlib imports slowly
    from matplotlib.figure import Figure

    from ..audio.plots import save_figure

    roll = np.asarray(roll)
    if roll.ndim != 3 or roll.shape[0] not in (2, 3) or roll.shape[2] != config.num_pitches:
        raise ParameterError(f"expected a roll shaped [2 or 3, steps, {config.num_pitches}], got {roll.shape}")
    roll = split_velocity(roll)[0].astype(bool)
    steps = roll.shape[1]
    image = roll[SUSTAIN].astype(np.float32) * 0.45
    image[roll[ONSET]] = 1.0
    fig = Figure(figsize=(min(24.0, 3.0 + steps / 16.0), 5.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(image.T, origin="lower", aspect="auto", cmap="Greys", vmin=0.0, vmax=1.0, interpolation="nearest",
              extent=(0, max(steps, 1), config.pitch_low - 0.5, config.pitch_high + 0.5))
    for bar in range(0, steps + 1, config.steps_per_bar):
        ax.axvline(bar, color="tab:blue", linewidth=0.6, alpha=0.6)
    c_notes = [p for p in range(config.pitch_low, config.pitch_high + 1) if p % 12 == 0]
    ticks = c_notes or [config.pitch_low, config.pitch_high]
    ax.set_yticks(ticks, [pretty_midi.note_number_to_name(p) for p in ticks])
    ax.set_xlabel(f"step ({config.steps_per_quarter} per quarter note)")
    ax.set_ylabel("pitch")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)
