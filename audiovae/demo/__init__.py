"""The Gradio demo: :func:`build_demo` (needs ``gradio``, the ``demo`` extra) and its plain handler functions in
:mod:`audiovae.demo.handlers` (no gradio), which tests call directly."""
from __future__ import annotations


def build_demo(*args, **kwargs):
    """See :func:`audiovae.demo.app.build_demo`; imported on use so the handlers work without gradio."""
    from .app import build_demo as build

    return build(*args, **kwargs)


__all__ = ["build_demo"]
