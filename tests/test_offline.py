"""An open_clip tag on a machine that cannot reach the hub: a clear error in seconds (the
hub client alone retries for about a minute), and weights already cached still load.

The hub is pointed at a closed local port (so the test behaves the same with or without
network) and a fresh cache folder; the tiny test model gets two hub-served tags, as
open_clip's 'openai' tags are."""

import time

import pytest
import torch
from safetensors.torch import save_file

from froster.clip import WeightsUnavailableError, create_clip


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """A hub cache holding the weights of tag 'cached' (not 'absent'); the server unreachable."""
    import huggingface_hub.constants as hub
    from open_clip import pretrained

    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setitem(pretrained._PRETRAINED, "froster-tiny", {
        "cached": {"hf_hub": "froster-test/tiny-cached/", "quick_gelu": True},
        "absent": {"hf_hub": "froster-test/tiny-absent/", "quick_gelu": True}})
    torch.manual_seed(4)
    clip, _ = create_clip("froster-tiny", quick_gelu=True)
    repo = tmp_path / "hub/models--froster-test--tiny-cached"
    (repo / "snapshots/abc123").mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()},
              repo / "snapshots/abc123/open_clip_model.safetensors")
    (repo / "refs").mkdir()
    (repo / "refs/main").write_text("abc123")
    return clip


def test_a_tag_that_needs_a_download_fails_within_seconds(offline_hub):
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as err:
        create_clip("froster-tiny", "absent")
    assert time.perf_counter() - start < 10  # before: about 50 s of retries, then the error
    message = str(err.value)
    assert ("froster-tiny weights tagged 'absent' are not on this machine and need a download "
            "from http://127.0.0.1:9, which cannot be reached") in message
    assert "pass a local file instead: pretrained=/path/to/froster-tiny.pt" in message


def test_cached_weights_still_load_without_network(offline_hub):
    start = time.perf_counter()
    clip, _ = create_clip("froster-tiny", "cached")
    assert time.perf_counter() - start < 10
    assert torch.equal(clip.visual.proj, offline_hub.visual.proj)
    assert type(clip.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
