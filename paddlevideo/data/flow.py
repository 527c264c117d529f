"""Optical flow for the flow stream of two-stream models (I3D): compute, quantize, store, read.

Flow between frames i and i+1 is computed on grayscale frames with TV-L1
(``cv2.optflow.DualTVL1OpticalFlow``, from opencv-contrib; ≈0.8 s per frame pair at 256×340 on
this project's CPU) or, as a clearly faster approximation, Farnebäck.  Each component is clipped
to ±20 pixels and mapped linearly to uint8 (0 ↔ -20, 255 ↔ +20), DeepMind's I3D preprocessing;
``image_mean``/``image_std`` of 0.5 then give the network flow / 20 in [-1, 1].

Stored as ``flow_x_00001.jpg``, ``flow_y_00001.jpg``, ... in one folder per video (the TSN /
mmaction2 layout; ``data/dataset/extract_frames.py --flow tvl1``).  A video with n frames has
n - 1 flow fields; a clip samples them with the same rule as RGB frames.
"""
import os

import cv2
import numpy as np

from .convert import folder_of
from .video import VideoError, read_frames, read_image_folder

BOUND = 20.0
FLOW_PATTERN = ("flow_x_{:05d}.jpg", "flow_y_{:05d}.jpg")
METHODS = ("tvl1", "farneback")


def flow_fn(method):
    """A function ``(prev_gray, next_gray) -> [H, W, 2] float32`` for ``method``."""
    if method == "tvl1":
        if not hasattr(cv2, "optflow"):
            raise VideoError("TV-L1 flow needs opencv-contrib (pip install opencv-contrib-python-headless, "
                             "as requirements.txt does), or use flow_method: farneback")
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        return lambda a, b: tvl1.calc(a, b, None)
    if method == "farneback":
        return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    raise ValueError("flow method must be one of {}".format(", ".join(METHODS)))


def quantize(flow):
    """``[H, W, 2]`` float flow → uint8, ±BOUND → 0..255."""
    q = (np.clip(flow, -BOUND, BOUND) + BOUND) * (255.0 / (2 * BOUND))
    return np.round(q).astype(np.uint8)


def gray(frame):
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def flow_from_video(path, choose_indices, method="tvl1", progress=False, with_rgb=False):
    """Flow fields ``choose_indices(n - 1)`` of a video with n frames, computed on the fly:
    ``[K, H, W, 2]`` uint8 (quantized); with ``with_rgb`` also the RGB frame each field starts at
    (``[K, H, W, 3]``).  Raises :class:`VideoError`."""
    chosen = {}

    def pairs(n):
        if n < 2:
            raise VideoError("a single frame has no optical flow")
        idx = [int(i) for i in choose_indices(n - 1)]
        chosen["idx"] = idx
        return [j for i in idx for j in (i, i + 1)]

    frames = read_frames(path, pairs)
    fn = flow_fn(method)
    idx, cache, out = chosen["idx"], {}, []
    steps = range(len(idx))
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc="{} flow".format(method), leave=False)
    for k in steps:
        i = idx[k]
        if i not in cache:
            cache[i] = quantize(fn(gray(frames[2 * k]), gray(frames[2 * k + 1])))
        out.append(cache[i])
    if with_rgb:
        return np.stack(out), frames[0::2]
    return np.stack(out)


def read_rgb_flow(path, choose_indices, flow_root=None, method="tvl1", progress=False):
    """Two-stream input: RGB frames and the flow fields that start at them, ``[K, H, W, 5]`` uint8
    (R, G, B, flow x, flow y).  The flow comes from the video's folder under ``flow_root`` when ``flow_root``
    is set (extract_frames.py --flow; found through its ``index.json``, so equally named videos in different
    folders each get their own), else it is computed now.  Both streams see the same frames."""
    if not flow_root:
        flow, rgb = flow_from_video(path, choose_indices, method, progress, with_rgb=True)
    else:
        folder = folder_of(flow_root, path)
        chosen = {}

        def pick(n):
            chosen["idx"] = [int(i) for i in choose_indices(n)]
            return chosen["idx"]

        flow = read_flow_dir(folder, pick)
        rgb = read_frames(path, lambda n: [min(i, n - 1) for i in chosen["idx"]])
    if flow.shape[1:3] != rgb.shape[1:3]:                  # flow extracted at another --short_side
        flow = np.stack([cv2.resize(f, (rgb.shape[2], rgb.shape[1]), interpolation=cv2.INTER_LINEAR) for f in flow])
    return np.concatenate([rgb, flow], axis=-1)


def video_flows(frames, method="tvl1"):
    """Every flow field of decoded frames ``[n, H, W, 3]`` → generator of ``[H, W, 2]`` uint8."""
    fn = flow_fn(method)
    prev = gray(frames[0])
    for f in frames[1:]:
        cur = gray(f)
        yield quantize(fn(prev, cur))
        prev = cur


def write_flow(folder, i, q):
    """Store flow field ``i`` (0-based) as ``flow_x_{i+1:05d}.jpg`` and ``flow_y_...``."""
    for c in range(2):
        cv2.imwrite(os.path.join(folder, FLOW_PATTERN[c].format(i + 1)), q[..., c], [cv2.IMWRITE_JPEG_QUALITY, 95])


def read_flow_dir(path, choose_indices):
    """Stored flow fields ``choose_indices(n)`` of a flow folder: ``[K, H, W, 2]`` uint8."""
    def load(i):
        xy = [cv2.imread(os.path.join(path, FLOW_PATTERN[c].format(i + 1)), cv2.IMREAD_GRAYSCALE) for c in range(2)]
        return None if xy[0] is None or xy[1] is None else np.stack(xy, axis=-1)
    return read_image_folder(path, "flow_x_", choose_indices, load, "flow")
