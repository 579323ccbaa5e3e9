"""One module and one kv file per screen; the app builds them by name."""
from __future__ import annotations

from importlib import import_module


def build_screen(name: str):
    """The screen called ``name`` (module ``screens.<name>``, class ``SCREEN``)."""
    module = import_module(f"{__name__}.{name}")
    return module.SCREEN(name=name)
