"""A name -> builder table whose entries are imported on first use.

    BACKBONES = Registry("temporal", "froster.backbones", {"neighbor": "neighbor:BACKBONE"})
    BACKBONES.names()          # ("neighbor",): no import, so `froster --help` stays light
    BACKBONES.get("neighbor")  # imports froster.backbones.neighbor, returns its BACKBONE

An entry is "module" (the module itself) or "module:attribute", relative to `package`.
Every area with variants (backbones, sampling rules, explanation methods, checkpoint
formats) has one; config validation and the command line's choices read `names()`.
"""

from __future__ import annotations

import importlib

from .errors import FrosterError


class Registry:
    def __init__(self, key: str, package: str, entries: dict[str, str]):
        self.key = key  # what the name is given as (a config key), for error messages
        self.package = package
        self._entries = dict(entries)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self._entries)

    def check(self, name) -> str:
        """`name`, or a FrosterError listing the registered names."""
        if name not in self._entries:
            raise FrosterError(f"{self.key}={name!r}: expected one of {', '.join(self._entries)}")
        return name

    def get(self, name: str):
        """The registered object (imported now if it was not yet)."""
        module, _, attribute = self._entries[self.check(name)].partition(":")
        loaded = importlib.import_module(f"{self.package}.{module}")
        return getattr(loaded, attribute) if attribute else loaded
