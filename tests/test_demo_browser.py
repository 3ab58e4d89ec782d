"""The demo page in a real browser (Debian's chromium driven by playwright): a bad upload refused the moment it
arrives, with the reason in the status line; an example pair clicked and its blend played; two clips uploaded, α
moved, Blend pressed and the result heard; MIDI generated and the .mid downloaded; a latent slider moved and the
sound changed; a damaged clip inspected and its flagged span seen. Needs /usr/bin/chromium
(`apt-get install -y chromium`)."""
from __future__ import annotations

import io
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np  # noqa: E402
import pretty_midi  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

import audiovae  # noqa: E402
from audiovae.demo.app import build_demo, launch  # noqa: E402
from audiovae.inference import waveform_to_mel  # noqa: E402
from demo_fixtures import (FRONTEND, MAX_SECONDS, free_port, make_mel_model, make_midi_model,  # noqa: E402
                           write_burst, write_tone)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"the browser test needs Debian's chromium at {CHROMIUM}; install it with "
                    "`sudo apt-get install -y chromium` (CI's .ci/run does)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_browser")
    return {"mel": make_mel_model(root / "mel"), "midi": make_midi_model(root / "midi"),
            "a": write_tone(root / "a.wav", seconds=1.5), "b": write_tone(root / "b.wav", seconds=1.0, freq=660.0),
            "long": write_tone(root / "long.wav", seconds=MAX_SECONDS + 1.0),
            "burst": write_burst(root / "burst.wav", seconds=3.0, at=1.0)}


LOG_MEL_RMS_MOVED = 0.05  # a slider moved by 2 standard deviations changes the log-mel by more than this (nats)


@pytest.fixture(scope="module")
def url(files):
    demo = build_demo(files["mel"], files["midi"], device="cpu", max_seconds=MAX_SECONDS,
                      examples=[files["a"], files["b"]])
    _, local_url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    yield local_url
    demo.close()


def upload(page, elem_id: str, path: Path) -> None:
    """Put a file into a gr.Audio input and wait until the upload has reached the server."""
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))
    page.locator(f"#{elem_id} a.download-link[href*='{path.name}']").wait_for()


def audio_src(page, elem_id: str, *, other_than: str = "") -> str:
    page.wait_for_function(f"() => (document.querySelector('#{elem_id} audio')?.src || '{other_than}') != "
                           f"'{other_than}'", timeout=TIMEOUT_MS)
    return page.locator(f"#{elem_id} audio").evaluate("a => a.src")


def fetch_wav(page, src: str) -> np.ndarray:
    response = page.request.get(src)
    assert response.ok
    wav, rate = sf.read(io.BytesIO(response.body()), dtype="float32")
    assert rate == FRONTEND["sample_rate"]
    return wav


def test_blend_and_midi_in_a_real_browser(browser, files, url, tmp_path):
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.get_by_text("Running on CPU").wait_for()

    # an example pair: its blend was computed at launch and plays at once
    page.locator("#blend-examples button").first.click()
    example = audio_src(page, "blend-out")
    assert float(np.sqrt(np.mean(fetch_wav(page, example) ** 2))) > 1e-3
    page.locator("#blend-status").get_by_text("Blended a.wav and b.wav at α = 0.50").wait_for()

    # a clip longer than the limit is refused the moment it is uploaded: the reason stays in the status line, the
    # input is emptied and the example's outputs are cleared
    page.locator("#blend-a button[aria-label='Clear']").click()
    page.locator("#blend-a input[type=file]").set_input_files(str(files["long"]))
    page.locator("#blend-status").get_by_text("Refused: Clip A (long.wav) is 6.0 s long; this demo takes clips "
                                              "of up to 5 s").wait_for()
    page.wait_for_function("() => !document.querySelector('#blend-out audio')")
    assert page.locator("#blend-a audio").count() == 0
    page.wait_for_timeout(1500)  # it stays
    assert page.locator("#blend-status").inner_text().startswith("Refused: Clip A (long.wav)")
    page.locator("#blend-b button[aria-label='Clear']").click()
    upload(page, "blend-b", files["b"])
    page.locator("#blend-status").get_by_text("Clip B (b.wav): 1.0 s, ready").wait_for()

    # upload A, move α from 0.5 to 0.35 with the keyboard, blend
    upload(page, "blend-a", files["a"])
    slider = page.locator("#blend-alpha input[type=range]")
    slider.focus()
    for _ in range(3):
        slider.press("ArrowLeft")
    assert page.locator("#blend-alpha input[type=number]").input_value() == "0.35"
    page.click("#blend-button")
    src = audio_src(page, "blend-out")
    assert "blend_alpha0.35_slerp.wav" in src
    response = page.request.get(src)
    assert response.ok
    wav, rate = sf.read(io.BytesIO(response.body()), dtype="float32")
    hop = FRONTEND["hop_length"]
    assert rate == FRONTEND["sample_rate"] and len(wav) == (rate // hop) * hop  # the shorter clip lasts 1 s
    assert float(np.sqrt(np.mean(wav**2))) > 1e-3
    page.locator("#blend-status").get_by_text("α = 0.35").wait_for()

    # MIDI by genre: generate, then download the .mid from its link
    page.get_by_role("tab", name="MIDI by genre").click()
    page.click("#midi-button")
    link = page.locator("#midi-file a.download-link[href*='.mid']")
    link.wait_for()
    response = page.request.get(link.get_attribute("href"))
    assert response.ok
    midi_path = tmp_path / "download.mid"
    midi_path.write_bytes(response.body())
    pm = pretty_midi.PrettyMIDI(str(midi_path))
    assert sum(len(inst.notes) for inst in pm.instruments) > 0
    assert audio_src(page, "midi-audio")

    # Explore: a clip moved along the first latent direction sounds different (RMS difference of the log-mels)
    page.get_by_role("tab", name="Explore").click()
    upload(page, "move-clip", files["a"])
    page.locator("#move-status").get_by_text("Moved a.wav along directions none").wait_for()
    start = audio_src(page, "move-audio")
    slider = page.locator("#move-d1 input[type=range]")
    slider.focus()
    for _ in range(8):  # step 0.25: +2 standard deviations
        slider.press("ArrowRight")
    assert page.locator("#move-d1 input[type=number]").input_value() == "2"
    page.locator("#move-status").get_by_text("directions 1: +2.0").wait_for()
    moved = audio_src(page, "move-audio", other_than=start)
    model = audiovae.load(files["mel"])
    before, after = (waveform_to_mel(model, fetch_wav(page, src)) for src in (start, moved))
    assert before.shape == after.shape
    assert float(torch.sqrt(torch.mean((before - after) ** 2))) > LOG_MEL_RMS_MOVED

    # Inspect: a tone with a noise burst; at the lowest threshold (this random tiny model barely reacts) a span is
    # flagged, listed in the status line, and the worst span plays
    page.get_by_role("tab", name="Inspect").click()
    upload(page, "inspect-clip", files["burst"])
    threshold = page.locator("#inspect-threshold input[type=range]")
    threshold.focus()
    threshold.press("Home")
    assert page.locator("#inspect-threshold input[type=number]").input_value() == "1"
    page.click("#inspect-button")
    page.locator("#inspect-status").get_by_text("flagged span").wait_for()
    assert "burst_" in audio_src(page, "inspect-audio")
    page.close()
