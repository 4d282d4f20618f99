"""Video data: lists and class files, decoding, clip sampling, transforms, loaders."""

from .annotations import AnnotationError, VideoItem, read_annotations, read_class_names
from .dataset import VideoDataset
from .decode import VideoDecodeError, VideoInfo, decode_frames, open_video, read_clip, read_video_info
from .failures import Failure, FailureLog, Fallback
from .loader import ShardedSampler, build_loader, collate_videos, set_epoch
from .sampling import SAMPLINGS, ClipSpec, Sampled, get_sampling, test_view_indices, train_clip_indices
from .transforms import normalize, test_transform, train_transform

__all__ = [
    "AnnotationError", "VideoItem", "read_annotations", "read_class_names",
    "VideoDataset",
    "VideoDecodeError", "VideoInfo", "decode_frames", "open_video", "read_clip", "read_video_info",
    "Failure", "FailureLog", "Fallback",
    "ShardedSampler", "build_loader", "collate_videos", "set_epoch",
    "SAMPLINGS", "ClipSpec", "Sampled", "get_sampling", "test_view_indices", "train_clip_indices",
    "normalize", "test_transform", "train_transform",
]
