"""`torch.compile` as an option that falls back cleanly to eager where it does not work
(no compiler toolchain, an unsupported operator, an old torch)."""

from __future__ import annotations

import functools
import warnings

import torch


def compile_or_eager(fn, **compile_kwargs):
    """Return `fn` compiled; if compiling fails on the first call, warn once and run `fn`."""
    if not hasattr(torch, "compile"):
        warnings.warn("torch.compile is not available in this torch; running eagerly")
        return fn
    compiled = torch.compile(fn, **compile_kwargs)
    use_compiled = True

    @functools.wraps(fn)
    def run(*args, **kwargs):
        nonlocal use_compiled
        if use_compiled:
            try:
                return compiled(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - any compiler failure means: go eager
                use_compiled = False
                warnings.warn(f"torch.compile failed ({type(err).__name__}: {str(err)[:200]}); "
                              f"falling back to eager execution")
        return fn(*args, **kwargs)

    return run
