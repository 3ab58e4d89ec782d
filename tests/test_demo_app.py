"""The demo app served on 127.0.0.1 and driven through its named API endpoints with gradio_client."""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import re  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx  # noqa: E402
import mido  # noqa: E402
import pretty_midi  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

import audiovae.demo.app as app_module  # noqa: E402
from audiovae.demo.app import build_demo, launch  # noqa: E402
from demo_fixtures import (FRONTEND, MAX_SECONDS, free_port, make_mel_model, make_midi_model, rms,  # noqa: E402
                           write_tone)

# gradio's queue bookkeeping calls pandas APIs that pandas 3 deprecates; nothing of ours
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_app")
    return {"mel": make_mel_model(root / "mel"), "midi": make_midi_model(root / "midi"), "root": root,
            "a": write_tone(root / "clips" / "a.wav", seconds=1.5),
            "b": write_tone(root / "clips" / "b.wav", seconds=1.0, freq=660.0)}


@pytest.fixture(scope="module")
def served(folders):
    """(url, client) of the demo with both tiny models, closed after the module."""
    demo = build_demo(folders["mel"], folders["midi"], device="cpu", max_seconds=MAX_SECONDS,
                      examples=[folders["a"], folders["b"]])
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    client = Client(url, verbose=False, download_files=str(folders["root"] / "downloads"), analytics_enabled=False)
    yield url, client
    client.close()
    demo.close()


@pytest.fixture(scope="module")
def clips(folders):
    return {"a": folders["a"], "b": folders["b"]}


ENDPOINTS = {"/blend", "/check_clip_a", "/check_clip_b", "/generate_midi", "/sample", "/move", "/pad", "/shift",
             "/inspect"}


def test_named_endpoints_name_every_input_and_output(served):
    url, client = served
    api = client.view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == ENDPOINTS and not api["unnamed_endpoints"]
    for name, endpoint in api["named_endpoints"].items():
        names = [p["parameter_name"] for p in endpoint["parameters"]] + [r["label"] for r in endpoint["returns"]]
        assert all(n and not re.fullmatch(r"(value|param)_\d+", n) for n in names), (name, names)
    assert [p["parameter_name"] for p in api["named_endpoints"]["/move"]["parameters"]] == [
        "clip", "genre", "seed", "seconds", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "model", "vocoder"]


def test_examples_are_cached_and_load_with_their_outputs(served, folders):
    url, client = served
    config = httpx.get(f"{url}config", timeout=30).json()
    datasets = {c["props"].get("elem_id"): c["props"] for c in config["components"] if c.get("type") == "dataset"}
    assert len(datasets["blend-examples"]["samples"]) == 2  # (a, b) and (b, a)
    assert datasets["blend-examples"]["sample_labels"] == ["a × b", "b × a"]
    assert len(datasets["move-examples"]["samples"]) == 2
    cached = list(Path(app_module._examples_cache()).rglob("log.csv"))
    assert len(cached) >= 2 and all(len(p.read_text().splitlines()) >= 3 for p in cached)  # header + 2 rows each


def test_blend_through_the_api(served, clips):
    _, client = served
    picture, audio, strip_picture, strip, steps, status = client.predict(
        handle_file(str(clips["a"])), handle_file(str(clips["b"])), 0.25, "slerp", "crop", True, api_name="/blend")
    assert picture.endswith("blend.png") and strip_picture.endswith("morph_strip.png")
    wav, rate = sf.read(audio, dtype="float32")
    hop = FRONTEND["hop_length"]
    assert rate == FRONTEND["sample_rate"] and len(wav) == (rate // hop) * hop  # B lasts 1 s
    assert rms(audio) > 1e-3 and rms(strip) > 1e-3
    assert audio.endswith("blend_alpha0.25_slerp.wav")
    assert [Path(s).name for s in steps][0] == "morph_step1_alpha0.00_slerp.wav" and len(steps) == 5
    assert "α = 0.25" in status and "morph strip" in status


def test_upload_check_refuses_at_once_and_clears_the_outputs(served, clips, tmp_path):
    _, client = served
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    kept, *outputs, status = client.predict(handle_file(str(text)), api_name="/check_clip_a")
    assert kept is None and outputs == [None] * 5
    assert status.startswith("**Refused:** Clip A (notes.wav) is not an audio file this demo can read")
    *_, status = client.predict(handle_file(str(clips["b"])), api_name="/check_clip_b")
    assert status == "Clip B (b.wav): 1.0 s, ready"


def test_vocoder_choice_is_checked(served, clips):
    _, client = served
    # the tiny model's 8 kHz front end is not the bundled neural vocoder's: only Griffin-Lim is offered
    with pytest.raises(AppError, match="default-vocoder is not in the list of choices: \\['griffin-lim'\\]"):
        client.predict(handle_file(str(clips["a"])), handle_file(str(clips["b"])), 0.5, "slerp", "crop", False,
                       vocoder="default-vocoder", api_name="/blend")


def test_bad_upload_is_a_plain_message_and_the_app_keeps_serving(served, clips, tmp_path):
    _, client = served
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    with pytest.raises(AppError, match=r"Clip A \(notes\.txt\) is not an audio file this demo can read"):
        client.predict(handle_file(str(text)), handle_file(str(clips["b"])), 0.5, "lerp", "crop", False,
                       api_name="/blend")
    long = write_tone(tmp_path / "long.wav", seconds=MAX_SECONDS + 2)
    with pytest.raises(AppError, match=r"Clip B \(long\.wav\) is 7\.0 s long; this demo takes clips of up to 5 s"):
        client.predict(handle_file(str(clips["a"])), handle_file(str(long)), 0.5, "lerp", "crop", False,
                       api_name="/blend")
    _, audio, _, strip, steps, _ = client.predict(handle_file(str(clips["a"])), handle_file(str(clips["b"])), 0.5,
                                                  "lerp", "loop", False, api_name="/blend")
    assert rms(audio) > 1e-3 and strip is None and steps is None


def test_generate_midi_through_the_api(served):
    _, client = served
    picture, preview, midi, status = client.predict("jazz", "folk", 0.3, 4, 0.8, 7, api_name="/generate_midi")
    assert "velocities from the model" in status
    assert midi.endswith(".mid") and picture.endswith(".png")
    pm = pretty_midi.PrettyMIDI(midi)
    assert sum(len(i.notes) for i in pm.instruments) > 0
    assert mido.MidiFile(midi).length > 0
    assert rms(preview) > 1e-3
    assert "4 bars of jazz=0.70+folk=0.30" in status
    *_, midi, status = client.predict("jazz", "", 0.3, 2, 0.8, 7, False, 95, 40, "fixed", 64,
                                      api_name="/generate_midi")
    pm = pretty_midi.PrettyMIDI(midi)
    assert [i.program for i in pm.instruments] == [40] and {n.velocity for n in pm.instruments[0].notes} == {64}
    assert "2 bars of jazz at 95 bpm, Violin" in status  # no second genre: the mix weight is ignored


def test_explore_through_the_api(served, clips):
    _, client = served
    plot, audio, status = client.predict("folk", 1.0, 0.8, 1, api_name="/sample")
    assert plot.endswith(".png") and rms(audio) > 1e-3 and "folk" in status
    plot, audio, status = client.predict(handle_file(str(clips["a"])), "folk", "jazz", 0.5, "condition",
                                         api_name="/shift")
    assert rms(audio) > 1e-3 and "toward jazz" in status
    plot, audio, status = client.predict(handle_file(str(clips["a"])), d1=1.5, api_name="/move")
    assert rms(audio) > 1e-3 and "directions 1: +1.5" in status
    plot, audio, status = client.predict(None, "jazz", 2, 1.0, d2=-1.0, api_name="/move")
    assert "prior sample of jazz, seed 2" in status
    plot, audio, status = client.predict("clip:a", "clip:b", "genre:folk", "genre:jazz", 0.25, 0.75,
                                         api_name="/pad")
    assert rms(audio) > 1e-3 and "x = 0.25, y = 0.75" in status
    with pytest.raises(AppError, match="pick the clip's genre"):
        client.predict(handle_file(str(clips["a"])), "", "jazz", 0.5, "condition", api_name="/shift")


def test_page_opens_without_a_model_and_says_how_to_pass_one(folders):
    demo = build_demo(folders["root"] / "no_such_model", folders["midi"], device="cpu")
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        config = httpx.get(f"{url}config", timeout=30).json()
        texts = [c.get("props", {}).get("value") for c in config["components"] if c.get("type") == "markdown"]
        assert any("No mel VAE (audio) model is loaded" in str(t) and "--mel-model" in str(t) for t in texts)
        assert any("Running on **CPU**" in str(t) for t in texts)
        endpoints = {d.get("api_name") for d in config["dependencies"]}
        assert "generate_midi" in endpoints and "blend" not in endpoints
    finally:
        demo.close()


def test_two_audio_models_offer_a_choice(folders, clips):
    second = make_mel_model(folders["root"] / "mel2")
    demo = build_demo([folders["mel"], second], folders["midi"], device="cpu", max_seconds=MAX_SECONDS, examples=[])
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    client = Client(url, verbose=False, download_files=str(folders["root"] / "downloads2"), analytics_enabled=False)
    try:
        config = httpx.get(f"{url}config", timeout=30).json()
        choice = next(c["props"] for c in config["components"] if c["props"].get("elem_id") == "model-choice")
        assert choice["visible"] and [c[1] for c in choice["choices"]] == [str(folders["mel"]), str(second)]
        *_, status = client.predict(handle_file(str(clips["a"])), handle_file(str(clips["b"])), 0.5, "slerp", "crop",
                                    False, str(second), "griffin-lim", api_name="/blend")
        assert "α = 0.50" in status
        with pytest.raises(AppError, match="elsewhere is not in the list of choices"):
            client.predict(handle_file(str(clips["a"])), handle_file(str(clips["b"])), 0.5, "slerp", "crop", False,
                           "elsewhere", api_name="/blend")
    finally:
        client.close()
        demo.close()


def test_handler_failures_become_one_line_messages():
    import gradio as gr

    from audiovae.demo.ui import Context, run
    from audiovae.errors import ConfigError

    context = Context({}, None, {}, 5.0, "/tmp")

    def _call(fn):
        return run(context, fn)

    def broken():
        raise ZeroDivisionError("division by zero")

    def refuses():
        raise ConfigError("unknown genre 'rock'; this model knows: folk, jazz")

    with pytest.raises(gr.Error) as info:
        _call(broken)
    assert info.value.message.startswith("Something went wrong (ZeroDivisionError: division by zero). The demo is "
                                         "still running")
    with pytest.raises(gr.Error) as info:
        _call(refuses)
    assert info.value.message == "unknown genre 'rock'; this model knows: folk, jazz"


def test_demo_verb_builds_the_page_and_launches_it_on_localhost(folders, monkeypatch, capsys):
    import gradio as gr

    import audiovae.demo.app as app
    from audiovae.cli import main

    launched = {}
    monkeypatch.setattr(app, "launch", lambda demo, **kwargs: launched.update(demo=demo, **kwargs))
    assert main(["demo", "--mel-model", str(folders["mel"]), "--midi-model", str(folders["midi"]), "--port", "7999",
                 "--device", "cpu", "--max-seconds", "5"]) == 0
    assert isinstance(launched["demo"], gr.Blocks)
    assert (launched["host"], launched["port"], launched["share"]) == ("127.0.0.1", 7999, False)
    assert main(["demo", "--max-seconds", "0"]) == 2
    assert "--max-seconds must be > 0" in capsys.readouterr().err
