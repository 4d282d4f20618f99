"""Recognition for users: the `Recognizer` API, prediction over folders, text search."""

from .api import Recognizer, VideoResult, find_videos
from .predict import predict
from .search import VideoIndex, search_folder

__all__ = ["Recognizer", "VideoResult", "find_videos", "predict", "VideoIndex", "search_folder"]
