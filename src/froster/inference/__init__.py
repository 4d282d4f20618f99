"""Recognition for users: the `Recognizer` API, prediction over folders, text search.

The names below are loaded on first use, so that `froster --help` (which imports this
package for its sub-commands) does not load torch and open_clip. (`froster.inference.predict`
is the module; its function is `froster.inference.predict.predict`: a lazily loaded
function of the same name would be replaced by the module as soon as it is imported.)"""

from ..lazy import lazy_exports

_EXPORTS = {"Recognizer": "api", "VideoResult": "api", "find_videos": "videos",
            "VideoIndex": "search", "search_folder": "search"}

__all__ = list(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
