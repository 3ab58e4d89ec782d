"""The Gradio app: :func:`build_demo` returns a ``gr.Blocks`` with a Blend, a MIDI-by-genre and an Explore tab.

Models are loaded once, on the GPU when one is present. Each event calls a plain function from
:mod:`audiovae.demo.handlers`; what a user got wrong comes back as a message in the page (``gr.Error``), never a
traceback, and the app keeps serving. Named API endpoints (for ``gradio_client``): /blend, /generate_midi,
/sample, /shift.
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from ..errors import AudioVAEError  # noqa: E402
from ..examples import example_clips  # noqa: E402
from ..inference import resolve_vocoder_choice, vocoder_for  # noqa: E402
from . import handlers  # noqa: E402
from ..device import resolve_device  # noqa: E402
from .models import LoadedModel, device_label, load_demo_model  # noqa: E402

logger = logging.getLogger(__name__)

CONCURRENCY_LIMIT = 2   # events that run at once; more wait in the queue
MAX_UPLOAD = "100mb"    # gradio refuses bigger uploads before any handler runs
NO_GENRE = ""           # the dropdown value for "no genre" / "unknown genre"


def _player(label: str, elem_id: str) -> gr.Audio:
    """An output audio: the browser's own <audio> player (its src is the file) with a download button."""
    return gr.Audio(label=label, type="filepath", interactive=False, buttons=["download"], elem_id=elem_id,
                    waveform_options=gr.WaveformOptions(show_recording_waveform=False))


def _call(fn, *args, **kwargs):
    """Run a handler; user mistakes become a plain message in the page, anything else a short apology."""
    try:
        return fn(*args, **kwargs)
    except AudioVAEError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    except Exception as exc:  # keep serving: log the traceback on the server, show one line in the page
        logger.exception("demo handler %s failed", getattr(fn, "__name__", fn))
        raise gr.Error(f"Something went wrong ({type(exc).__name__}: {exc}). The demo is still running; try "
                       "other settings or another clip.", print_exception=False) from None


def _genre_choices(conditions: Sequence[str], none_label: str) -> list[tuple[str, str]]:
    return [(none_label, NO_GENRE)] + [(g, g) for g in conditions]


def _genre_dropdown(genres: Sequence[str], elem_id: str) -> gr.Dropdown:
    """The genre picker of a generating tab: the model's first genre preselected, hidden for unconditional models."""
    return gr.Dropdown(_genre_choices(genres, "(no genre)"), value=genres[0] if genres else NO_GENRE, label="genre",
                       visible=bool(genres), elem_id=elem_id)


def _example_pairs(examples) -> list[list[str]]:
    """examples: pairs [[a, b], ...] or a flat list of paths (paired with the next one, cyclically)."""
    items = list(examples or [])
    if not items:
        return []
    if all(isinstance(e, (list, tuple)) for e in items):
        return [[str(a), str(b)] for a, b in items]
    paths = [str(p) for p in items]
    return [[paths[i], paths[(i + 1) % len(paths)]] for i in range(len(paths))] if len(paths) > 1 else []


# --- tabs ----------------------------------------------------------------------------------------------------
def _blend_tab(mel: LoadedModel, *, max_seconds: float, out_dir: str, examples) -> None:
    model = mel.model
    gr.Markdown("Encode two clips, mix their latents frame by frame and decode the mix. "
                f"Clips of up to {max_seconds:g} s (wav, flac, ogg, mp3, aiff), or record one.")
    with gr.Row():
        clip_a = gr.Audio(label="Clip A (α = 0)", type="filepath", sources=["upload", "microphone"], elem_id="blend-a")
        clip_b = gr.Audio(label="Clip B (α = 1)", type="filepath", sources=["upload", "microphone"], elem_id="blend-b")
    pairs = _example_pairs(examples)
    if pairs:
        gr.Examples(examples=pairs, inputs=[clip_a, clip_b], label="example pairs")
    with gr.Row():
        alpha = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="α: 0 = A, 1 = B", elem_id="blend-alpha")
        methods = [("slerp", "slerp"), ("lerp", "lerp")]
        if model.latent_prior is not None:
            methods.append(("prior noise (even steps)", "noise"))
        method = gr.Radio(methods, value="slerp", label="interpolation")
        align = gr.Radio([("crop to the shorter", "crop"), ("loop the shorter", "loop"),
                          ("stretch the shorter", "stretch")], value="crop", label="clips of unequal length")
        strip = gr.Checkbox(label=f"morph strip ({handlers.STRIP_STEPS} steps from A to B)", elem_id="blend-strip-on")
    button = gr.Button("Blend", variant="primary", elem_id="blend-button")
    status = gr.Markdown(elem_id="blend-status")
    plot = gr.Plot(label="log-mel: A | B | blend", format="png", elem_id="blend-plot")
    with gr.Row():
        out = _player("blend", "blend-out")
        strip_out = _player("morph strip", "blend-strip")

    def blend(a, b, alpha, method, align, strip, progress=gr.Progress()):
        r = _call(handlers.blend_clips, model, a, b, alpha=alpha, method=method, align=align, strip=strip,
                  max_seconds=max_seconds, vocoder=mel.vocoder, out_dir=out_dir, progress=progress)
        return r.figure, str(r.audio), str(r.strip) if r.strip else None, r.message

    button.click(blend, [clip_a, clip_b, alpha, method, align, strip], [plot, out, strip_out, status],
                 api_name="blend")


def _midi_tab(midi: LoadedModel, *, out_dir: str) -> None:
    model = midi.model
    genres = list(model.conditions)
    gr.Markdown("Sample a piece from the piano-roll CVAE under a genre, or a mix of two.")
    with gr.Row():
        genre = _genre_dropdown(genres, "midi-genre")
        second = gr.Dropdown(_genre_choices(genres, "(none)"), value=NO_GENRE, label="mix in a second genre",
                             visible=bool(genres), elem_id="midi-second")
        mix = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="weight of the second genre", visible=bool(genres))
    with gr.Row():
        bars = gr.Slider(1, 32, value=8, step=1, label="bars")
        temperature = gr.Slider(0.0, 1.5, value=0.8, step=0.05, label="temperature")
        seed = gr.Number(value=0, precision=0, label="seed")
    button = gr.Button("Generate", variant="primary", elem_id="midi-button")
    status = gr.Markdown(elem_id="midi-status")
    picture = gr.Image(label="piano roll", type="filepath", interactive=False, elem_id="midi-roll")
    with gr.Row():
        preview = _player("preview", "midi-audio")
        midi_file = gr.File(label="MIDI file", interactive=False, elem_id="midi-file")

    def generate(genre, second, mix, bars, temperature, seed, progress=gr.Progress()):
        r = _call(handlers.generate_midi, model, genre=genre or None, second_genre=second or None, mix=mix,
                  bars=bars, temperature=temperature, seed=seed, out_dir=out_dir, progress=progress)
        return str(r.picture), str(r.audio), str(r.midi), r.message

    button.click(generate, [genre, second, mix, bars, temperature, seed], [picture, preview, midi_file, status],
                 api_name="generate_midi")


def _explore_tab(mel: LoadedModel, *, max_seconds: float, out_dir: str) -> None:
    model = mel.model
    genres = list(model.conditions)
    gr.Markdown("### Prior samples\nDecode a random latent z ~ N(0, T²I) under a genre.")
    with gr.Row():
        genre = _genre_dropdown(genres, "sample-genre")
        seconds = gr.Slider(1.0, min(15.0, handlers.MAX_SAMPLE_SECONDS), value=4.0, step=0.5, label="seconds")
        temperature = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="temperature T")
        seed = gr.Number(value=0, precision=0, label="seed")
    sample_button = gr.Button("Sample", variant="primary", elem_id="sample-button")
    sample_status = gr.Markdown()
    with gr.Row():
        sample_plot = gr.Plot(label="log-mel", format="png", elem_id="sample-plot")
        sample_audio = _player("sample", "sample-audio")

    def sample(genre, seconds, temperature, seed, progress=gr.Progress()):
        r = _call(handlers.sample_prior, model, genre=genre or None, seconds=seconds, temperature=temperature,
                  seed=seed, vocoder=mel.vocoder, out_dir=out_dir, progress=progress)
        return r.figure, str(r.audio), r.message

    sample_button.click(sample, [genre, seconds, temperature, seed], [sample_plot, sample_audio, sample_status],
                        api_name="sample")

    gr.Markdown("### Genre shift\nMove a clip of your own toward a genre.")
    if not genres:
        gr.Markdown("This mel model was trained without genres, so there is nothing to shift toward.")
        return
    with gr.Row():
        clip = gr.Audio(label="clip", type="filepath", sources=["upload", "microphone"], elem_id="shift-clip")
        with gr.Column():
            source = gr.Dropdown(_genre_choices(genres, "(unknown)"), value=NO_GENRE, label="the clip's genre")
            target = gr.Dropdown(genres, value=genres[-1], label="shift toward")
            amount = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="genre shift: 0 = the clip, 1 = the target",
                               elem_id="shift-amount")
            route = gr.Radio([("genre input of the decoder", "condition"), ("latent centroid", "centroid")],
                             value="condition", label="route")
    shift_button = gr.Button("Shift", variant="primary", elem_id="shift-button")
    shift_status = gr.Markdown()
    with gr.Row():
        shift_plot = gr.Plot(label="log-mel: clip | shifted", format="png", elem_id="shift-plot")
        shift_audio = _player("shifted", "shift-audio")

    def shift(clip, source, target, amount, route, progress=gr.Progress()):
        r = _call(handlers.shift_clip, model, clip, target=target, amount=amount, source=source or None, route=route,
                  max_seconds=max_seconds, vocoder=mel.vocoder, out_dir=out_dir, progress=progress)
        return r.figure, str(r.audio), r.message

    shift_button.click(shift, [clip, source, target, amount, route], [shift_plot, shift_audio, shift_status],
                       api_name="shift")


def _inspect_tab(mel: LoadedModel, *, max_seconds: float, out_dir: str) -> None:
    model = mel.model
    gr.Markdown("Upload a recording to see where it looks damaged (clipping, dropouts, noise bursts...): the curve "
                "is each window's surprise under the model, in standard deviations above what the model's own "
                "held-out music scores; windows above the threshold are flagged and shaded.")
    with gr.Row():
        clip = gr.Audio(label="recording", type="filepath", sources=["upload", "microphone"], elem_id="inspect-clip")
        threshold = gr.Slider(1.0, 10.0, value=_default_threshold(model), step=0.5, elem_id="inspect-threshold",
                              label="threshold (standard deviations above typical)")
    button = gr.Button("Inspect", variant="primary", elem_id="inspect-button")
    status = gr.Markdown(elem_id="inspect-status")
    plot = gr.Plot(label="log-mel and anomaly curve", format="png", elem_id="inspect-plot")
    audio = _player("the worst span", "inspect-audio")

    def inspect(clip, threshold, progress=gr.Progress()):
        r = _call(handlers.inspect_clip, model, clip, threshold=threshold, max_seconds=max_seconds, out_dir=out_dir,
                  progress=progress)
        return r.figure, str(r.audio), r.message

    button.click(inspect, [clip, threshold], [plot, audio, status], api_name="inspect")


def _default_threshold(model) -> float:
    from ..scoring import calibration_of

    calibration = calibration_of(model)
    return calibration.threshold if calibration is not None else 3.0


# --- the app -------------------------------------------------------------------------------------------------
def build_demo(mel_model=None, midi_model=None, *, device=None, max_seconds: float = 30.0,
               examples: Sequence | None = None, vocoder: str = "auto") -> gr.Blocks:
    """The demo page.

    mel_model, midi_model: loaded models or checkpoint/run folders; None loads the bundled "default-mel" /
    "default-midi". A model that cannot be loaded leaves its tabs with a message saying what is missing.
    device: "auto"/None (GPU when present), "cpu" or "cuda". max_seconds: longest upload accepted, seconds.
    examples: audio paths for the Blend tab, as pairs [[a, b], ...] or a flat list (each paired with the next);
    None offers the bundled clips (one per genre, :func:`audiovae.examples.example_clips`, those no longer than
    max_seconds), each paired with the next genre's; [] offers none. vocoder: how the mel model's log-mels become
    sound ("auto", "griffin-lim", "default-vocoder" or a vocoder folder); a neural vocoder trained on another
    front end than the mel model's is refused here, before the page is built (ConfigError).
    """
    if not max_seconds > 0:
        raise AudioVAEError(f"max_seconds must be > 0, got {max_seconds}")
    if examples is None:
        examples = example_clips(max_seconds=max_seconds)
    torch_device = resolve_device(device)
    mel = load_demo_model(mel_model, "mel", torch_device)
    if mel.model is not None:
        mel.vocoder = resolve_vocoder_choice(mel.model, vocoder)
        vocoder_for(mel.model, mel.vocoder)  # load (and check) it now, not at the first click
    midi = load_demo_model(midi_model, "midi", torch_device)
    out_dir = tempfile.mkdtemp(prefix="audiovae-demo-")
    with gr.Blocks(title="audiovae demo", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# audiovae\nBlend clips in a mel VAE's latent space, generate MIDI by genre, explore the latents, "
                    "find defects in recordings.")
        gr.Markdown(f"Running on **{device_label(torch_device)}** · mel model: `{_name(mel)}` · "
                    f"vocoder: `{mel.vocoder}` · MIDI model: `{_name(midi)}`", elem_id="device-line")
        with gr.Tabs():
            with gr.Tab("Blend", id="blend"):
                if mel.model is None:
                    gr.Markdown(mel.message, elem_classes=["missing-model"])
                else:
                    _blend_tab(mel, max_seconds=max_seconds, out_dir=out_dir, examples=examples)
            with gr.Tab("MIDI by genre", id="midi"):
                if midi.model is None:
                    gr.Markdown(midi.message, elem_classes=["missing-model"])
                else:
                    _midi_tab(midi, out_dir=out_dir)
            with gr.Tab("Explore", id="explore"):
                if mel.model is None:
                    gr.Markdown(mel.message, elem_classes=["missing-model"])
                else:
                    _explore_tab(mel, max_seconds=max_seconds, out_dir=out_dir)
            with gr.Tab("Inspect", id="inspect"):
                if mel.model is None:
                    gr.Markdown(mel.message, elem_classes=["missing-model"])
                else:
                    _inspect_tab(mel, max_seconds=max_seconds, out_dir=out_dir)
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT)
    return demo


def _name(loaded: LoadedModel) -> str:
    return loaded.source if loaded.model is not None else "not loaded"


def launch(demo: gr.Blocks, *, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           prevent_thread_lock: bool = False, quiet: bool = False):
    """Serve ``demo``; returns what ``gr.Blocks.launch`` returns (app, local url, share url)."""
    return demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=prevent_thread_lock,
                       max_file_size=MAX_UPLOAD, quiet=quiet, footer_links=["api"])
