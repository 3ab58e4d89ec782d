"""The MIDI-by-genre tab: genre (or a mix of two), length, temperature and seed; tempo, General MIDI instrument and
velocity for the file; a piano roll cropped to the notes used, a preview and the .mid."""
from __future__ import annotations

import gradio as gr
import pretty_midi

from . import handlers
from .ui import (Context, NO_GENRE, action_row, genre_choices, grey_seed_at_zero, picture, player, run,
                 seed_controls, status, stops)

USUAL = -1  # the instrument dropdown's value for "the genre's usual instrument"
VELOCITY_MODES = [("from the model", "model"), ("fixed", "fixed")]


def midi_tab(context: Context) -> None:
    model = context.midi.model
    genres = list(model.conditions)
    gr.Markdown("Write a new piece with the piano-roll model in the style of a genre, or of a mix of two.")
    with gr.Row():
        genre = gr.Dropdown(genre_choices(genres, "(no genre)"), value=genres[0] if genres else NO_GENRE,
                            label="genre", visible=bool(genres), elem_id="midi-genre",
                            info="the style the piece is written in")
        second = gr.Dropdown(genre_choices(genres, "(none)"), value=NO_GENRE, label="mix in a second genre",
                             visible=bool(genres), elem_id="midi-second",
                             info="optional: a second style to blend in")
        mix = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="weight of the second genre", visible=bool(genres),
                        interactive=False, elem_id="midi-mix",
                        info="pick a second genre to use this: 0 is all the first genre, 1 all the second")
    with gr.Row():
        bars = gr.Slider(1, 32, value=8, step=1, label="bars", info="length of the piece in bars")
        temperature = gr.Slider(0.0, 1.5, value=0.8, step=0.05, label="temperature", elem_id="midi-temperature",
                                info="how adventurous: 0 always writes the model's most typical piece, higher "
                                     "values take more chances")
        with gr.Column(min_width=160):
            seed, _ = seed_controls("midi-seed")
    with gr.Row():
        usual_tempo = gr.Checkbox(value=True, label="the genre's usual tempo", elem_id="midi-usual-tempo",
                                  info="untick to set the tempo yourself")
        tempo = gr.Slider(handlers.MIN_TEMPO, handlers.MAX_TEMPO, value=110, step=1, label="tempo (beats per minute)",
                          interactive=False, elem_id="midi-tempo", info="quarter notes per minute")
        instrument = gr.Dropdown([("the genre's usual instrument", USUAL)]
                                 + [(f"{p}: {pretty_midi.program_to_instrument_name(p)}", p) for p in range(128)],
                                 value=USUAL, label="instrument (General MIDI)", elem_id="midi-instrument",
                                 info="the sound the .mid asks a synthesizer for, also used for the preview")
    with gr.Row():
        velocity_mode = gr.Radio(VELOCITY_MODES, value="model", label="note velocity", elem_id="midi-velocity-mode",
                                 info="how hard each note is played: as the model predicts it, or one value for all")
        velocity = gr.Slider(1, 127, value=90, step=1, label="fixed velocity", interactive=False,
                             elem_id="midi-velocity", info="1 is the softest, 127 the loudest")
    button, stop = action_row("Generate", "midi")
    message = status("status", "midi-status")
    roll = picture("piano roll", "midi-roll")
    with gr.Row():
        preview = player("preview", "midi-audio")
        midi_file = gr.File(label="MIDI file", interactive=False, elem_id="midi-file")

    second.change(lambda g: gr.update(interactive=bool(g)), second, mix, api_visibility="private", queue=False)
    usual_tempo.change(lambda usual: gr.update(interactive=not usual), usual_tempo, tempo, api_visibility="private",
                       queue=False)
    velocity_mode.change(lambda m: gr.update(interactive=m == "fixed"), velocity_mode, velocity,
                         api_visibility="private", queue=False)
    grey_seed_at_zero(temperature, seed)

    def generate_midi(genre, second_genre, mix, bars, temperature, seed, usual_tempo, tempo, instrument,
                      velocity_mode, velocity, progress=gr.Progress()):
        r = run(context, handlers.generate_midi, model, genre=genre or None, second_genre=second_genre or None,
                mix=mix if second_genre else 0.0, bars=bars, temperature=temperature, seed=seed,
                tempo=None if usual_tempo else tempo, program=None if instrument in (None, USUAL) else instrument,
                velocity=velocity if velocity_mode == "fixed" else None, out_dir=context.out_dir, progress=progress)
        return str(r.picture), str(r.audio), str(r.midi), r.message

    event = button.click(generate_midi, [genre, second, mix, bars, temperature, seed, usual_tempo, tempo, instrument,
                                         velocity_mode, velocity], [roll, preview, midi_file, message],
                         api_name="generate_midi", api_description="A MIDI piece by genre: the piano-roll picture, a "
                         "preview, the .mid and a status line.")
    stops(stop, event)
