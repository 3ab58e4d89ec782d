"""The audiovae Gradio demo as a script: `python demos/app.py [--mel-model P] [--midi-model P] [--port 7860] ...`.

The page itself is built by :func:`audiovae.demo.build_demo` (inside the package, so an installed wheel has it);
this file re-exports it and launches it the way `audiovae demo` does.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from audiovae.demo.app import build_demo, launch  # noqa: E402

__all__ = ["build_demo", "launch"]


def main(argv: list[str] | None = None) -> int:
    from audiovae.cli import main as cli_main

    return cli_main(["demo", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
