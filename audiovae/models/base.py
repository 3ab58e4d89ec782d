"""Shared plumbing for models: their constructor keywords are their saved config."""
from __future__ import annotations

import functools
import inspect


def saves_init_args(cls):
    """Class decorator: record the keyword arguments of ``__init__`` in ``self.init_args`` (JSON-able),
    so a checkpoint rebuilds exactly what trained. Constructors must be keyword-only."""
    init = cls.__init__
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapped(self, **kwargs):
        init(self, **kwargs)
        if type(self) is cls:
            bound = signature.bind(self, **kwargs)
            bound.apply_defaults()  # defaults are saved too, so a later change of default cannot alter a model
            self.init_args = {k: list(v) if isinstance(v, tuple) else v
                              for k, v in bound.arguments.items() if k != "self"}

    cls.__init__ = wrapped
    return cls
