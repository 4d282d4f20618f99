"""Say at once when an open_clip tag needs a download that cannot happen.

open_clip fetches tagged weights through the Hugging Face hub, whose client retries a
failing connection for about a minute per file before giving up. Before asking it, we
look in the local caches; if the weights are not there, we try one connection to the
server (a few seconds at most). Unreachable: a clear error now, with how to pass a local
file. Cached weights still load offline: the hub client is then told not to call out.
"""

from __future__ import annotations

import contextlib
import os
import socket
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 3.0


def tag_source(pretrained_cfg: dict) -> tuple[str, list[str] | None, str | None]:
    """("hub", [repo, file names to look for], None) or ("url", None, url), as open_clip's
    `download_pretrained` chooses (the hub first when the entry has one)."""
    hub = pretrained_cfg.get("hf_hub") or ""
    if hub:
        repo, filename = os.path.split(hub)  # "org/name/" -> ("org/name", ""): default file
        filename = filename or "open_clip_pytorch_model.bin"
        safe = "open_clip_model.safetensors" if filename == "open_clip_pytorch_model.bin" \
            else filename.removesuffix(".bin") + ".safetensors"
        return "hub", [repo, safe, filename], None
    return "url", None, pretrained_cfg.get("url") or None


def cached(pretrained_cfg: dict, cache_dir: str | None = None) -> bool:
    """Whether the tagged weights are already on this machine."""
    if pretrained_cfg.get("file"):
        return os.path.isfile(pretrained_cfg["file"])
    kind, hub, url = tag_source(pretrained_cfg)
    if kind == "hub":
        from huggingface_hub import try_to_load_from_cache
        repo, *files = hub
        return any(isinstance(try_to_load_from_cache(repo, f, cache_dir=cache_dir), str)
                   for f in files)
    if url:
        folder = cache_dir or os.path.expanduser("~/.cache/clip")
        return os.path.isfile(os.path.join(folder, os.path.basename(urlparse(url).path)))
    return False


def server_of(pretrained_cfg: dict) -> str:
    kind, _, url = tag_source(pretrained_cfg)
    if kind == "hub":
        from huggingface_hub import constants
        return constants.ENDPOINT
    return url or ""


def unreachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why `url`'s server (or the proxy in the environment) cannot be reached, or None."""
    if _hub_offline_mode():
        return "HF_HUB_OFFLINE is set"
    proxy = next((os.environ[k] for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
                  if os.environ.get(k)), None)
    target = urlparse(proxy if proxy and "://" in proxy else f"http://{proxy}" if proxy else url)
    host = target.hostname
    if not host:
        return None
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as err:
        return f"{host}:{port}: {err.strerror or err}"


def _hub_offline_mode() -> bool:
    try:
        from huggingface_hub import constants
        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:
        return False


@contextlib.contextmanager
def hub_offline():
    """Make the hub client use its cache without calling the server (no retry delays)."""
    try:
        from huggingface_hub import constants
    except ImportError:
        yield
        return
    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before
