"""The reader: frame sources, sampling, transforms, list files and loaders.

The names below load their module on first use (``from paddlevideo.data import VideoDataset``), so importing a
light module of the package (:mod:`.lists`, :mod:`.video`) does not import Paddle."""
import importlib

_NAMES = {"VideoDataset": "dataset", "build_loader": "dataset", "collate": "dataset", "unpack_batch": "dataset",
          "parse_list": "lists", "segment_indices": "sampling", "transform_clip": "transforms",
          "VideoError": "video", "read_frames": "video", "read_pkl": "video"}

__all__ = sorted(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        return getattr(importlib.import_module("." + _NAMES[name], __name__), name)
    raise AttributeError("module 'paddlevideo.data' has no attribute {!r}".format(name))
