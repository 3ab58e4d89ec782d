"""Screenshots of the demo's tabs for the README: serves `build_demo()` (the bundled models unless told otherwise) on
127.0.0.1, drives Debian's chromium through playwright, fills each tab with a result and writes
docs/images/demo_blend.png, demo_midi.png, demo_explore.png and demo_inspect.png. Before each screenshot it checks
that no label, button, input or player overlaps a picture on the page (and stops with the list when one does).

    python benchmarks/screenshots.py [--mel-model M] [--midi-model M] [--out docs/images] [--width 1280]

Needs /usr/bin/chromium (`apt-get install chromium`); never downloads a browser.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
TIMEOUT_MS = 120_000


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shoot(url: str, out: Path, width: int, inspect_clip: Path | None) -> list[Path]:
    from playwright.sync_api import sync_playwright

    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        page.get_by_text("Running on").first.wait_for()

        # Blend: click the first example pair (its result was computed at launch), then blend with a morph strip
        page.locator("#blend-examples button").first.click()
        page.wait_for_function("() => document.querySelector('#blend-out audio')?.src")
        page.click("#blend-strip-on input")
        page.click("#blend-button")
        page.locator("#blend-status").get_by_text("morph strip").wait_for()
        page.wait_for_function("() => document.querySelector('#blend-strip-plot img')?.complete")
        written.append(_save(page, out / "demo_blend.png"))

        page.get_by_role("tab", name="MIDI by genre").click()
        page.click("#midi-button")
        page.locator("#midi-status").get_by_text("Generated").wait_for()
        page.wait_for_function("() => document.querySelector('#midi-roll img')?.complete")
        written.append(_save(page, out / "demo_midi.png"))

        page.get_by_role("tab", name="Explore").click()
        page.click("#sample-button")
        page.locator("#sample-status").get_by_text("Sampled").wait_for()
        page.locator("#move-examples button").first.click()
        page.wait_for_function("() => document.querySelector('#move-audio audio')?.src")
        page.click("#pad-image img", position={"x": 90, "y": 230})
        page.locator("#pad-status").get_by_text("Pad point").wait_for()
        written.append(_save(page, out / "demo_explore.png"))

        page.get_by_role("tab", name="Inspect").click()
        if inspect_clip is not None:
            page.locator("#inspect-clip input[type=file]").set_input_files(str(inspect_clip))
            page.locator("#inspect-status").get_by_text("ready").wait_for()
            page.click("#inspect-button")
            page.locator("#inspect-status").get_by_text("standard deviations").wait_for()
            page.wait_for_function("() => document.querySelector('#inspect-plot img')?.complete")
        written.append(_save(page, out / "demo_inspect.png"))
        browser.close()
    return written


OVERLAPS_JS = """() => {
  const visible = e => { const r = e.getBoundingClientRect(); return r.width > 1 && r.height > 1 &&
                         getComputedStyle(e).visibility !== 'hidden' && e.offsetParent !== null; };
  const pictures = [...document.querySelectorAll('img')].filter(visible);
  const others = [...document.querySelectorAll('[data-testid=block-label], button, .icon-button-wrapper, label, ' +
                                                'input, audio, a.download-link')].filter(visible)
                  .filter(e => !e.matches('.icon-button-wrapper') || e.querySelector('button, a'));
  const hits = [];
  for (const img of pictures) {
    const a = img.getBoundingClientRect();
    for (const o of others) {
      if (o.contains(img) || img.contains(o)) continue;
      const b = o.getBoundingClientRect();
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 1 && h > 1) hits.push(`${img.closest('[id]')?.id}: ${o.tagName} ${o.textContent.trim().slice(0, 30)}`);
    }
  }
  return hits;
}"""


def _save(page, path: Path) -> Path:
    """Screenshot the whole page; refuses (RuntimeError) when a label, button or player overlaps a picture."""
    page.wait_for_timeout(500)  # let players and pictures settle
    overlaps = page.evaluate(OVERLAPS_JS)
    if overlaps:
        raise RuntimeError(f"{path.name}: elements overlap pictures: {overlaps}")
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mel-model", default=None)
    parser.add_argument("--midi-model", default=None)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "images"))
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--inspect-clip", default=None, help="recording for the Inspect tab [default: the bundled "
                        "rock example]")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).is_file():
        print(f"needs Debian's chromium at {CHROMIUM}", file=sys.stderr)
        return 2
    from audiovae.demo.app import build_demo, launch
    from audiovae.examples import examples_dir

    demo = build_demo(args.mel_model, args.midi_model, device="cpu")
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        clip = Path(args.inspect_clip) if args.inspect_clip else examples_dir() / "rock.ogg"
        for path in shoot(url, Path(args.out), args.width, clip if clip.is_file() else None):
            print(f"wrote {path}")
    finally:
        demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
