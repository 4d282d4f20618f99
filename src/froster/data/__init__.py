"""Video data: lists and class files, decoding, clip sampling, transforms, loaders."""

from .annotations import AnnotationError, VideoItem, read_annotations, read_class_names
from .dataset import VideoDataset
from .decode import VideoDecodeError, VideoInfo, decode_frames, read_clip, read_video_info
from .failures import Failure, FailureLog
from .loader import ShardedSampler, build_loader, collate_videos, set_epoch
from .sampling import test_view_indices, train_clip_indices
from .transforms import normalize, test_transform, train_transform

__all__ = [
    "AnnotationError", "VideoItem", "read_annotations", "read_class_names",
    "VideoDataset",
    "VideoDecodeError", "VideoInfo", "decode_frames", "read_clip", "read_video_info",
    "Failure", "FailureLog",
    "ShardedSampler", "build_loader", "collate_videos", "set_epoch",
    "test_view_indices", "train_clip_indices",
    "normalize", "test_transform", "train_transform",
]
