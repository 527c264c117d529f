"""Synthetic AVA-format detection data: several actors per clip, each doing its own action(s).

    python data/dataset/synthetic/make_synthetic_ava.py --out DIR --seed S --train N --val N --test N

Writes, in the real AVA formats (see paddlevideo/data/ava.py):

* ``DIR/frames/<video>/%05d.jpg`` — 30 fps, 160×128, frame 1 = second 900; keyframes at 902, 903, 904;
* ``DIR/label_map.pbtxt`` — 8 actions, ids 1..8, in 4 time-reversed pairs: move right/left, move up/down,
  grow/shrink (the actor's inner disc), brighten/darken (its colour);
* per split ``DIR/{split}.csv`` (GT: ``video,ts,x1,y1,x2,y2,action,person``), ``DIR/{split}_proposals.pkl``
  (``{"video,%04d": [[x1, y1, x2, y2, score]]}``: each actor's box jittered as a detector would give it,
  static distractor "persons" that do nothing, and low-score junk the score rule drops) and
  ``DIR/{split}_excluded.csv`` (one excluded keyframe in every fifth video).

Each clip holds 2–4 actors at different places; each actor is a framed box whose inner disc moves or
changes periodically (a sawtooth of period 40 frames, random phase), so one frame says nothing about the
direction: every box needs its own temporal evidence.  About a third of the actors do two actions at once
(a motion and a colour change: multi-label).  N is the number of videos per split (3 keyframes each).
"""
import argparse
import csv
import json
import os
import pickle
import sys

import cv2
import numpy as np

W, H, FPS = 160, 128, 30
KEYFRAMES = (902, 903, 904)
NUM_FRAMES = FPS * (KEYFRAMES[-1] - 900) + 1 + 34       # the clip around the last keyframe, 32×2 at most
PERIOD = 40
ACTIONS = ["move right", "move left", "move up", "move down", "grow", "shrink", "brighten", "darken"]
MOTIONS = (1, 2, 3, 4, 5, 6)
COLOURS = (7, 8)


def label_map_text():
    return "".join('item {{\n  name: "{}"\n  id: {}\n}}\n'.format(n, i + 1) for i, n in enumerate(ACTIONS))


def place_boxes(rng, n):
    """``n`` non-overlapping actor boxes (pixels x1, y1, x2, y2), sides 40–56 px."""
    boxes = []
    for _ in range(500):
        if len(boxes) == n:
            break
        bw, bh = rng.integers(40, 57), rng.integers(44, 61)
        x1, y1 = rng.integers(2, W - bw - 2), rng.integers(2, H - bh - 2)
        b = np.array([x1, y1, x1 + bw, y1 + bh], float)
        if all(b[0] > o[2] + 3 or b[2] < o[0] - 3 or b[1] > o[3] + 3 or b[3] < o[1] - 3 for o in boxes):
            boxes.append(b)
    return boxes


def draw_actor(img, box, actions, t, phase, hue):
    """One actor at frame ``t``: a framed box with an inner disc doing ``actions``."""
    x1, y1, x2, y2 = box.astype(int)
    cv2.rectangle(img, (x1, y1), (x2, y2), (200, 200, 200), 2)
    cx, cy, bw, bh = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    s = ((t + phase) % PERIOD) / PERIOD                    # sawtooth 0 → 1
    r, px, py, light = 7.0, cx, cy, 0.75
    span_x, span_y = bw / 2 - 10, bh / 2 - 10
    if 1 in actions:
        px = cx - span_x + 2 * span_x * s
    if 2 in actions:
        px = cx + span_x - 2 * span_x * s
    if 3 in actions:
        py = cy + span_y - 2 * span_y * s
    if 4 in actions:
        py = cy - span_y + 2 * span_y * s
    if 5 in actions:
        r = 3 + 12 * s
    if 6 in actions:
        r = 15 - 12 * s
    if 7 in actions:
        light = 0.2 + 0.8 * s
    if 8 in actions:
        light = 1.0 - 0.8 * s
    colour = tuple(int(c * light) for c in hue)
    cv2.circle(img, (int(round(px)), int(round(py))), int(round(r)), colour, -1, lineType=cv2.LINE_AA)


def actor_actions(rng):
    """1 or 2 actions: a motion, a colour change, or (about a third) both."""
    u = rng.random()
    if u < 0.5:
        return [int(rng.choice(MOTIONS))]
    if u < 0.65:
        return [int(rng.choice(COLOURS))]
    return [int(rng.choice(MOTIONS)), int(rng.choice(COLOURS))]


def jitter(box, rng, amount=1.5):
    return box + rng.uniform(-amount, amount, 4)


def make_video(folder, rng):
    """Render one clip; return ``(actors [(box, actions)], distractor boxes)``."""
    n_act = int(rng.integers(2, 5))
    n_dis = int(rng.integers(0, 2))
    boxes = place_boxes(rng, n_act + n_dis)
    actors = [(b, actor_actions(rng)) for b in boxes[:n_act]]
    distractors = boxes[n_act:]
    phases = rng.integers(0, PERIOD, len(boxes))
    hues = [tuple(int(v) for v in rng.integers(90, 256, 3)) for _ in boxes]
    background = cv2.GaussianBlur(rng.integers(0, 70, (H, W, 3)).astype(np.uint8), (5, 5), 0)
    os.makedirs(folder, exist_ok=True)
    for t in range(NUM_FRAMES):
        img = background.copy()
        for k, (b, acts) in enumerate(actors):
            draw_actor(img, b, acts, t, phases[k], hues[k])
        for k, b in enumerate(distractors):
            draw_actor(img, b, [], t, 0, hues[n_act + k])
        cv2.imwrite(os.path.join(folder, "{:05d}.jpg".format(t + 1)), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return actors, distractors


def norm(b):
    return [float(np.clip(b[0] / W, 0, 1)), float(np.clip(b[1] / H, 0, 1)),
            float(np.clip(b[2] / W, 0, 1)), float(np.clip(b[3] / H, 0, 1))]


def make_split(out, split, n, rng):
    gt_rows, proposals, excluded = [], {}, []
    for v in range(n):
        video = "{}_{:04d}".format(split, v)
        actors, distractors = make_video(os.path.join(out, "frames", video), rng)
        for ts in KEYFRAMES:
            key = "{},{:04d}".format(video, ts)
            props = []
            for p, (b, acts) in enumerate(actors):
                for a in acts:
                    gt_rows.append([video, "{:04d}".format(ts)] + ["{:.3f}".format(c) for c in norm(b)] + [a, p])
                props.append(norm(jitter(b, rng)) + [float(rng.uniform(0.92, 1.0))])
            for b in distractors:
                props.append(norm(jitter(b, rng)) + [float(rng.uniform(0.9, 1.0))])
            for _ in range(2):                       # junk the score rule (>= min(0.9, max)) drops
                x, y = rng.uniform(0, W - 30), rng.uniform(0, H - 30)
                props.append(norm(np.array([x, y, x + 30, y + 30])) + [float(rng.uniform(0.1, 0.5))])
            proposals[key] = np.array(props, np.float64)
        if v % 5 == 4:
            excluded.append([video, "{:04d}".format(KEYFRAMES[1])])
    with open(os.path.join(out, split + ".csv"), "w", newline="") as f:
        csv.writer(f).writerows(gt_rows)
    with open(os.path.join(out, split + "_proposals.pkl"), "wb") as f:
        pickle.dump(proposals, f)
    with open(os.path.join(out, split + "_excluded.csv"), "w", newline="") as f:
        csv.writer(f).writerows(excluded)
    return len(gt_rows)


def make(out, n_train, n_val, n_test, seed=0):
    """Generate every split into ``out``; return ``{split: (gt csv, proposals, excluded)}`` + ``label_map``."""
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "label_map.pbtxt"), "w") as f:
        f.write(label_map_text())
    paths = {"label_map": os.path.join(out, "label_map.pbtxt"), "frames": os.path.join(out, "frames")}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        if n > 0:
            make_split(out, split, n, rng)
            paths[split] = tuple(os.path.join(out, split + ext)
                                 for ext in (".csv", "_proposals.pkl", "_excluded.csv"))
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump({"seed": seed, "train": n_train, "val": n_val, "test": n_test, "actions": ACTIONS,
                   "size": [W, H], "fps": FPS, "keyframes": list(KEYFRAMES)}, f, indent=1)
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train", type=int, default=80, help="videos in the training split (3 keyframes each)")
    p.add_argument("--val", type=int, default=10)
    p.add_argument("--test", type=int, default=30)
    a = p.parse_args(argv)
    make(a.out, a.train, a.val, a.test, a.seed)
    print("wrote {} (train {}, val {}, test {} videos)".format(a.out, a.train, a.val, a.test))
    return 0


if __name__ == "__main__":
    sys.exit(main())
