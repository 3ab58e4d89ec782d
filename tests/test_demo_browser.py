"""The demo page in a real browser (Debian's chromium driven by playwright): upload two clips, move α, press Blend and
hear the result; generate MIDI and download the .mid; inspect a damaged clip and see its flagged span. Needs
/usr/bin/chromium (`apt-get install -y chromium`)."""
from __future__ import annotations

import io
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np  # noqa: E402
import pretty_midi  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402

from audiovae.demo.app import build_demo, launch  # noqa: E402
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


@pytest.fixture(scope="module")
def url(files):
    demo = build_demo(files["mel"], files["midi"], device="cpu", max_seconds=MAX_SECONDS)
    _, local_url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    yield local_url
    demo.close()


def upload(page, elem_id: str, path: Path) -> None:
    """Put a file into a gr.Audio input and wait until the upload has reached the server."""
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))
    page.locator(f"#{elem_id} a.download-link[href*='{path.name}']").wait_for()


def audio_src(page, elem_id: str) -> str:
    page.wait_for_function(f"() => document.querySelector('#{elem_id} audio')?.src", timeout=TIMEOUT_MS)
    return page.locator(f"#{elem_id} audio").evaluate("a => a.src")


def test_blend_and_midi_in_a_real_browser(browser, files, url, tmp_path):
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.get_by_text("Running on CPU").wait_for()

    # a clip longer than the limit: a plain message in the page, no audio
    upload(page, "blend-a", files["long"])
    upload(page, "blend-b", files["b"])
    page.click("#blend-button")
    page.get_by_text("Clip A (long.wav) is 6.0 s long; this demo takes clips of up to 5 s").first.wait_for()
    assert page.locator("#blend-out audio").count() == 0

    # replace A, move α from 0.5 to 0.35 with the keyboard, blend
    page.locator("#blend-a button[aria-label='Clear']").click()
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
