"""Generate and transfer MIDI with a trained PianoRollCVAE: genre conditions (names and mixtures), pieces longer
than one segment, genre transfer of a MIDI file, and writing .mid / .png / preview .wav.

Long pieces: a piece of ``bars`` bars decodes ceil(bars / segment_bars) segments whose prior noise follows an
AR(1) path, n_k = rho * n_{k-1} + sqrt(1 - rho^2) * eps_k with eps_k ~ N(0, T^2 I) and rho = ``continuity``. Every
n_k is then exactly prior noise at temperature T (mapped to a latent through the model's prior, so each segment is
as good as a single-segment sample) while neighbouring segments share a part of it, which keeps register, texture
and rhythm from jumping at the joins; rho = 0 gives independent segments, rho -> 1 repeats one segment.
The segments are joined end to end (:func:`join_segments`) and the whole roll is cleaned once, so a note sustained
across a join continues. Generation applies the model's classifier-free guidance (:func:`guided_probabilities`),
and the genre's habits stored with the model when probabilities become notes (:func:`rolls_for`: voices, onset
grid, shortest note, steady voices, longest note).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, MidiReadError, ParameterError
from ..genres import as_weights, genre_condition
from .pianoroll import (SUSTAIN, RollConfig, clean_roll, join_segments, limit_note_length, limit_voices,
                        midi_to_roll, quantize_onsets, roll_tensor, snap_velocities, with_velocity)
from .voicing import drop_short_notes, hold_voices, keep_voices

# Quarter-note tempo (bpm) and General MIDI program for the genres of the bundled data; other genres get
# DEFAULT_TEMPO and piano.
GENRE_DEFAULTS = {
    "baroque_chorale": (76.0, 19),        # church organ
    "classical_quartet": (108.0, 48),     # string ensemble
    "german_folk": (100.0, 0),            # piano
    "irish_fiddle": (150.0, 40),          # violin
    "medieval_trecento": (90.0, 74),      # recorder
    "renaissance_polyphony": (120.0, 52),  # choir aahs; the data is mostly in 4/2, so quarters move fast
}
DEFAULT_TEMPO, DEFAULT_PROGRAM = 110.0, 0


def parse_genre(model, spec: str | dict[str, float] | None) -> torch.Tensor | None:
    """A genre condition for ``model`` from a request: None/"" -> None ("no genre"); "irish_fiddle" ->
    LongTensor[1]; "baroque_chorale=0.5,irish_fiddle=0.5" -> mixture weights FloatTensor[1, num_genres] summing
    to 1; on the CPU (see :func:`audiovae.genres.genre_condition`)."""
    cond = genre_condition(model, spec)
    return None if cond is None else cond.cpu()


def genre_defaults(model, cond: torch.Tensor | None) -> tuple[float, int]:
    """(tempo bpm, GM program) for a condition: the genre's defaults; a mixture averages the tempi and takes
    the program of its heaviest genre; no genre gives (DEFAULT_TEMPO, DEFAULT_PROGRAM)."""
    if cond is None:
        return DEFAULT_TEMPO, DEFAULT_PROGRAM
    weights = as_weights(model, cond[:1])[0]
    table = [GENRE_DEFAULTS.get(g, (DEFAULT_TEMPO, DEFAULT_PROGRAM)) for g in model.conditions]
    tempo = float(sum(w * t for w, (t, _) in zip(weights.tolist(), table)))
    return round(tempo, 1), table[int(weights.argmax())][1]


def latent_path(n: int, segments: int, dim: int, *, temperature: float, continuity: float,
                generator: torch.Generator, repeats: float = 0.0) -> torch.Tensor:
    """AR(1) prior paths Tensor[n, segments, dim]; every step is marginally N(0, temperature^2 I). With
    ``repeats`` > 0 each segment after the first is, with that probability, the noise of an earlier segment
    drawn at random (so the piece repeats that segment, and the path goes on from it)."""
    if not 0.0 <= continuity < 1.0:
        raise ParameterError(f"continuity must be in [0, 1), got {continuity}")
    if not 0.0 <= repeats <= 1.0:
        raise ParameterError(f"repeats must be in [0, 1], got {repeats}")
    eps = torch.randn(n, segments, dim, generator=generator) * temperature
    repeat = torch.rand(n, segments, generator=generator) < repeats
    earlier = torch.rand(n, segments, generator=generator)
    z = eps.clone()
    for k in range(1, segments):
        z[:, k] = continuity * z[:, k - 1] + math.sqrt(1 - continuity**2) * eps[:, k]
        source = (earlier[:, k] * k).long()  # uniform over the k segments before
        z[repeat[:, k], k] = z[repeat[:, k], source[repeat[:, k]]]
    return z


def _condition_batch(cond: torch.Tensor | None, batch: int, device) -> torch.Tensor | None:
    return None if cond is None else cond.to(device).expand(batch, *cond.shape[1:])


def default_guidance(model, cond: torch.Tensor | None = None) -> float:
    """The model's own classifier-free guidance weight for generation under ``cond``: ``guidance`` in its config
    (0 = none), or for a genre with its own weight (``genre_guidance``) that one; a mixture weighs its genres'
    weights by its mixture weights."""
    weights = model.genre_guidance
    if cond is None or not weights:
        return float(model.guidance)
    mixture = as_weights(model, cond[:1])[0].tolist()
    return float(sum(w * weights.get(g, model.guidance) for g, w in zip(model.conditions, mixture)))


def guided_probabilities(model, z: torch.Tensor, cond: torch.Tensor | None, guidance: float) -> torch.Tensor:
    """p(cell on) Tensor[B, C, S, P] with classifier-free guidance: sigmoid(l_g + w * (l_g - l_none)), where l_g
    are the decoder's logits under the genre condition and l_none under the learned "no genre" row (trained by
    condition dropout). w = ``guidance`` > 0 strengthens what sets the genre apart; w = 0 is plain decoding.
    A model with dynamics adds channel 2, velocity / 127, taken under the genre condition without guidance."""
    logits = model.decode(z, cond).float()
    if guidance and cond is not None:
        guided = logits[:, :2] + guidance * (logits[:, :2] - model.decode(z, None)[:, :2].float())
        logits = torch.cat([guided, logits[:, 2:]], 1)
    return torch.sigmoid(logits)


def finish_roll(probabilities: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Decoder probabilities float [..., C, T, P] -> the roll a user gets: cleaned bool onset/sustain [..., 2, T, P]
    where they exceed ``threshold``, or for a model with dynamics (C = 3) the roll with dynamics, uint8
    [..., 3, T, P] (see :mod:`audiovae.midi.pianoroll`)."""
    roll = clean_roll(probabilities, threshold=threshold)
    return roll if probabilities.shape[-3] == 2 else with_velocity(roll, probabilities[..., 2, :, :])


@torch.no_grad()
def decode_rolls(model, z: torch.Tensor, cond: torch.Tensor | None, *, from_noise: bool = False,
                 guidance: float | None = None, batch_size: int = 1024) -> np.ndarray:
    """z: Tensor[N, latent_dim] -> probabilities float32 [N, C, S, P] (C = 3 with dynamics; see
    :func:`guided_probabilities`), decoded in batches; for a genre whose voice
    count the model stored, pitches beyond it at a step are set to 0 (:func:`voice_limit`).

    ``from_noise``: z is prior noise eps (N(0, T^2 I)), first mapped through the model's prior for ``cond``
    (:meth:`PianoRollCVAE.latent_from_noise`); this is how prior samples are decoded. ``guidance``: the
    classifier-free guidance weight for the decoder (see :func:`guided_probabilities`) and, for prior samples,
    the prior (None = the model's default).
    """
    guidance = default_guidance(model, cond) if guidance is None else guidance
    if guidance < 0:
        raise ParameterError(f"guidance must be >= 0, got {guidance}")
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(z), batch_size):
        chunk = z[start:start + batch_size].to(device)
        batch_cond = _condition_batch(cond, len(chunk), device)
        if from_noise:
            chunk = model.latent_from_noise(chunk, batch_cond, guidance=guidance)
        out.append(guided_probabilities(model, chunk, batch_cond, guidance).cpu().numpy())
    probabilities = np.concatenate(out) if out else np.zeros((0, *model.segment_shape), np.float32)
    voices = voice_limit(model, cond)
    return limit_voices(probabilities, voices) if voices else probabilities


def voice_limit(model, cond: torch.Tensor | None) -> int | None:
    """At most how many notes a segment under ``cond`` may sound at once: the largest voice count (stored with
    the model's latent statistics, see audiovae.midi.pianoroll.voice_counts) among the genres the condition
    holds; None without a genre, or for a model trained before voice counts were stored."""
    return _genre_limit(model, cond, "voices")


def repeat_rate(model, cond: torch.Tensor | None) -> float:
    """How often a long piece under ``cond`` repeats an earlier segment: the largest of its genres' segment repeat
    rates (stored with the model's latent statistics, see audiovae.midi.form.segment_repeats); 0 without them."""
    return _genre_limit(model, cond, "repeats") or 0.0


def note_length_limit(model, cond: torch.Tensor | None) -> int | None:
    """The longest a note under ``cond`` may sound, in grid steps: the largest of the condition's genres' longest
    notes (stored with the model's latent statistics, see audiovae.midi.pianoroll.longest_notes), so a mixture
    never holds a pitch longer than either genre does; None without a genre or for a model without them."""
    return _genre_limit(model, cond, "longest_note")


def onset_grid(model, cond: torch.Tensor | None) -> list[bool] | None:
    """Where in the beat notes under ``cond`` may start: per grid step of a quarter note, whether any of the
    condition's genres starts notes there often enough (stored with the model's latent statistics, see
    audiovae.midi.pianoroll.onset_grids); None without a genre or for a model without them."""
    return _genre_limit(model, cond, "onset_grid", combine=lambda grids: [any(column) for column in zip(*grids)])


def _genre_limit(model, cond: torch.Tensor | None, key: str, combine=max):
    """``combine`` (default: the largest) of the per-genre values ``latent_stats[key]`` of the genres ``cond``
    holds (ids or mixture weights); None without a condition or when a genre lacks the value."""
    values = (model.latent_stats or {}).get(key) or {}
    if cond is None or not values:
        return None
    if cond.is_floating_point():
        present = torch.nonzero(cond.reshape(-1, len(model.conditions)).amax(0) > 0).flatten().tolist()
    else:
        present = sorted(set(int(i) for i in cond.reshape(-1).tolist() if i >= 0))
    found = [values[model.conditions[i]] for i in present if model.conditions[i] in values]
    return combine(found) if found and len(found) == len(present) else None


def velocity_palette(model, cond: torch.Tensor | None) -> list[int] | None:
    """The velocities notes under ``cond`` may take: those the condition's genres play (stored with the model's
    latent statistics, see audiovae.midi.pianoroll.velocity_levels); None without a genre or for a model without
    them."""
    return _genre_limit(model, cond, "velocity_levels", combine=lambda levels: sorted(set().union(*levels)))


def shortest_note(model, cond: torch.Tensor | None) -> int | None:
    """The shortest note generation under ``cond`` keeps, in grid steps: the smallest of its genres' shortest usual
    notes (stored with the model's latent statistics, see audiovae.midi.voicing.shortest_notes); None without a
    genre or for a model without them."""
    return _genre_limit(model, cond, "shortest_note", combine=min)


def steady_voice_count(model, cond: torch.Tensor | None) -> int | None:
    """How many voices sound without a break under ``cond``: the largest of its genres' usual chords, when every
    genre it holds keeps its voices steady (see audiovae.midi.voicing.steady_voices); else None."""
    return _genre_limit(model, cond, "steady_voices")


def rolls_for(model, probabilities: np.ndarray, cond: torch.Tensor | None, threshold: float = 0.5) -> np.ndarray:
    """Decoder probabilities float [N, C, T, P] under ``cond`` -> the rolls a user gets (:func:`finish_roll`), with
    velocities the condition's genres play (:func:`velocity_palette`; a genre written at one velocity keeps it
    exactly), notes starting only where they start them (:func:`onset_grid`), none shorter than their shortest
    usual note (:func:`shortest_note`), steady voices kept and held as they keep them (:func:`steady_voice_count`,
    see :mod:`audiovae.midi.voicing`) and no note held longer than they hold one (:func:`note_length_limit`)."""
    rolls = finish_roll(probabilities, threshold)
    palette = velocity_palette(model, cond) if rolls.shape[-3] == 3 else None
    if palette:
        rolls = snap_velocities(rolls, palette)
    grid = onset_grid(model, cond)
    if grid and not all(grid):
        rolls = quantize_onsets(rolls, grid)
    shortest = shortest_note(model, cond)
    if shortest and shortest > 1:
        rolls = drop_short_notes(rolls, shortest)
    voices = steady_voice_count(model, cond)
    if voices:
        rolls = keep_voices(rolls, voices, probabilities[..., SUSTAIN, :, :])
        rolls = hold_voices(rolls, voices, longest_hold=model.roll.steps_per_quarter)
    longest = note_length_limit(model, cond)
    return limit_note_length(rolls, longest) if longest else rolls


@torch.no_grad()
def generate_pieces(model, *, n: int, bars: int, genre: str | torch.Tensor | None = None, temperature: float = 0.8,
                    continuity: float = 0.5, seed: int = 0, threshold: float = 0.5,
                    guidance: float | None = None, repeats: float | None = None) -> list[np.ndarray]:
    """``n`` pieces of ``bars`` bars: a list of rolls [C, bars * steps_per_bar, P], bool onset/sustain or, from a
    model with dynamics, uint8 with velocities (see the module doc and :func:`finish_roll`).

    genre: a name, a mixture string, a condition tensor from :func:`parse_genre`, or None (no genre).
    Cells are on where the decoder's probability exceeds ``threshold``. ``guidance``: classifier-free guidance
    weight (None = the model's default, see :func:`guided_probabilities`). ``repeats``: the probability that a
    segment repeats an earlier one (None = the genre's own rate, :func:`repeat_rate`; 0 = never).
    """
    if n < 1 or bars < 1 or temperature < 0:
        raise ParameterError(f"need n >= 1, bars >= 1 and temperature >= 0; got {n}, {bars}, {temperature}")
    cond = parse_genre(model, genre) if genre is None or isinstance(genre, str) else genre
    config: RollConfig = model.roll
    segments = math.ceil(bars / config.segment_bars)
    generator = torch.Generator().manual_seed(seed)
    repeats = repeat_rate(model, cond) if repeats is None else repeats
    z = latent_path(n, segments, model.latent_dim, temperature=temperature, continuity=continuity,
                    generator=generator, repeats=repeats)
    probs = decode_rolls(model, z.flatten(0, 1), cond, from_noise=True, guidance=guidance)
    probs = probs.reshape(n, segments, *model.segment_shape)
    steps = bars * config.steps_per_bar
    return list(rolls_for(model, np.stack([join_segments(p)[:, :steps] for p in probs]), cond, threshold))


def empty_pieces(rolls) -> list[int]:
    """The indices of rolls [C, T, P] that hold no note."""
    return [i for i, roll in enumerate(rolls) if not np.asarray(roll)[:2].any()]


def empty_message(empty: int, total: int) -> str:
    """What to tell a user when ``empty`` of ``total`` generated pieces hold no note."""
    if total == 1:
        head = "The piece is empty"
    elif empty == total:
        head = f"All {total} pieces are empty"
    else:
        head = f"{empty} of {total} pieces are empty"
    return f"{head}; the model may be under-trained. Try a lower temperature, another seed, or train longer."


@torch.no_grad()
def retarget_latent(model, z: torch.Tensor, source: torch.Tensor | None, target: torch.Tensor, *,
                    strength: float = 0.0, guidance: float = 0.0) -> torch.Tensor:
    """Move latents Tensor[N, latent_dim] encoded under genre ``source`` to where genre ``target`` keeps the
    same prior noise: z -> eps under the source prior -> z' under the target prior (identity for the standard
    prior, whose z is the noise). ``guidance``: classifier-free guidance on the target prior's means, as
    generation applies it (so a transferred piece is the sample the target genre gives for the piece's noise).
    ``strength`` in [0, 1] shrinks the noise by (1 - strength) on the way, towards the target prior's most
    typical path: 0 keeps all of the piece, 1 keeps none of it."""
    if not 0.0 <= strength <= 1.0:
        raise ParameterError(f"strength must be in [0, 1], got {strength}")
    device = z.device
    eps = model.noise_from_latent(z, _condition_batch(source, len(z), device)) * (1.0 - strength)
    return model.latent_from_noise(eps, _condition_batch(target, len(z), device), guidance=guidance)


def roll_to_segments(roll: np.ndarray, steps: int) -> np.ndarray:
    """A roll [C, T, P] -> [ceil(T / steps), C, steps, P] of its dtype, padded with silence; empty segments are
    kept."""
    channels = roll.shape[0]
    count = max(1, math.ceil(roll.shape[1] / steps))
    padded = np.zeros((channels, count * steps, roll.shape[2]), dtype=roll.dtype)
    padded[:, : roll.shape[1]] = roll
    return padded.reshape(channels, count, steps, roll.shape[2]).transpose(1, 0, 2, 3)


@torch.no_grad()
def transfer_roll(model, roll: np.ndarray, *, to: str | torch.Tensor, source: str | torch.Tensor | None = None,
                  temperature: float = 0.0, seed: int = 0, threshold: float = 0.5,
                  guidance: float | None = None, strength: float = 0.0) -> np.ndarray:
    """Re-decode a roll [2 or 3, T, P] (on the model's grid) under another genre: a roll as
    :func:`rolls_for` gives it.

    Each segment is encoded with the ``source`` genre (None = the "no genre" row), its latent taken at the
    posterior mode (``temperature`` 0) or sampled, moved to the target genre's prior (``strength``: see
    :func:`retarget_latent`) and decoded with the ``to`` genre, with classifier-free guidance ``guidance`` on the
    prior and the decoder (None = the model's default for the target genre, as in generation). Silent segments
    stay silent.
    """
    target = parse_genre(model, to) if isinstance(to, str) else to
    if target is None:
        raise ConfigError("transfer needs a target genre")
    src = parse_genre(model, source) if source is None or isinstance(source, str) else source
    roll = np.asarray(roll)
    segments = roll_to_segments(roll, model.roll.segment_steps)
    device = next(model.parameters()).device
    x = roll_tensor(segments).to(device)
    posterior = model.encode(x, _condition_batch(src, len(x), device))
    generator = torch.Generator().manual_seed(seed)
    z = posterior.mode() + temperature * posterior.std * torch.randn(posterior.mean.shape, generator=generator).to(device)
    guidance = default_guidance(model, target) if guidance is None else guidance
    moved = retarget_latent(model, z, src, target, strength=strength, guidance=guidance)
    out = decode_rolls(model, moved, target, guidance=guidance)
    out[~segments[:, 1].any(axis=(1, 2))] = 0.0
    return rolls_for(model, join_segments(out)[None, :, : roll.shape[1]], target, threshold)[0]


def read_roll(model, path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """A MIDI file on the model's grid: (roll [2, T, P] bool, or with dynamics uint8 [3, T, P] for a model that
    reads them, the file's first tempo in bpm)."""
    from .pianoroll import load_midi

    pm = load_midi(path)
    _, tempi = pm.get_tempo_changes()
    roll = midi_to_roll(pm, config=model.roll, velocity=model.velocity)
    return roll, float(tempi[0]) if len(tempi) else DEFAULT_TEMPO


def file_segments(model, path: str | os.PathLike) -> torch.Tensor:
    """A MIDI file as the model's input: its non-empty segments, float Tensor[N, C, S, P] (see
    :func:`audiovae.midi.pianoroll.roll_tensor`) on the model's device.
    Raises MidiReadError naming the file when it cannot be parsed or holds no notes on the model's grid."""
    roll, _ = read_roll(model, path)
    segments = roll_to_segments(roll, model.roll.segment_steps)
    segments = segments[segments.any(axis=(1, 2, 3))]  # the silent padding of a short file says nothing
    if len(segments) == 0:
        raise MidiReadError(path, "no notes on the model's grid")
    return roll_tensor(segments).to(next(model.parameters()).device)


def save_piece(roll: np.ndarray, stem: str | os.PathLike, *, config: RollConfig, tempo: float = DEFAULT_TEMPO,
               program: int = DEFAULT_PROGRAM, png: bool = False, preview: bool = False,
               title: str | None = None, genre: str | None = None, velocity: int | None = None) -> list[Path]:
    """Write ``stem``.mid (and ``stem``.png, ``stem``.wav preview) for a roll [2 or 3, T, P]; returns the paths.

    ``genre`` (a name) picks its GENRE_DEFAULTS tempo and program when those are left at their defaults.
    ``velocity`` (1..127) plays every note at that velocity; None keeps a roll's own dynamics (else 90).
    """
    from ..audio.io import write_wav
    from .pianoroll import DEFAULT_VELOCITY, roll_to_midi, split_velocity
    from .render import render_audio, save_roll_png, write_midi

    if genre in GENRE_DEFAULTS and tempo == DEFAULT_TEMPO and program == DEFAULT_PROGRAM:
        tempo, program = GENRE_DEFAULTS[genre]
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    named = {suffix: stem.parent / f"{stem.name}{suffix}" for suffix in (".mid", ".png", ".wav")}  # names may hold dots
    if velocity is not None:
        roll = split_velocity(roll)[0]
    pm = roll_to_midi(roll, config=config, tempo=tempo, program=program,
                      velocity=DEFAULT_VELOCITY if velocity is None else velocity)
    paths = [write_midi(pm, named[".mid"])]
    if png:
        paths.append(save_roll_png(roll, named[".png"], config=config, title=title or stem.name))
    if preview:
        sample_rate = 22050
        paths.append(named[".wav"])
        write_wav(paths[-1], render_audio(pm, sample_rate=sample_rate, config=config, tempo=tempo), sample_rate)
    return paths
