"""What a user waits for in the demo: a blend of two 15 s clips and a latent-slider move, timed end to end through
the running app with gradio_client, next to the server's processing time and the handler's own time.

    python benchmarks/demo_latency.py [--data ../shared/data/audio_genres] [--repeats 5] [--mel-model M]
                                      [--vocoder auto] [--device cpu] [--threads N]

Serves :func:`audiovae.demo.build_demo` the way `audiovae demo` does (the bundled models unless told otherwise) on
127.0.0.1 in this process, so it can time three layers of each request:

- handler: the plain function (:func:`audiovae.demo.handlers.blend_clips`, :func:`audiovae.demo.explorer.move_source`):
  read, encode, decode, vocoder, picture, wav;
- server: gradio's processing of the event (``Blocks.process_api``: preprocessing the uploads, the handler,
  postprocessing, i.e. copying the outputs into its cache);
- end to end: ``Client.predict`` (uploads, queue, server, result download).

Prints min and median of ``--repeats`` runs per layer (after one warm-up run each), with the machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


THREADS_SEEN: set[int] = set()  # torch's intra-op threads inside the handlers


def _timed(store: list, fn):
    def wrapper(*args, **kwargs):
        import torch

        THREADS_SEEN.add(torch.get_num_threads())
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            store.append(time.perf_counter() - start)
    return wrapper


def _timed_async(store: list, fn):
    async def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            store.append(time.perf_counter() - start)
    return wrapper


def fifteen_second_clips(data: Path, scratch: Path) -> tuple[Path, Path]:
    """Two clips of 15 s from different genre folders of ``data``: the first recording of each folder that lasts at
    least 15 s, cut to its middle 15 s as a wav in ``scratch`` (audio_genres holds 15 s clips; music_real whole
    tracks). Unreadable files are passed over."""
    import soundfile as sf

    found = []
    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        for path in sorted(folder.iterdir()):
            try:
                info = sf.info(str(path))
            except (RuntimeError, sf.LibsndfileError):
                continue
            if info.duration < 15.0 - 0.05:
                continue
            start = int((info.duration - 15.0) / 2 * info.samplerate)
            audio, rate = sf.read(str(path), start=max(start, 0), frames=int(15.0 * info.samplerate), always_2d=True)
            clip = scratch / f"{folder.name}_{path.stem}.wav"
            sf.write(str(clip), audio, rate)
            found.append(clip)
            break
        if len(found) == 2:
            return found[0], found[1]
    raise SystemExit(f"{data} holds no two recordings of at least 15 s in two genre folders")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" /
                                              "audio_genres"), help="folder with genre subfolders of recordings of 15 s or more")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mel-model", default=None)
    parser.add_argument("--vocoder", default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per job [default: the demo's]")
    args = parser.parse_args(argv)

    import gradio as gr
    import torch
    from gradio_client import Client, handle_file

    from audiovae.demo import explorer, handlers
    from audiovae.demo.app import build_demo, launch
    from audiovae.examples import examples_dir

    import atexit
    import shutil

    scratch = Path(tempfile.mkdtemp(prefix="audiovae-latency-"))
    atexit.register(shutil.rmtree, scratch, True)
    clip_a, clip_b = fifteen_second_clips(Path(args.data), scratch)
    slider_clip = examples_dir() / "rock.ogg"
    handler_times = {"blend": [], "move": []}
    server_times: list[float] = []
    handlers.blend_clips = _timed(handler_times["blend"], handlers.blend_clips)
    explorer.move_source = _timed(handler_times["move"], explorer.move_source)
    gr.Blocks.process_api = _timed_async(server_times, gr.Blocks.process_api)

    demo = build_demo(args.mel_model, None, device=args.device, vocoder=args.vocoder, threads=args.threads,
                      examples=[])
    _, url, _ = launch(demo, port=_free_port(), prevent_thread_lock=True, quiet=True)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as downloads:
            client = Client(url, verbose=False, download_files=downloads)
            jobs = {
                "blend of two 15 s clips": ("blend", lambda: client.predict(
                    handle_file(str(clip_a)), handle_file(str(clip_b)), 0.5, "slerp", "crop", False,
                    api_name="/blend")),
                "latent-slider move, 10 s clip": ("move", lambda i: client.predict(
                    handle_file(str(slider_clip)), d1=[-1.5, 1.5][i % 2], api_name="/move")),
            }
            for label, (key, job) in jobs.items():
                end_to_end = []
                for i in range(args.repeats + 1):
                    handler_before, server_before = len(handler_times[key]), len(server_times)
                    start = time.perf_counter()
                    job() if key == "blend" else job(i)
                    if i == 0:  # warm-up: first encodes, caches, lazy imports
                        del handler_times[key][handler_before:], server_times[server_before:]
                        continue
                    end_to_end.append(time.perf_counter() - start)
                rows.append((label, handler_times[key][-args.repeats:], server_times[-args.repeats:], end_to_end))
            client.close()
    finally:
        demo.close()

    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, threads per job "
          f"{'/'.join(map(str, sorted(THREADS_SEEN)))}, device {args.device}, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"clips: {clip_a.name}, {clip_b.name} (15 s); slider: {slider_clip.name} (10 s); vocoder {args.vocoder}; "
          f"{args.repeats} runs after one warm-up\n")
    print("| what | handler s (min / median) | server s (min / median) | end to end s (min / median) |")
    print("|---|---|---|---|")
    for label, handler, server, end_to_end in rows:
        cells = [f"{min(v):.3f} / {statistics.median(v):.3f}" for v in (handler, server, end_to_end)]
        print(f"| {label} | {' | '.join(cells)} |")
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
