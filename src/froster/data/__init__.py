"""Video data: lists and class files, decoding, clip sampling, transforms, loaders.

The names below are loaded on first use, so that `froster --help` (which imports
`froster.data.commands` for `froster data`) does not load torch and PyAV."""

_EXPORTS = {
    "AnnotationError": "annotations", "VideoItem": "annotations",
    "read_annotations": "annotations", "read_class_names": "annotations",
    "VideoDataset": "dataset",
    "VideoDecodeError": "decode", "VideoInfo": "decode", "decode_frames": "decode",
    "open_video": "decode", "read_clip": "decode", "read_video_info": "decode",
    "Failure": "failures", "FailureLog": "failures", "Fallback": "failures",
    "ShardedSampler": "loader", "build_loader": "loader", "collate_videos": "loader",
    "set_epoch": "loader",
    "SAMPLINGS": "sampling", "ClipSpec": "sampling", "Sampled": "sampling",
    "get_sampling": "sampling", "test_view_indices": "sampling",
    "train_clip_indices": "sampling",
    "normalize": "transforms", "test_transform": "transforms", "train_transform": "transforms",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
