"""The Gradio demo: :func:`build_demo` (needs ``gradio``, the ``demo`` extra) and its plain handler functions in
:mod:`audiovae.demo.handlers` and :mod:`audiovae.demo.explorer` (no gradio), which tests call directly; the
pictures are drawn by :mod:`audiovae.demo.plots`. The page itself: app.py (the page), ui.py (shared pieces) and a
tab_*.py per tab."""
from __future__ import annotations


def build_demo(*args, **kwargs):
    """See :func:`audiovae.demo.app.build_demo`; imported on use so the handlers work without gradio."""
    from .app import build_demo as build

    return build(*args, **kwargs)


__all__ = ["build_demo"]
