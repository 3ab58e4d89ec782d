"""The demo app served on 127.0.0.1 and driven through its named API endpoints with gradio_client."""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx  # noqa: E402
import mido  # noqa: E402
import pretty_midi  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

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


def test_named_endpoints_and_examples(served):
    url, client = served
    api = client.view_api(print_info=False, return_format="dict")
    assert {"/blend", "/generate_midi", "/sample", "/shift"} <= set(api["named_endpoints"])
    config = httpx.get(f"{url}config", timeout=30).json()
    datasets = [c["props"] for c in config["components"] if c.get("type") == "dataset"]
    assert len(datasets) == 1 and len(datasets[0]["samples"]) == 2  # (a, b) and (b, a)


def test_blend_through_the_api(served, clips):
    _, client = served
    plot, audio, strip, status = client.predict(handle_file(str(clips["a"])), handle_file(str(clips["b"])), 0.25,
                                                "slerp", "crop", True, api_name="/blend")
    assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image/png;base64,")
    wav, rate = sf.read(audio, dtype="float32")
    hop = FRONTEND["hop_length"]
    assert rate == FRONTEND["sample_rate"] and len(wav) == (rate // hop) * hop  # B lasts 1 s
    assert rms(audio) > 1e-3 and rms(strip) > 1e-3
    assert audio.endswith("blend_alpha0.25_slerp.wav")
    assert "α = 0.25" in status and "morph strip" in status


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
    _, audio, strip, _ = client.predict(handle_file(str(clips["a"])), handle_file(str(clips["b"])), 0.5, "lerp",
                                        "loop", False, api_name="/blend")
    assert rms(audio) > 1e-3 and strip is None


def test_generate_midi_through_the_api(served):
    _, client = served
    picture, preview, midi, status = client.predict("jazz", "folk", 0.3, 4, 0.8, 7, api_name="/generate_midi")
    assert midi.endswith(".mid") and picture.endswith(".png")
    pm = pretty_midi.PrettyMIDI(midi)
    assert sum(len(i.notes) for i in pm.instruments) > 0
    assert mido.MidiFile(midi).length > 0
    assert rms(preview) > 1e-3
    assert "4 bars of jazz=0.70+folk=0.30" in status


def test_explore_through_the_api(served, clips):
    _, client = served
    plot, audio, status = client.predict("folk", 1.0, 0.8, 1, api_name="/sample")
    assert plot["type"] == "matplotlib" and rms(audio) > 1e-3 and "folk" in status
    plot, audio, status = client.predict(handle_file(str(clips["a"])), "folk", "jazz", 0.5, "condition",
                                         api_name="/shift")
    assert rms(audio) > 1e-3 and "toward jazz" in status
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


def test_handler_failures_become_one_line_messages():
    import gradio as gr

    from audiovae.demo.app import _call
    from audiovae.errors import ConfigError

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
