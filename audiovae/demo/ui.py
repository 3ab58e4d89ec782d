"""Pieces every tab of the demo page shares: the context a tab is built in (models, vocoders, folders), running a
handler (threads, errors, GPU memory), and the small controls (players, pictures, seeds, stop buttons).

Every component carries a label, also where the page hides it (``show_label=False``), because the label is the
component's name in the API (``gradio_client``'s view_api), so no endpoint shows a ``value_17``.
"""
from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import gradio as gr
import torch

from ..errors import AudioVAEError
from ..inference import DEFAULT_VOCODER, GRIFFIN_LIM, resolve_vocoder_choice, vocoder_for
from . import handlers
from .models import LoadedModel

logger = logging.getLogger(__name__)

NO_GENRE = ""  # the dropdown value for "no genre" / "unknown genre"
SEED_MAX = 2**31 - 1
SEED_INFO = "the same seed gives the same result; 🎲 picks a new one"
SEED_INFO_T0 = "not used at temperature 0: every seed gives the same result"


@dataclass
class Context:
    """What the tabs are built from. mel: the audio models by name (first = default); vocoders: each audio model's
    offered vocoder choices, default first; threads: CPU threads per job (None: leave torch's setting)."""

    mel: dict[str, LoadedModel]
    midi: LoadedModel
    vocoders: dict[str, list[str]]
    max_seconds: float
    out_dir: str
    example_clips: list[str] = field(default_factory=list)
    threads: int | None = None

    @property
    def default_mel(self) -> str:
        return next(iter(self.mel))

    def model(self, name: str | None):
        """The loaded audio model called ``name`` (None: the default); a plain message for an unknown name."""
        name = name or self.default_mel
        if name not in self.mel:
            raise gr.Error(f"unknown audio model {name!r}; loaded: {', '.join(self.mel)}", print_exception=False)
        return self.mel[name].model

    def vocoder(self, model_name: str | None, choice: str | None) -> str:
        """The vocoder choice for a job: one offered for that model (None: its default)."""
        offered = self.vocoders[model_name or self.default_mel]
        if not choice:
            return offered[0]
        if choice not in offered:
            raise gr.Error(f"vocoder {choice!r} is not offered for this model; choose one of {', '.join(offered)}",
                           print_exception=False)
        return choice


def offered_vocoders(model, requested: str) -> list[str]:
    """The vocoder choices the page offers for ``model``: the requested one (resolved, see
    :func:`audiovae.inference.resolve_vocoder_choice`) first, then Griffin-Lim and the bundled neural vocoder when
    it was trained on the model's front end. The requested one is loaded and checked now (ConfigError)."""
    first = resolve_vocoder_choice(model, requested)
    vocoder_for(model, first)
    offered = [first]
    for choice in (GRIFFIN_LIM, DEFAULT_VOCODER):
        if choice in offered:
            continue
        try:
            vocoder_for(model, choice)
        except (AudioVAEError, OSError) as exc:  # another front end, or not installed
            logger.info("vocoder %s not offered: %s", choice, exc)
            continue
        offered.append(choice)
    return offered


def run(context: Context, fn, *args, **kwargs):
    """Run a handler: CPU threads set, user mistakes as a plain message in the page (it stays until closed),
    anything else a short apology, cached GPU memory handed back afterwards."""
    if context.threads:
        torch.set_num_threads(context.threads)
    try:
        return fn(*args, **kwargs)
    except gr.Error:
        raise
    except AudioVAEError as exc:
        raise gr.Error(str(exc), duration=None, print_exception=False) from None
    except Exception as exc:  # keep serving: log the traceback on the server, show one line in the page
        logger.exception("demo handler %s failed", getattr(fn, "__name__", fn))
        raise gr.Error(f"Something went wrong ({type(exc).__name__}: {exc}). The demo is still running; try "
                       "other settings or another clip.", duration=None, print_exception=False) from None
    finally:
        handlers.release_gpu_memory()


def check_uploads(context: Context, clip: gr.Audio, model_choice, outputs: list, message, *, label: str) -> None:
    """Check ``clip`` the moment a file is uploaded or recorded (handlers.check_upload): a refused file is removed
    from the input, ``outputs`` (the previous job's results) are cleared and the reason stays in ``message``."""
    def check(path, model):
        try:
            text = run(context, handlers.check_upload, context.model(model), path, label=label,
                       max_seconds=context.max_seconds)
            return gr.update(), *[None] * len(outputs), text
        except gr.Error as exc:
            return None, *[None] * len(outputs), f"**Refused:** {exc.message}"

    for trigger in (clip.upload, clip.stop_recording):
        trigger(check, [clip, model_choice], [clip, *outputs, message], api_visibility="private")


def player(label: str, elem_id: str) -> gr.Audio:
    """An output audio: the browser's own <audio> player (its src is the wav) with a download button."""
    return gr.Audio(label=label, type="filepath", interactive=False, buttons=["download"], elem_id=elem_id,
                    waveform_options=gr.WaveformOptions(show_recording_waveform=False))


def clip_input(label: str, elem_id: str) -> gr.Audio:
    """An audio input: upload or record; the file reaches the handlers as it arrived (no conversion)."""
    return gr.Audio(label=label, type="filepath", sources=["upload", "microphone"], elem_id=elem_id)


def picture(label: str, elem_id: str) -> gr.Image:
    """An output picture drawn by :mod:`audiovae.demo.plots`: title inside the image, full width, and nothing laid
    over it (no label chip, no corner buttons; the browser's own "save image" still works)."""
    return gr.Image(label=label, show_label=False, type="filepath", interactive=False, elem_id=elem_id, buttons=[])


def status(label: str, elem_id: str) -> gr.Markdown:
    """The status line of a tab: what the last action did, or why it was refused; it stays until the next one."""
    return gr.Markdown(label=label, elem_id=elem_id, elem_classes=["status-line"])


def seed_controls(elem_id: str) -> tuple[gr.Number, gr.Button]:
    """A seed box and its 🎲 button (the click picks a random seed; it is not an API endpoint)."""
    seed = gr.Number(value=0, precision=0, minimum=0, maximum=SEED_MAX, label="seed", info=SEED_INFO,
                     elem_id=elem_id)
    dice = gr.Button("🎲 random seed", size="sm", elem_id=f"{elem_id}-dice")
    dice.click(lambda: random.randint(0, 99999), None, seed, api_visibility="private", queue=False)
    return seed, dice


def grey_seed_at_zero(temperature: gr.Slider, seed: gr.Number) -> None:
    """Seed greyed out (with a note) while temperature is 0, where it changes nothing."""
    def update(t):
        active = float(t or 0) > 0
        return gr.update(interactive=active, info=SEED_INFO if active else SEED_INFO_T0)

    temperature.change(update, temperature, seed, api_visibility="private", queue=False)


def action_row(label: str, prefix: str) -> tuple[gr.Button, gr.Button]:
    """A row with a tab's run button (elem_id ``prefix``-button) and its Stop button (``prefix``-stop); wire the
    Stop button to the run's event with :func:`stops`."""
    with gr.Row():
        button = gr.Button(label, variant="primary", elem_id=f"{prefix}-button", scale=3)
        stop = gr.Button("Stop", variant="stop", elem_id=f"{prefix}-stop", size="md")
    return button, stop


def stops(stop: gr.Button, event) -> None:
    """Let ``stop`` cancel ``event`` (a long job); not part of the API."""
    stop.click(None, None, None, cancels=[event], api_visibility="private")


def genre_choices(conditions: Sequence[str], none_label: str) -> list[tuple[str, str]]:
    return [(none_label, NO_GENRE)] + [(g, g) for g in conditions]


def genre_refill(none_label: str | None, *, first: bool = True):
    """What a genre dropdown shows for another audio model: fn(model) -> gr.update with that model's genres (after
    a ``none_label`` entry when given); selected: its first genre when ``first``, else the none entry (or the last
    genre without one); hidden for a model without genres."""
    def refill(model):
        genres = list(model.conditions)
        choices = genre_choices(genres, none_label) if none_label is not None else genres
        if not genres:
            value = NO_GENRE if none_label is not None else None
        elif first:
            value = genres[0]
        else:
            value = NO_GENRE if none_label is not None else genres[-1]
        return gr.update(choices=choices, value=value, visible=bool(genres))

    return refill


def missing_model(message: str) -> None:
    gr.Markdown(message, elem_classes=["missing-model"])

