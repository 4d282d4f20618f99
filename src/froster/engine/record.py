"""The reproduction record: what, besides the weights, decides a run's numbers.

Every `froster train`, `eval` and `benchmark` writes one (``record.json`` in a run folder,
a ``record`` entry in ``metrics.json`` / ``results.json``, a section of the markdown
report): froster version and git commit, library versions (Python, torch, open_clip,
PyAV/FFmpeg, CUDA/cuDNN), devices and world size, seed, precisions, frame sampling, frames
x rate, views x crops, the SHA-256 of every list and class file used (small files; videos
are never hashed), how many videos were evaluated and which failed (``failed_videos.txt``
beside the report), and the whole config. `diff_records` lists what differs between two.

This module imports only the standard library at module level, so `froster diff` does not
load torch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
import time
from pathlib import Path

from ..errors import FrosterError, MissingFileError

RECORD_FILE = "record.json"
FAILED_FILE = "failed_videos.txt"
SCHEMA = 1
#: Keys that differ between any two runs and say nothing about their results.
NOT_COMPARED = ("created",)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


#: Larger files (e.g. another project's checkpoint) are recorded by size, not hashed.
HASH_LIMIT = 64 << 20


def file_entry(path: str | os.PathLike | None) -> dict | None:
    """{"path", "sha256"} of an input file ("bytes" instead of the hash for one over
    HASH_LIMIT; sha256 None for a missing one); None when the run has none."""
    if not path:
        return None
    path = Path(path)
    if not path.is_file():
        return {"path": str(path), "sha256": None}
    size = path.stat().st_size
    if size > HASH_LIMIT:
        return {"path": str(path), "sha256": None, "bytes": size}
    return {"path": str(path), "sha256": sha256_file(path)}


def checkpoint_file(checkpoint: str | os.PathLike) -> Path:
    """What stands for a checkpoint in a record: a froster export folder's config.json
    (its weights are not hashed), or the file itself (another project's checkpoint)."""
    checkpoint = Path(checkpoint)
    return checkpoint / "config.json" if checkpoint.is_dir() else checkpoint


@functools.lru_cache(maxsize=1)
def git_state() -> dict | None:
    """{"commit", "dirty"} when froster runs from a git checkout (its source files are
    tracked there), else None (e.g. an installed wheel)."""
    package = Path(__file__).resolve().parents[1]

    def git(*args) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(package), *args], capture_output=True,
                              text=True, timeout=10)

    try:
        if git("ls-files", "--error-unmatch", "__init__.py").returncode != 0:
            return None  # not a checkout of froster (maybe inside some other repository)
        commit = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:  # noqa: BLE001 - absent or broken: recorded as unknown
        return None


def software() -> dict:
    import torch

    try:
        import av
        ffmpeg = getattr(av, "ffmpeg_version_info", None)
        libavcodec = ".".join(map(str, av.library_versions.get("libavcodec", ())))
        pyav = av.__version__
    except ImportError:
        pyav = ffmpeg = libavcodec = None
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"python": platform.python_version(), "torch": torch.__version__,
            "open_clip": _version("open_clip"), "pyav": pyav, "ffmpeg": ffmpeg,
            "libavcodec": libavcodec or None, "cuda": torch.version.cuda,
            "cudnn": cudnn, "platform": platform.platform()}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def hardware(device, world_size: int) -> dict:
    """The device type of this process, the names of the devices this machine shows (all
    CUDA devices when running on CUDA, else the CPU), and the number of ranks."""
    import torch

    if device.type == "cuda":
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    else:
        names = [f"{_cpu_name()} ({os.cpu_count()} logical cores, {torch.get_num_threads()} "
                 f"torch threads)"]
    return {"device": device.type, "device_names": names, "device_count": len(names),
            "world_size": world_size}


def _training_precision(cfg, device) -> str:
    if cfg.precision != "auto":
        return cfg.precision
    return f"auto ({'fp16' if device.type == 'cuda' else 'fp32'})"


def build_record(cfg, info, files: dict, videos: dict | None = None,
                 training: bool = False) -> dict:
    """The record of a run of `cfg` on `info`'s ranks; `files` maps a role (val_list,
    class_file, ...) to the path used; `videos` says how many were seen and failed.
    `training`: the precision recorded is the one this run trains in (auto resolved)."""
    from .. import __version__

    config = cfg.to_dict()
    return {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "froster": {"version": __version__, **(git_state() or {"commit": None, "dirty": None})},
        "software": software(),
        "hardware": hardware(info.device, info.world_size),
        "run": {
            "seed": cfg.seed,
            "precision": {"train": _training_precision(cfg, info.device) if training
                          else cfg.precision,
                          "eval": cfg.eval_precision, "teacher": cfg.teacher_precision},
            "sampling": cfg.sampling, "apply_rotation": cfg.apply_rotation,
            "frames": f"{cfg.num_frames}x{cfg.sampling_rate}",
            "target_fps": cfg.target_fps,
            "views": f"{cfg.test_views}x{cfg.test_crops}",
            "model": cfg.model, "pretrained": cfg.pretrained, "temporal": cfg.temporal,
            "neighbor_padding": cfg.neighbor_padding, "clean_prompts": cfg.clean_prompts,
            "logit_scale_decay": cfg.logit_scale_decay,
        },
        "files": {role: file_entry(path) for role, path in files.items() if path},
        "videos": videos or {},
        "config": config,
    }


def with_videos(record: dict, folder: str | os.PathLike, evaluated: int, total: int,
                failed: list[str], fallback: list[str] = ()) -> dict:
    """The record with its video counts (`fallback`: videos that `sampling: reference` had
    to sample another way); the failed videos' messages go to FAILED_FILE in `folder` (a
    stale one from an earlier run there is removed)."""
    path = Path(folder) / FAILED_FILE
    if failed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{message}\n" for message in failed), encoding="utf-8")
    else:
        path.unlink(missing_ok=True)
    return record | {"videos": {"evaluated": evaluated, "total": total, "failed": len(failed),
                                "failed_file": FAILED_FILE if failed else None,
                                "fallback": len(fallback)}}


def write_record(record: dict, folder: str | os.PathLike) -> Path:
    from ..files import atomic_write

    path = Path(folder) / RECORD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda p: Path(p).write_text(json.dumps(record, indent=2) + "\n"))
    return path


# -- reading and showing ---------------------------------------------------------------
def summary_line(record: dict) -> str:
    """One line: where it ran, how, on which files, over how many videos."""
    fr, sw, hw, run = record["froster"], record["software"], record["hardware"], record["run"]
    commit = f" git {fr['commit'][:10]}{'+dirty' if fr.get('dirty') else ''}" \
        if fr.get("commit") else ""
    devices = f"{hw['device']} x{hw['device_count']}" + \
        (f", world {hw['world_size']}" if hw["world_size"] > 1 else "")
    files = ", ".join(f"{Path(f['path']).name} {_short(f)}"
                      for f in record.get("files", {}).values() if f)
    videos = record.get("videos") or {}
    seen = f", {videos['evaluated']}/{videos['total']} videos" if "evaluated" in videos else ""
    if videos.get("failed"):
        seen += f" ({videos['failed']} failed: {videos['failed_file']})"
    if videos.get("fallback"):
        seen += f", {videos['fallback']} sampled with a fallback"
    return (f"record: froster {fr['version']}{commit}, torch {sw['torch']}, "
            f"open_clip {sw['open_clip']}, PyAV {sw['pyav']}/FFmpeg {sw['ffmpeg']}, {devices}, "
            f"seed {run['seed']}, eval {run['precision']['eval']}, sampling {run['sampling']}, "
            f"frames x rate {run['frames']}, views x crops {run['views']}, {files}{seen}")


def _short(entry: dict) -> str:
    if entry.get("sha256"):
        return entry["sha256"][:8]
    return f"{entry['bytes']} bytes" if "bytes" in entry else "missing"


def markdown(record: dict) -> str:
    """The record as a markdown section (the config stays in the JSON)."""
    lines = ["## Reproduction record", "", "| | |", "|---|---|"]
    for key, value in flatten({k: v for k, v in record.items() if k != "config"}).items():
        lines.append(f"| {key} | {value if value is not None else '-'} |")
    return "\n".join(lines) + "\n"


def flatten(data: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values."""
    flat = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def load_record(path: str | os.PathLike) -> dict:
    """The record in a run folder (record.json, else results.json, metrics.json or
    eval/metrics.json), or in a record.json / results.json / metrics.json file."""
    path = Path(path)
    if path.is_dir():
        for name in (RECORD_FILE, "results.json", "metrics.json", "eval/metrics.json"):
            if (path / name).is_file():
                return load_record(path / name)
        raise MissingFileError(f"{path}: no {RECORD_FILE}, results.json or metrics.json "
                               "here; give a run folder or one of those files")
    if not path.is_file():
        raise MissingFileError(f"{path} not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FrosterError(f"{path} is not a JSON file: {err}") from None
    if isinstance(data, dict) and isinstance(data.get("record"), dict):
        return data["record"]
    if isinstance(data, dict) and "schema" in data and "froster" in data:
        return data
    raise FrosterError(f"{path} has no reproduction record (written by froster train, eval and "
                       "benchmark from version 0.1.0 on; this file is older or not froster's)")


def diff_records(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """[(key, value in a, value in b)] for every flattened key whose values differ."""
    fa, fb = flatten(a), flatten(b)
    missing = object()
    rows = []
    for key in list(fa) + [k for k in fb if k not in fa]:
        if key in NOT_COMPARED:
            continue
        va, vb = fa.get(key, missing), fb.get(key, missing)
        if va != vb:
            rows.append((key, "(absent)" if va is missing else va,
                         "(absent)" if vb is missing else vb))
    return rows


def format_diff(rows, name_a: str, name_b: str) -> str:
    if not rows:
        return f"the records of {name_a} and {name_b} match (not compared: {', '.join(NOT_COMPARED)})"
    lines = [f"{len(rows)} difference{'s' if len(rows) > 1 else ''} between {name_a} (A) and "
             f"{name_b} (B):"]
    lines += [f"  {key}: {json.dumps(va, default=str)} -> {json.dumps(vb, default=str)}"
              for key, va, vb in rows]
    return "\n".join(lines)

