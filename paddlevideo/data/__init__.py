"""The reader: frame sources, sampling, transforms, list files and loaders."""
from .dataset import VideoDataset, build_loader, collate, parse_list, unpack_batch
from .sampling import segment_indices
from .transforms import transform_clip
from .video import VideoError, read_frames, read_pkl

__all__ = ["VideoDataset", "build_loader", "collate", "parse_list", "unpack_batch", "segment_indices",
           "transform_clip", "VideoError", "read_frames", "read_pkl"]
