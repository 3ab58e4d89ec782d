"""The Gradio app: :func:`build_demo` returns a ``gr.Blocks`` with a Blend, a MIDI-by-genre, an Explore and an
Inspect tab.

Models are loaded once, on the GPU when one is present; the page offers a choice of audio model when more than one
is loaded, and of vocoder. Each event calls a plain function from :mod:`audiovae.demo.handlers` or
:mod:`audiovae.demo.explorer`; what a user got wrong comes back as a message in the page, never a traceback, and
the app keeps serving. Uploads are checked the moment they arrive. Named API endpoints (for ``gradio_client``):
/blend, /check_clip_a, /check_clip_b, /generate_midi, /sample, /move, /pad, /shift, /inspect.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from ..device import resolve_device  # noqa: E402
from ..errors import AudioVAEError  # noqa: E402
from ..examples import example_clips  # noqa: E402
from . import handlers  # noqa: E402
from .models import LoadedModel, device_label, load_demo_model  # noqa: E402
from .tab_blend import blend_tab  # noqa: E402
from .tab_explore import explore_tab  # noqa: E402
from .tab_midi import midi_tab  # noqa: E402
from .ui import Context, check_uploads, missing_model, offered_vocoders, picture, player, run, status  # noqa: E402

CONCURRENCY_LIMIT = 2   # events that run at once; more wait in the queue
MAX_UPLOAD = "100mb"    # gradio refuses bigger uploads before any handler runs
CSS = ".status-line { min-height: 1.5em; }"

_EXAMPLES_CACHE: str | None = None


def _examples_cache() -> str:
    """One fresh folder per process for gradio's cached example outputs (never the working directory, never a
    folder a previous run with other models filled)."""
    global _EXAMPLES_CACHE
    if _EXAMPLES_CACHE is None:
        _EXAMPLES_CACHE = tempfile.mkdtemp(prefix="audiovae-demo-examples-")
    return _EXAMPLES_CACHE


def _inspect_tab(context: Context, model_choice: gr.Dropdown) -> None:
    from ..errors import ConfigError
    from ..scoring import calibration_of

    try:
        calibration = calibration_of(context.model(None))
    except ConfigError:  # an outdated calibration: the tab explains it when used
        calibration = None
    gr.Markdown("Upload a recording to see where it looks damaged (clipping, dropouts, noise bursts...): the curve "
                "says how badly the model explains each moment (how surprising its latent code is, how much worse "
                "the model reconstructs it than a simple background model, and how one-sided its reconstruction "
                "error is), in standard deviations above what the model's own held-out music scores; moments "
                "above the threshold are flagged and shaded.")
    with gr.Row():
        clip = gr.Audio(label="recording", type="filepath", sources=["upload", "microphone"], elem_id="inspect-clip")
        threshold = gr.Slider(1.0, 10.0, value=calibration.threshold if calibration else 3.0, step=0.1,
                              elem_id="inspect-threshold", label="threshold",
                              info="how unusual a moment must be to be flagged, in standard deviations above "
                                   "typical: lower flags more")
    button = gr.Button("Inspect", variant="primary", elem_id="inspect-button")
    message = status("status", "inspect-status")
    plot = picture("inspect picture: log-mel and anomaly curve", "inspect-plot")
    audio = player("the worst span", "inspect-audio")

    def inspect(clip, threshold, model, progress=gr.Progress()):
        r = run(context, handlers.inspect_clip, context.model(model), clip, threshold=threshold,
                max_seconds=context.max_seconds, out_dir=context.out_dir, progress=progress)
        return str(r.picture), str(r.audio), r.message

    button.click(inspect, [clip, threshold, model_choice], [plot, audio, message], api_name="inspect",
                 api_description="Where a recording looks damaged: picture, the worst span, status line.")

    check_uploads(context, clip, model_choice, [plot, audio], message, label="The recording")


def _load_mel_models(specs, device, vocoder: str) -> tuple[dict[str, LoadedModel], dict[str, list[str]], str]:
    """The audio models by name and their offered vocoders; a message when none loads."""
    if specs is None or isinstance(specs, (str, os.PathLike)) or not isinstance(specs, Sequence):
        specs = [specs]
    loaded, vocoders, messages = {}, {}, []
    for spec in specs:
        entry = load_demo_model(spec, "mel", device)
        if entry.model is None:
            messages.append(entry.message)
            continue
        name = entry.source
        while name in loaded:  # the same folder twice: keep both apart
            name += "'"
        entry.vocoder = (offered := offered_vocoders(entry.model, vocoder))[0]
        loaded[name], vocoders[name] = entry, offered
    return loaded, vocoders, " ".join(messages)


def build_demo(mel_model=None, midi_model=None, *, device=None, max_seconds: float = 30.0,
               examples: Sequence | None = None, vocoder: str = "auto", threads: int | None = None) -> gr.Blocks:
    """The demo page.

    mel_model: a loaded audio model (mel VAE, or any model of the LatentModel protocol with modality "audio"), a
    checkpoint/run folder, or a list of these (the page then offers a choice); None loads the bundled
    "default-mel". midi_model: likewise one MIDI model; None loads "default-midi". A model that cannot be loaded
    leaves a message saying what is missing (in its tabs when no model of its kind loads).
    device: "auto"/None (GPU when present), "cpu" or "cuda". max_seconds: longest upload accepted, seconds.
    examples: audio paths for the Blend tab, as pairs [[a, b], ...] or a flat list (each paired with the next);
    None offers the bundled clips (one per genre, :func:`audiovae.examples.example_clips`, those no longer than
    max_seconds); [] offers none. Their results are computed when the page starts. vocoder: the default way the
    audio models' log-mels become sound ("auto", "griffin-lim", "default-vocoder" or a vocoder folder); the page
    also offers the others that fit each model. A neural vocoder trained on another front end than the model's
    is refused here, before the page is built (ConfigError). threads: CPU threads per job; None takes
    cores / CONCURRENCY_LIMIT on the CPU (jobs run side by side; more threads than cores slow every job down
    many times on a busy machine) and leaves torch's setting on a GPU.
    """
    if not max_seconds > 0:
        raise AudioVAEError(f"max_seconds must be > 0, got {max_seconds}")
    if examples is None:
        examples = example_clips(max_seconds=max_seconds)
    torch_device = resolve_device(device)
    if threads is None and torch_device.type == "cpu":
        threads = max(1, (os.cpu_count() or 1) // CONCURRENCY_LIMIT)
    mel, vocoders, mel_message = _load_mel_models(mel_model, torch_device, vocoder)
    midi = load_demo_model(midi_model, "midi", torch_device)
    flat = [str(p) for e in (examples or []) for p in (e if isinstance(e, (list, tuple)) else [e])]
    context = Context(mel, midi, vocoders, max_seconds, tempfile.mkdtemp(prefix="audiovae-demo-"),
                      example_clips=list(dict.fromkeys(flat)), threads=threads)
    previous_cache = os.environ.get("GRADIO_EXAMPLES_CACHE")
    os.environ["GRADIO_EXAMPLES_CACHE"] = _examples_cache()
    try:
        demo = _page(context, torch_device, mel_message, examples)
    finally:
        if previous_cache is None:
            os.environ.pop("GRADIO_EXAMPLES_CACHE", None)
        else:
            os.environ["GRADIO_EXAMPLES_CACHE"] = previous_cache
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT)
    return demo


def _page(context: Context, torch_device, mel_message: str, examples) -> gr.Blocks:
    names = list(context.mel)
    with gr.Blocks(title="audiovae demo", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# audiovae\nBlend clips in a mel VAE's latent space, generate MIDI by genre, explore the latents, "
                    "find defects in recordings.")
        with gr.Row(equal_height=True):
            gr.Markdown(f"Running on **{device_label(torch_device)}** · audio model: "
                        f"`{names[0] if names else 'not loaded'}` · vocoder: "
                        f"`{context.vocoders[names[0]][0] if names else '-'}` · MIDI model: "
                        f"`{context.midi.source if context.midi.model is not None else 'not loaded'}`",
                        elem_id="device-line")
            model_choice = gr.Dropdown(names, value=names[0] if names else None, label="audio model",
                                       visible=len(names) > 1, elem_id="model-choice", scale=1,
                                       info="which loaded model the Blend, Explore and Inspect tabs use")
            every_vocoder = list(dict.fromkeys(v for offered in context.vocoders.values() for v in offered))
            vocoder_choice = gr.Dropdown(every_vocoder,
                                         value=context.vocoders[names[0]][0] if names else None, label="vocoder",
                                         elem_id="vocoder-choice", visible=bool(names), scale=1,
                                         info="how log-mels become sound: griffin-lim works for any model, a "
                                              "neural vocoder sounds cleaner (each model is offered those that fit "
                                              "its front end)")
        with gr.Tabs():
            refill = []
            with gr.Tab("Blend", id="blend"):
                if names:
                    blend_tab(context, model_choice, vocoder_choice, examples)
                else:
                    missing_model(mel_message)
            with gr.Tab("MIDI by genre", id="midi"):
                if context.midi.model is None:
                    missing_model(context.midi.message)
                else:
                    midi_tab(context)
            with gr.Tab("Explore", id="explore"):
                if names:
                    refill = explore_tab(context, model_choice, vocoder_choice)
                else:
                    missing_model(mel_message)
            with gr.Tab("Inspect", id="inspect"):
                if names:
                    _inspect_tab(context, model_choice)
                else:
                    missing_model(mel_message)
        if len(names) > 1:
            _refill_on_model_change(context, model_choice, vocoder_choice, refill)
    return demo


def _refill_on_model_change(context: Context, model_choice, vocoder_choice, refill) -> None:
    """Choosing another audio model offers its vocoders, its genres and its pad corners."""
    def refresh(name):
        model = context.model(name)
        return [gr.update(choices=context.vocoders[name], value=context.vocoders[name][0]),
                *[fill(model) for _, fill in refill]]

    model_choice.change(refresh, model_choice, [vocoder_choice, *[d for d, _ in refill]], api_visibility="private",
                        queue=False)


def launch(demo: gr.Blocks, *, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           prevent_thread_lock: bool = False, quiet: bool = False):
    """Serve ``demo``; returns what ``gr.Blocks.launch`` returns (app, local url, share url)."""
    return demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=prevent_thread_lock,
                       max_file_size=MAX_UPLOAD, quiet=quiet, footer_links=["api"], css=CSS)
