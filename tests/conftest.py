import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI does, before torch loads OpenMP

import logging
from pathlib import Path

import pytest
import torch
from _shared import SHARED, require


logging.getLogger().setLevel(logging.ERROR)


@pytest.fixture
def shared_dir() -> Path:
    return require(SHARED)


@pytest.fixture
def tiny_clip():
    """A random-weight tiny CLIP (width 64, 2 layers, 32 px) and its tokenizer."""
    from froster.clip import create_clip

    torch.manual_seed(0)
    return create_clip("froster-tiny")


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cli_with(monkeypatch, tmp_path, capsys):
    """`cli_with(*modules)`: a function running the real dispatcher with only those command
    modules (the others may be absent), a fresh text cache, and returning (code, out, err)."""
    import froster.cli

    def make(*modules):
        monkeypatch.setattr(froster.cli, "COMMAND_MODULES", modules)
        monkeypatch.setenv("FROSTER_CACHE", str(tmp_path / "cache"))

        def run(*argv):
            capsys.readouterr()
            code = froster.cli.main([str(a) for a in argv])
            out, err = capsys.readouterr()
            return code, out, err

        return run
    return make


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A froster checkpoint folder of a random-weight froster-tiny student (seed 0)."""
    from froster.checkpoint import build_student, export_student
    from froster.student_spec import StudentSpec

    torch.manual_seed(0)
    spec = StudentSpec(model="froster-tiny", pretrained=None)
    student, _ = build_student(spec)
    return export_student(student, spec, tmp_path_factory.mktemp("ckpt"))


@pytest.fixture
def checkpoint_calls(monkeypatch):
    """[n]: how many blocks ran under activation checkpointing (so a test can tell that the
    checkpointed path ran, not only that its flag was set)."""
    from froster import temporal

    calls, original = [0], temporal.checkpoint

    def counting(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(temporal, "checkpoint", counting)
    return calls
