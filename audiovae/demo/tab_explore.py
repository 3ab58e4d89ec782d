"""The Explore tab: prior samples by genre; sliders along the latent space's principal directions for a clip or a
prior sample; a 2-D pad between four clips or genres; a genre shift of a clip of your own.

:func:`explore_tab` returns its genre and pad-corner dropdowns with how to refill each, so the page can offer the
right choices when another audio model is chosen.
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from . import explorer, handlers
from .plots import pad_picture
from .ui import (Context, NO_GENRE, action_row, check_uploads, clip_input, genre_choices, genre_refill,
                 grey_seed_at_zero, picture, player, run, seed_controls, status, stops)

PAD_PIXELS = 320  # the pad picture is 4 in at 80 dpi, square
REAL_MUSIC = ("rock", "ambient", "game_score")  # bundled clips from real recordings come first in examples and pad


def explore_tab(context: Context, model_choice, vocoder_choice) -> list[tuple[gr.Dropdown, str | None]]:
    """Builds the tab; returns (dropdown, fn(model) -> gr.update) pairs to refill on a model change."""
    model = context.model(None)
    genres = list(model.conditions)
    refill = []
    refill += _samples(context, model_choice, vocoder_choice, genres)
    refill += _directions(context, model_choice, vocoder_choice, genres)
    refill += _pad(context, model_choice, vocoder_choice, genres)
    refill += _shift(context, model_choice, vocoder_choice, genres)
    return refill


def _genre(genres, elem_id: str, none_label: str = "(no genre)", info: str = "the style to sample") -> gr.Dropdown:
    return gr.Dropdown(genre_choices(genres, none_label), value=genres[0] if genres else NO_GENRE, label="genre",
                       visible=bool(genres), elem_id=elem_id, info=info)


def _samples(context, model_choice, vocoder_choice, genres):
    gr.Markdown("### Prior samples\nNew music the model makes up, in the style of a genre.")
    with gr.Row():
        genre = _genre(genres, "sample-genre")
        seconds = gr.Slider(1.0, min(15.0, handlers.MAX_SAMPLE_SECONDS), value=4.0, step=0.5, label="seconds",
                            info="length of the sample")
        temperature = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="temperature", elem_id="sample-temperature",
                                info="how adventurous: 0 gives the model's most typical sound, 1 its usual variety, "
                                     "higher values stranger ones")
        with gr.Column(min_width=160):
            seed, _ = seed_controls("sample-seed")
    grey_seed_at_zero(temperature, seed)
    button, stop = action_row("Sample", "sample")
    message = status("status", "sample-status")
    sample_png = picture("sample picture", "sample-plot")
    sample_audio = player("sample", "sample-audio")

    def sample(genre, seconds, temperature, seed, model, vocoder, progress=gr.Progress()):
        r = run(context, handlers.sample_prior, context.model(model), genre=genre or None, seconds=seconds,
                temperature=temperature, seed=seed, vocoder=context.vocoder(model, vocoder), out_dir=context.out_dir,
                progress=progress)
        return str(r.picture), str(r.audio), r.message

    event = button.click(sample, [genre, seconds, temperature, seed, model_choice, vocoder_choice],
                         [sample_png, sample_audio, message], api_name="sample",
                         api_description="A prior sample by genre: picture, audio, status line.")
    stops(stop, event)
    return [(genre, genre_refill("(no genre)"))]


def _directions(context, model_choice, vocoder_choice, genres):
    from ..latent import latent_directions

    directions = latent_directions(context.model(None))
    explained = directions.get("explained", [])
    gr.Markdown("### Latent sliders\nMove a clip, or a prior sample when no clip is given, along the directions in "
                "which the model's music varies most (direction 1 the most). Each slider is in standard "
                "deviations of that variation; the sound follows the slider (the newest position wins while one "
                "decodes).")
    with gr.Row():
        clip = clip_input("clip to move (empty: a prior sample)", "move-clip")
        with gr.Column():
            genre = _genre(genres, "move-genre", info="without a clip: the style of the prior sample to move")
            seed = gr.Number(value=0, precision=0, minimum=0, label="sample seed", elem_id="move-seed",
                             info="without a clip: which prior sample")
            seconds = gr.Slider(1.0, min(15.0, handlers.MAX_SAMPLE_SECONDS), value=10.0, step=1.0,
                                label="sample seconds", info="without a clip: length of the prior sample")
    sliders = []
    with gr.Row():
        for i in range(explorer.SLIDERS):
            share = f" ({100 * explained[i]:.0f}% of the variation)" if i < len(explained) else ""
            sliders.append(gr.Slider(-explorer.MAX_OFFSET, explorer.MAX_OFFSET, value=0.0, step=0.25,
                                     label=f"direction {i + 1}{share}", elem_id=f"move-d{i + 1}", min_width=140))
    reset = gr.Button("Reset sliders", size="sm", elem_id="move-reset")
    message = status("status", "move-status")
    move_png = picture("moved picture: start and moved log-mel", "move-plot")
    move_audio = player("moved", "move-audio")

    def move(clip, genre, seed, seconds, d1, d2, d3, d4, d5, d6, d7, d8, model, vocoder):
        offsets = [d1, d2, d3, d4, d5, d6, d7, d8][: len(sliders)]
        r = run(context, explorer.move_source, context.model(model), path=clip or None, genre=genre or None,
                seed=seed, seconds=seconds, offsets=offsets, max_seconds=context.max_seconds,
                vocoder=context.vocoder(model, vocoder), out_dir=context.out_dir)
        return str(r.picture), str(r.audio), r.message

    inputs = [clip, genre, seed, seconds, *sliders, model_choice, vocoder_choice]
    outputs = [move_png, move_audio, message]
    for i, slider in enumerate(sliders):
        kwargs = {"api_name": "move", "api_description": "Move a clip (or a prior sample) along the latent "
                  "directions d1..d8 (standard deviations): picture, audio, status line."} if i == 0 else \
            {"api_visibility": "private"}
        slider.input(move, inputs, outputs, trigger_mode="always_last", **kwargs)
    reset.click(lambda: [0.0] * len(sliders), None, sliders, api_visibility="private", queue=False).then(
        move, inputs, outputs, api_visibility="private")

    def checked_move(*values):
        try:
            return move(*values)
        except gr.Error as exc:
            return None, None, f"**Refused:** {exc.message}"

    for trigger in (clip.upload, clip.stop_recording):
        trigger(checked_move, inputs, outputs, api_visibility="private")
    clip.clear(lambda: (None, None, ""), None, outputs, api_visibility="private", queue=False)
    # the prior sample's settings matter only while no clip is given
    clip.change(lambda c: [gr.update(interactive=c is None)] * 3, clip, [genre, seed, seconds],
                api_visibility="private", queue=False)

    rows = _direction_examples(context)
    if rows:
        def move_example(clip, d1, d2):
            return move(clip, NO_GENRE, 0, 10.0, d1, d2, *[0.0] * (len(sliders) - 2), None, None)

        gr.Examples(examples=rows, inputs=[clip, sliders[0], sliders[1]], outputs=outputs, fn=move_example,
                    cache_examples=True, cache_mode="eager", elem_id="move-examples",
                    label="examples: a clip moved along directions 1 and 2 (click to load and hear it)",
                    example_labels=[f"{Path(c).stem}: direction 1 {a:+g}, direction 2 {b:+g}" for c, a, b in rows])
    return [(genre, genre_refill("(no genre)"))]


def _direction_examples(context) -> list[list]:
    clips = sorted(context.example_clips, key=lambda c: (Path(c).stem not in REAL_MUSIC, Path(c).stem))
    moves = [(2.0, 0.0), (-2.0, 0.0), (0.0, 2.0)]
    return [[str(c), a, b] for c, (a, b) in zip(clips, moves)]


def _pad_defaults(values: list[str]) -> list[str]:
    """Four corner values: two clips (real recordings first), then two genres that are not those clips' genres."""
    clip_values = sorted((v for v in values if v.startswith(explorer.CLIP_PREFIX)),
                         key=lambda v: (v.split(":", 1)[1] not in REAL_MUSIC, v))[:2]
    taken = {v.split(":", 1)[1] for v in clip_values}
    genre_values = [v for v in values if v.startswith(explorer.GENRE_PREFIX) and v.split(":", 1)[1] not in taken]
    return (clip_values + genre_values[:2] + values * 4)[:4]


def _pad(context, model_choice, vocoder_choice, genres):
    clips = {Path(c).stem: str(c) for c in context.example_clips}
    choices = explorer.corner_choices(context.model(None), clips)
    if len(choices) < 1:
        return []
    defaults = _pad_defaults([v for _, v in choices])
    gr.Markdown("### 2-D pad\nFour corners, each a clip or a genre; click a point on the square (or set x and y) "
                "to hear the mix of the corners, weighted by how close the point is to each.")
    with gr.Row():
        with gr.Column(scale=1, min_width=PAD_PIXELS):
            pad_png = gr.Image(value=str(pad_picture([explorer.corner_name(v) for v in defaults], (0.5, 0.5),
                                                     Path(context.out_dir) / "pad-start.png")),
                               label="pad: click a point", show_label=False, type="filepath", interactive=False,
                               elem_id="pad-image", width=PAD_PIXELS, height=PAD_PIXELS, buttons=[])
        with gr.Column(scale=2):
            names = ["bottom left", "bottom right", "top left", "top right"]
            corners = [None] * 4
            for row in ((2, 3), (0, 1)):  # laid out as on the pad: the top corners above the bottom ones
                with gr.Row():
                    for i in row:
                        corners[i] = gr.Dropdown(choices, value=defaults[i], label=f"{names[i]} corner",
                                                 elem_id=f"pad-corner-{i}", info="a clip, or a sample of a genre")
            with gr.Row():
                x = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="x", elem_id="pad-x",
                              info="0 = left corners, 1 = right corners")
                y = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="y", elem_id="pad-y",
                              info="0 = bottom corners, 1 = top corners")
            message = status("status", "pad-status")
            pad_audio = player("pad mix", "pad-audio")

    def pad(bottom_left, bottom_right, top_left, top_right, x, y, model, vocoder):
        r = run(context, explorer.pad_point, context.model(model), [bottom_left, bottom_right, top_left, top_right],
                x=x, y=y, clips=clips, max_seconds=context.max_seconds, vocoder=context.vocoder(model, vocoder),
                out_dir=context.out_dir)
        return str(r.picture), str(r.audio), r.message

    def clicked(evt: gr.SelectData):
        px, py = evt.index
        return round(min(max(px / PAD_PIXELS, 0.0), 1.0), 2), round(min(max(1 - py / PAD_PIXELS, 0.0), 1.0), 2)

    inputs, outputs = [*corners, x, y, model_choice, vocoder_choice], [pad_png, pad_audio, message]
    x.input(pad, inputs, outputs, api_name="pad", trigger_mode="always_last",
              api_description="Decode the point (x, y) of the pad between four corners (clip:<name> or "
                              "genre:<name>): pad picture, audio, status line.")
    pad_png.select(clicked, None, [x, y], api_visibility="private", queue=False).then(
        pad, inputs, outputs, api_visibility="private")
    y.input(pad, inputs, outputs, api_visibility="private", trigger_mode="always_last")
    for corner in corners:
        corner.input(pad, inputs, outputs, api_visibility="private", trigger_mode="always_last")

    def corner_refill(i: int):
        def refill(model):
            offered = explorer.corner_choices(model, clips)
            return gr.update(choices=offered, value=_pad_defaults([v for _, v in offered])[i] if offered else None)
        return refill

    return [(corner, corner_refill(i)) for i, corner in enumerate(corners)]


def _shift(context, model_choice, vocoder_choice, genres):
    gr.Markdown("### Genre shift\nMove a clip of your own toward a genre.")
    if not genres:
        gr.Markdown("This audio model was trained without genres, so there is nothing to shift toward.")
        return []
    with gr.Row():
        clip = clip_input("clip to shift", "shift-clip")
        with gr.Column():
            source = gr.Dropdown(genre_choices(genres, "(unknown)"), value=NO_GENRE, label="the clip's genre",
                                 info="what the clip is now, if you know; needed for a partial shift through the "
                                      "genre setting")
            target = gr.Dropdown(genres, value=genres[-1], label="shift toward", info="the genre to move toward")
            amount = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="amount", elem_id="shift-amount",
                               info="0 = the clip as the model hears it, 1 = all the way to the target")
            route = gr.Radio([("change the genre setting of the decoder", "condition"),
                              ("move toward the genre's average sound", "centroid")], value="condition",
                             label="how", info="two ways to shift: tell the decoder another genre, or move the "
                             "clip's latent toward where that genre's music usually sits")
    button, stop = action_row("Shift", "shift")
    message = status("status", "shift-status")
    shift_png = picture("shift picture: clip and shifted log-mel", "shift-plot")
    shift_audio = player("shifted", "shift-audio")

    def shift(clip, source, target, amount, route, model, vocoder, progress=gr.Progress()):
        r = run(context, handlers.shift_clip, context.model(model), clip, target=target, amount=amount,
                source=source or None, route=route, max_seconds=context.max_seconds,
                vocoder=context.vocoder(model, vocoder), out_dir=context.out_dir, progress=progress)
        return str(r.picture), str(r.audio), r.message

    event = button.click(shift, [clip, source, target, amount, route, model_choice, vocoder_choice],
                         [shift_png, shift_audio, message], api_name="shift",
                         api_description="Shift a clip toward a genre: picture, audio, status line.")
    stops(stop, event)

    check_uploads(context, clip, model_choice, [shift_png, shift_audio], message, label="The clip")
    return [(source, genre_refill("(unknown)", first=False)), (target, genre_refill(None, first=False))]
