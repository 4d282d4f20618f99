"""Package faces that load their names on first use, so that `froster --help` (which
imports each area's command module) does not load torch."""

from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, str]):
    """A module-level `__getattr__` for `package`: `exports` maps a name to the submodule
    (relative to `package`) that defines it."""

    def __getattr__(name: str):
        if name in exports:
            return getattr(importlib.import_module(f".{exports[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
