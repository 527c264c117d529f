"""Generate an order-sensitive synthetic action dataset as real video files.

Eight classes in four time-reversed pairs: move right / left, move down / up, grow / shrink,
fade in / fade out (a fifth pair, rotate clockwise / counter-clockwise, is available with
``--pairs``: at 32 px it is the one the small demo TSM learns slowest, see README).  Each clip is
rendered for the first class of its pair; the partner class is the same clip played backwards.  So the distribution of single frames, and of the
*set* of frames of a clip, is identical within a pair: only the order of frames tells the classes
apart.  Backgrounds (smooth colour noise), shapes, colours, sizes, speeds and start positions are
random; a fixed seed makes the dataset reproducible.

Writes ``OUT/videos/*.mp4`` (MPEG-4, 16 frames, 32x32) and ``OUT/{train,val,test}.list`` in the
usual ``path label`` format, plus ``OUT/labels.txt`` and ``OUT/meta.json``.  ``--pairs 0`` makes
only the move right / move left pair (labels 0 and 1).

    python data/dataset/synthetic/make_synthetic.py --out data/dataset/synthetic/data --train 100 --val 20 --test 40
"""
import argparse
import json
import os

import cv2
import numpy as np

CLASSES = ["move right", "move left", "move down", "move up", "grow", "shrink", "fade in", "fade out",
           "rotate clockwise", "rotate counter-clockwise"]
PAIRS = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
DEFAULT_PAIRS = [0, 1, 2, 3]
SHAPES = {
    "triangle": [(0.0, -1.0), (0.8, 0.7), (-0.8, 0.7)],
    "square": [(-0.75, -0.75), (0.75, -0.75), (0.75, 0.75), (-0.75, 0.75)],
    "ell": [(-0.8, -1.0), (-0.2, -1.0), (-0.2, 0.4), (0.8, 0.4), (0.8, 1.0), (-0.8, 1.0)],
    "arrow": [(0.0, -1.0), (0.8, 0.0), (0.3, 0.0), (0.3, 1.0), (-0.3, 1.0), (-0.3, 0.0), (-0.8, 0.0)],
    "kite": [(0.0, -1.0), (0.6, -0.2), (0.0, 1.0), (-0.6, -0.2)],
}
ROTATE_SHAPES = ["arrow", "ell", "kite", "triangle"]


def background(rng, size):
    """Smooth random colour noise plus fine texture, uint8 [H, W, 3]."""
    k = int(rng.integers(3, 9))
    low = rng.random((k, k, 3)).astype(np.float32)
    bg = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
    lo, hi = sorted(rng.uniform(0, 255, 2))
    bg = lo + (hi - lo) * np.clip(bg, 0, 1)
    bg += rng.normal(0, rng.uniform(1, 3), (size, size, 1))
    return np.clip(bg, 0, 255).astype(np.float32)


def draw(frame, shape, cx, cy, scale, angle, colour):
    pts = np.array(SHAPES[shape], np.float32) * scale
    c, s = np.cos(angle), np.sin(angle)
    pts = pts @ np.array([[c, s], [-s, c]], np.float32) + (cx, cy)
    cv2.fillPoly(frame, [np.round(pts * 16).astype(np.int32)], colour, lineType=cv2.LINE_AA, shift=4)


def render(rng, pair, frames=16, size=32):
    """Frames ``[F, H, W, 3]`` uint8 RGB of the first class of ``pair`` (0..4).

    Geometry is defined on a 64-pixel canvas and scaled to ``size``.
    """
    u = size / 64.0
    bg = background(rng, size)
    shape = str(rng.choice(sorted(SHAPES)))
    colour = tuple(float(v) for v in rng.uniform(0, 255, 3))
    if abs(np.mean(colour) - bg.mean()) < 90:          # keep the object visible
        colour = tuple(255.0 - v for v in colour)
    t = np.arange(frames, dtype=np.float32)
    scale = np.full(frames, rng.uniform(8, 12))
    angle = np.full(frames, rng.uniform(0, 2 * np.pi))
    cx = np.full(frames, rng.uniform(16, 48))
    cy = np.full(frames, rng.uniform(16, 48))
    if pair in (0, 1):                                  # move right (pair 0) / move down (pair 1)
        travel = rng.uniform(1.8, 2.3) * (frames - 1)
        m = 0.7 * scale[0] + 1
        start = rng.uniform(m, 64 - m - travel)
        pos = start + travel * t / (frames - 1)
        if pair == 0:
            cx = pos
        else:
            cy = pos
    elif pair == 2:                                     # grow
        scale = rng.uniform(4, 6) + rng.uniform(10, 13) * t / (frames - 1)
        cx[:] = rng.uniform(20, 44)
        cy[:] = rng.uniform(20, 44)
    elif pair == 3:                                     # fade in: opacity rises linearly
        opacity = rng.uniform(0.0, 0.15) + rng.uniform(0.8, 0.85) * t / (frames - 1)
    else:                                               # rotate clockwise (image y points down)
        angle = angle - rng.uniform(0.2, 0.3) * t
        # larger shapes turn more pixels, and no 4-fold symmetric square: a square turned by 0.9 rad
        # (3 frames apart, as training may sample) looks turned by 0.67 rad the other way
        shape = str(rng.choice(ROTATE_SHAPES))
        scale[:] = rng.uniform(12, 15)
    if pair != 3:
        opacity = np.ones(frames)
    out = np.empty((frames, size, size, 3), np.uint8)
    for i in range(frames):
        f = bg.copy()
        draw(f, shape, cx[i] * u, cy[i] * u, scale[i] * u, angle[i], colour)
        f = bg + opacity[i] * (f - bg)
        f += rng.normal(0, 3, f.shape)
        out[i] = np.clip(f, 0, 255).astype(np.uint8)
    return out


def write_video(path, frames, fps=16):
    h, w = frames.shape[1:3]
    vw = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not vw.isOpened():
        raise RuntimeError("OpenCV cannot write {}".format(path))
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()


def make(out, n_train=100, n_val=20, n_test=40, seed=0, frames=16, size=32, pairs=None):
    """Write the dataset (``n_*`` clips per class per split) under ``out``; return the list paths.

    ``pairs``: indices into :data:`PAIRS` to generate (default :data:`DEFAULT_PAIRS`); the selected classes
    are numbered 0, 1, ... in :data:`CLASSES` order and ``labels.txt`` names them.
    """
    pairs = DEFAULT_PAIRS if pairs is None else sorted(pairs)
    classes = [c for p in pairs for c in PAIRS[p]]
    vdir = os.path.join(out, "videos")
    os.makedirs(vdir, exist_ok=True)
    rng = np.random.default_rng(seed)
    lists = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        lines = []
        for pair in pairs:
            a, b = PAIRS[pair]
            for k in range(n):
                clip = render(rng, pair, frames, size)
                for label, fr in ((a, clip), (b, clip[::-1])):
                    name = "{}_{}_{:04d}.mp4".format(split, CLASSES[label].replace(" ", "_"), k)
                    write_video(os.path.join(vdir, name), np.ascontiguousarray(fr))
                    lines.append("videos/{} {}".format(name, classes.index(label)))
        order = rng.permutation(len(lines))
        lists[split] = os.path.join(out, split + ".list")
        with open(lists[split], "w") as f:
            f.write("".join(lines[i] + "\n" for i in order))
    with open(os.path.join(out, "labels.txt"), "w") as f:
        f.write("\n".join(CLASSES[c] for c in classes) + "\n")
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump({"seed": seed, "train": n_train, "val": n_val, "test": n_test, "frames": frames,
                   "size": size, "classes": [CLASSES[c] for c in classes],
                   "pairs": [[2 * i, 2 * i + 1] for i in range(len(pairs))], "pair_ids": pairs}, f)
    lists["labels"] = os.path.join(out, "labels.txt")
    return lists


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    p.add_argument("--train", type=int, default=100, help="clips per class")
    p.add_argument("--val", type=int, default=20)
    p.add_argument("--test", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pairs", default=None, help="comma-separated pair indices (0 move right/left, 1 move "
                   "down/up, 2 grow/shrink, 3 fade in/out, 4 rotate cw/ccw); default 0,1,2,3")
    a = p.parse_args()
    pairs = [int(v) for v in a.pairs.split(",")] if a.pairs else None
    for split, path in make(a.out, a.train, a.val, a.test, a.seed, pairs=pairs).items():
        print(split, path)


if __name__ == "__main__":
    main()
