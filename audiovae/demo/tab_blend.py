"""The Blend tab: two clips, checked as they arrive, blended in the latent space; an optional morph strip with each
step as its own clip; example pairs whose results are computed at launch, so a click plays at once."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from . import handlers
from .ui import Context, action_row, clip_input, picture, player, run, status, stops

METHOD_INFO = ("how the two latents are mixed: slerp keeps the mix as loud and busy as the clips, lerp is a "
               "straight average (the middle can sound thinner), prior noise moves in even steps through what "
               "the model learned to expect")
ALIGN_INFO = "what to do when the clips differ in length: cut the longer one, repeat the shorter, or slow it down"


def example_pairs(examples) -> list[list[str]]:
    """examples: pairs [[a, b], ...] or a flat list of paths (paired with the next one, cyclically)."""
    items = list(examples or [])
    if not items:
        return []
    if all(isinstance(e, (list, tuple)) for e in items):
        return [[str(a), str(b)] for a, b in items]
    paths = [str(p) for p in items]
    return [[paths[i], paths[(i + 1) % len(paths)]] for i in range(len(paths))] if len(paths) > 1 else []


def blend_tab(context: Context, model_choice: gr.Dropdown, vocoder_choice: gr.Dropdown, examples) -> None:
    default = context.model(None)
    gr.Markdown("Mix two clips in the model's latent space, moment by moment, and hear the mix. "
                f"Clips of up to {context.max_seconds:g} s (wav, flac, ogg, mp3, aiff), uploaded or recorded.")
    with gr.Row():
        clip_a = clip_input("Clip A (α = 0)", "blend-a")
        clip_b = clip_input("Clip B (α = 1)", "blend-b")
    with gr.Row():
        alpha = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="α", elem_id="blend-alpha",
                          info="how far from A toward B: 0 is all A, 1 is all B")
        methods = [("slerp (keeps the energy)", "slerp"), ("lerp (straight average)", "lerp")]
        if getattr(default, "latent_prior", None) is not None:
            methods.append(("prior noise (even steps)", "noise"))
        method = gr.Radio(methods, value="slerp", label="mixing", info=METHOD_INFO)
    with gr.Row():
        align = gr.Radio([("cut to the shorter", "crop"), ("loop the shorter", "loop"),
                          ("stretch the shorter", "stretch")], value="crop", label="clips of unequal length",
                         info=ALIGN_INFO)
        strip = gr.Checkbox(label=f"morph strip: {handlers.STRIP_STEPS} steps from A to B", elem_id="blend-strip-on",
                            info="also play A turning into B in steps (α = 0, 0.25, 0.5, 0.75, 1), each step "
                                 "downloadable on its own")
    button, stop = action_row("Blend", "blend")
    message = status("status", "blend-status")
    blend_png = picture("blend picture: log-mels of A, B and the blend", "blend-plot")
    blend_out = player("blend", "blend-out")
    with gr.Column(visible=False) as strip_outputs:  # shown while the morph strip is ticked
        strip_png = picture("morph strip picture", "blend-strip-plot")
        with gr.Row():
            strip_out = player("morph strip", "blend-strip")
            steps_out = gr.File(label="morph steps, one clip per α", file_count="multiple", interactive=False,
                                elem_id="blend-steps", height=160)
    strip.change(lambda on: gr.update(visible=bool(on)), strip, strip_outputs, api_visibility="private", queue=False)
    outputs = [blend_png, blend_out, strip_png, strip_out, steps_out, message]

    def blend(clip_a, clip_b, alpha, method, align, strip, model, vocoder, progress=gr.Progress()):
        r = run(context, handlers.blend_clips, context.model(model), clip_a, clip_b, alpha=alpha, method=method,
                align=align, strip=strip, max_seconds=context.max_seconds, vocoder=context.vocoder(model, vocoder),
                out_dir=context.out_dir, progress=progress)
        return (str(r.picture), str(r.audio), str(r.strip_picture) if r.strip_picture else None,
                str(r.strip) if r.strip else None, [str(p) for p in r.steps] or None, r.message)

    event = button.click(blend, [clip_a, clip_b, alpha, method, align, strip, model_choice, vocoder_choice], outputs,
                         api_name="blend", api_description="Blend two clips at α; returns the picture, the blend, "
                         "and with strip=True the morph strip, its picture and one clip per step.")
    stops(stop, event)
    for clip, label, name in ((clip_a, "Clip A", "check_clip_a"), (clip_b, "Clip B", "check_clip_b")):
        check = _checker(context, label)
        for trigger in (clip.upload, clip.stop_recording):
            trigger(check, [clip, model_choice], [clip, *outputs], api_name=name if trigger == clip.upload else False,
                    api_description=f"Check an upload for {label}: a reason when it is refused, else its length.")

    pairs = example_pairs(examples)
    if pairs:
        def blend_example(clip_a, clip_b):  # no strip: gradio's example cache cannot hold empty outputs
            picture_path, audio, *_, text = blend(clip_a, clip_b, 0.5, "slerp", "crop", False, None, None)
            return picture_path, audio, text

        gr.Examples(examples=pairs, inputs=[clip_a, clip_b], outputs=[blend_png, blend_out, message], fn=blend_example,
                    cache_examples=True, cache_mode="eager", label="example pairs: click one to load it and hear "
                    "its blend (α = 0.5, slerp, computed with the first model when the page started)",
                    example_labels=[f"{Path(a).stem} × {Path(b).stem}" for a, b in pairs], elem_id="blend-examples")


def _checker(context: Context, label: str):
    """The upload check of one input: a refused file is removed from the input, the reason goes to the status line
    and every previous output is cleared; a good one is announced (its old outputs cleared too)."""
    def check(clip, model):
        try:
            text = run(context, handlers.check_upload, context.model(model), clip, label=label,
                       max_seconds=context.max_seconds)
            kept = gr.update()
        except gr.Error as exc:
            text, kept = f"**Refused:** {exc.message}", None
        return kept, None, None, None, None, None, text

    return check
