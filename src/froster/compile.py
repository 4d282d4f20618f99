"""`torch.compile` as an option that falls back cleanly to eager where it does not work
(no compiler toolchain, an unsupported operator, an old torch)."""

from __future__ import annotations

import functools
import warnings

import torch


def compile_or_eager(fn, **compile_kwargs):
    """Return `fn` compiled; if compiling fails on the first call, warn once and run `fn`.
    The returned function's `calls` counts the calls that ran compiled and eagerly."""
    if not hasattr(torch, "compile"):
        warnings.warn("torch.compile is not available in this torch; running eagerly")
        return fn
    compiled = torch.compile(fn, **compile_kwargs)
    use_compiled = True
    calls = {"compiled": 0, "eager": 0}

    @functools.wraps(fn)
    def run(*args, **kwargs):
        nonlocal use_compiled
        if use_compiled:
            try:
                out = compiled(*args, **kwargs)
                calls["compiled"] += 1
                return out
            except Exception as err:  # noqa: BLE001 - any compiler failure means: go eager
                use_compiled = False
                warnings.warn(f"torch.compile failed ({type(err).__name__}: {str(err)[:200]}); "
                              f"falling back to eager execution")
        calls["eager"] += 1
        return fn(*args, **kwargs)

    run.calls = calls
    return run
