"""Recognition for users: the `Recognizer` API, prediction over folders, text search.

The names below are loaded on first use, so that `froster --help` (which imports this
package for its sub-commands) does not load torch and open_clip. (`froster.inference.predict`
is the module; its function is `froster.inference.predict.predict`: a lazily loaded
function of the same name would be replaced by the module as soon as it is imported.)"""

_EXPORTS = {"Recognizer": "api", "VideoResult": "api", "find_videos": "api",
            "VideoIndex": "search", "search_folder": "search"}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
