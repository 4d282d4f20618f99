"""Video data: lists and class files, decoding, clip sampling, transforms, loaders.

The names below are loaded on first use, so that the command line can import light
modules of this package (`data.views`, `data.sampling`) without loading torch."""

from ..lazy import lazy_exports

_EXPORTS = {
    "AnnotationError": "annotations", "VideoItem": "annotations",
    "read_annotations": "annotations", "read_class_names": "annotations",
    "VideoDataset": "dataset",
    "VideoDecodeError": "decode", "VideoInfo": "decode", "decode_frames": "decode",
    "open_video": "decode", "read_clip": "decode", "read_video_info": "decode",
    "Failure": "failures", "FailureLog": "failures", "Fallback": "failures",
    "ShardedSampler": "loader", "build_loader": "loader", "collate_videos": "loader",
    "set_epoch": "loader",
    "SAMPLINGS": "sampling", "get_sampling": "sampling", "Sampled": "sampling.sampled",
    "ViewSpec": "views", "DEFAULT_VIEW": "views",
    "normalize": "transforms", "test_transform": "transforms", "train_transform": "transforms",
}

__all__ = list(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
