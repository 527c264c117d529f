"""Synthetic AVA-format detection data: several actors per clip, each doing its own action(s).

    python data/dataset/synthetic/make_synthetic_ava.py --out DIR --seed S --train N --val N --test N [--walking F]
    python data/dataset/synthetic/make_synthetic_ava.py --stream --out DIR --seed S [--seconds 60] [--actors 3]

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
(a motion and a colour change: multi-label).  N is the number of videos per split (3 keyframes each); ``--walking F``: that fraction of the videos has its actors
and distractors walk slowly sideways.

``--stream`` writes a long video with ground truth for the live pipeline (``predict.py --live``):
``DIR/stream.mp4`` (30 fps, 240x128: the training clips' scale) where ``--actors`` actors walk slowly across the
frame (bouncing off its sides, in lanes that overlap, so they pass and partly hide each other), enter and leave,
and do actions in intervals of a few seconds separated by idle spells (an idle actor's disc rests), and
``DIR/stream_gt.json``: ``{"video", "fps", "width", "height", "actors": [{"actor_id", "boxes": [[frame, x1, y1,
x2, y2], ...] (every frame where it is visible), "actions": [{"action_id", "start", "end"} (seconds)]}]}``.
:class:`ActorDetector` finds the actors' frames in a picture (``--detector
data.dataset.synthetic.make_synthetic_ava:ActorDetector``), with seeded misses and jitter like a real detector's.
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


def walk(box, velocity, t, width=W):
    """``box`` moved ``velocity`` px/frame for ``t`` frames along x, bouncing off the frame's sides."""
    x1, y1, x2, y2 = box
    span = width - (x2 - x1) - 4
    pos = (x1 - 2 + velocity * t) % (2 * span)
    pos = pos if pos <= span else 2 * span - pos
    return np.array([2 + pos, y1, 2 + pos + x2 - x1, y2], float)


def make_video(folder, rng, walking=False):
    """Render one clip; return ``(actors [(box at each keyframe, actions)], distractors [box at each keyframe])``.
    ``walking``: every actor and distractor walks slowly sideways (4-12 px/s), as in the live streams."""
    n_act = int(rng.integers(2, 5))
    n_dis = int(rng.integers(1, 3) if walking else rng.integers(0, 2))   # walking clips: more idle walkers
    boxes = place_boxes(rng, n_act + n_dis)
    acts = [actor_actions(rng) for _ in boxes[:n_act]] + [[] for _ in boxes[n_act:]]
    n_act = min(n_act, len(boxes))
    speed = (rng.uniform(4, 12, len(boxes)) * rng.choice([-1, 1], len(boxes)) / FPS if walking
             else np.zeros(len(boxes)))
    phases = rng.integers(0, PERIOD, len(boxes))
    hues = [tuple(int(v) for v in rng.integers(90, 256, 3)) for _ in boxes]
    background = cv2.GaussianBlur(rng.integers(0, 70, (H, W, 3)).astype(np.uint8), (5, 5), 0)
    os.makedirs(folder, exist_ok=True)
    for t in range(NUM_FRAMES):
        img = background.copy()
        for k, b in enumerate(boxes):
            draw_actor(img, walk(b, speed[k], t), acts[k], t, phases[k] if acts[k] else 0, hues[k])
        cv2.imwrite(os.path.join(folder, "{:05d}.jpg".format(t + 1)), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    at = {ts: [walk(b, speed[k], FPS * (ts - 900)) for k, b in enumerate(boxes)] for ts in KEYFRAMES}
    actors = [({ts: at[ts][k] for ts in KEYFRAMES}, acts[k]) for k in range(n_act)]
    distractors = [{ts: at[ts][k] for ts in KEYFRAMES} for k in range(n_act, len(boxes))]
    return actors, distractors


def norm(b):
    return [float(np.clip(b[0] / W, 0, 1)), float(np.clip(b[1] / H, 0, 1)),
            float(np.clip(b[2] / W, 0, 1)), float(np.clip(b[3] / H, 0, 1))]


def make_split(out, split, n, rng, walking=False):
    gt_rows, proposals, excluded = [], {}, []
    for v in range(n):
        video = "{}_{:04d}".format(split, v)
        actors, distractors = make_video(os.path.join(out, "frames", video), rng,
                                        bool(walking) and bool(rng.random() < walking))
        for ts in KEYFRAMES:
            key = "{},{:04d}".format(video, ts)
            props = []
            for p, (at, acts) in enumerate(actors):
                b = at[ts]
                for a in acts:
                    gt_rows.append([video, "{:04d}".format(ts)] + ["{:.3f}".format(c) for c in norm(b)] + [a, p])
                props.append(norm(jitter(b, rng)) + [float(rng.uniform(0.92, 1.0))])
            for at in distractors:
                props.append(norm(jitter(at[ts], rng)) + [float(rng.uniform(0.9, 1.0))])
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


def make(out, n_train, n_val, n_test, seed=0, walking=0.0):
    """Generate every split into ``out``; return ``{split: (gt csv, proposals, excluded)}`` + ``label_map``.
    ``walking``: the fraction of videos whose actors walk (the live demo trains on both)."""
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "label_map.pbtxt"), "w") as f:
        f.write(label_map_text())
    paths = {"label_map": os.path.join(out, "label_map.pbtxt"), "frames": os.path.join(out, "frames")}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        if n > 0:
            make_split(out, split, n, rng, walking)
            paths[split] = tuple(os.path.join(out, split + ext)
                                 for ext in (".csv", "_proposals.pkl", "_excluded.csv"))
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump({"seed": seed, "train": n_train, "val": n_val, "test": n_test, "walking": walking, "actions": ACTIONS,
                   "size": [W, H], "fps": FPS, "keyframes": list(KEYFRAMES)}, f, indent=1)
    return paths


SW = 240                      # stream width (height H: the training clips' short side)


def stream_plan(rng, seconds, n_actors):
    """Each actor's visibility interval, lane, speed and action intervals (seconds)."""
    actors = []
    for k in range(n_actors):
        if k == 0 or rng.random() < 0.4:
            t_in = 0.0 if k == 0 else float(rng.uniform(0, 4))
            t_out = seconds
        else:                                              # enters later and/or leaves before the end
            t_in = float(rng.uniform(2, seconds * 0.35))
            t_out = float(min(seconds, t_in + rng.uniform(seconds * 0.4, seconds * 0.8)))
        bw, bh = int(rng.integers(44, 57)), int(rng.integers(48, 61))
        y1 = int(rng.integers(2, H - bh - 2))
        speed = float(rng.uniform(3, 7)) * float(rng.choice([-1, 1]))
        x0 = float(rng.uniform(2, SW - bw - 2))
        acts, t = [], t_in + float(rng.uniform(1.0, 3.0))
        while True:
            length = float(rng.uniform(3.0, 6.0))
            if t + length > t_out - 1.0:
                break
            acts.append({"action_id": int(rng.integers(1, len(ACTIONS) + 1)), "start": round(t, 3),
                         "end": round(t + length, 3)})
            t += length + float(rng.uniform(2.0, 4.0))     # an idle spell
        actors.append({"actor_id": k, "t_in": t_in, "t_out": t_out, "size": (bw, bh), "y1": y1, "x0": x0,
                       "speed": speed, "phase": int(rng.integers(0, PERIOD)),
                       "hue": tuple(int(v) for v in rng.integers(90, 256, 3)), "actions": acts})
    return actors


def stream_box(a, t):
    """The actor's box at ``t`` seconds: walking from ``x0`` at ``speed`` px/s, bouncing off the sides."""
    bw, bh = a["size"]
    box = np.array([a["x0"], a["y1"], a["x0"] + bw, a["y1"] + bh], float)
    return walk(box, a["speed"] / FPS, (t - a["t_in"]) * FPS, SW)


def make_stream(out, seed=0, seconds=60.0, n_actors=3):
    """Write ``out/stream.mp4`` and ``out/stream_gt.json`` (see the module doc); return their paths."""
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    actors = stream_plan(rng, seconds, n_actors)
    background = cv2.GaussianBlur(rng.integers(0, 70, (H, SW, 3)).astype(np.uint8), (5, 5), 0)
    path = os.path.join(out, "stream.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), FPS, (SW, H))
    boxes = {a["actor_id"]: [] for a in actors}
    for i in range(int(round(seconds * FPS))):
        t = i / FPS
        img = background.copy()
        for a in actors:                                   # later actors are drawn over earlier ones
            if not a["t_in"] <= t < a["t_out"]:
                continue
            b = stream_box(a, t)
            now = [x["action_id"] for x in a["actions"] if x["start"] <= t < x["end"]]
            draw_actor(img, b, now, i, a["phase"] if now else 0, a["hue"])
            boxes[a["actor_id"]].append([i] + [round(float(v), 1) for v in b])
        writer.write(img)
    writer.release()
    gt = {"video": "stream.mp4", "fps": FPS, "width": SW, "height": H, "seed": seed,
          "actors": [{"actor_id": a["actor_id"], "boxes": boxes[a["actor_id"]], "actions": a["actions"]}
                     for a in actors]}
    with open(os.path.join(out, "stream_gt.json"), "w") as f:
        json.dump(gt, f)
    with open(os.path.join(out, "label_map.pbtxt"), "w") as f:
        f.write(label_map_text())
    return path, os.path.join(out, "stream_gt.json")


class ActorDetector:
    """The synthetic actors' person detector: ``detector(frame RGB [H, W, 3]) -> [n, 5]`` pixel boxes + score.

    An actor is a light grey frame (2 px) around a dark interior; each interior hole of the grey mask is one
    actor's box (an actor partly hidden behind another keeps its visible part).  Like a real detector it misses a
    box now and then (``miss``), jitters the others by up to ``jitter`` px and gives scores in (0.6, 1); seeded."""

    def __init__(self, seed=0, miss=0.04, jitter=1.5, min_side=24):
        self.rng = np.random.default_rng(seed)
        self.miss, self.jitter, self.min_side = miss, jitter, min_side

    def __call__(self, frame):
        img = np.asarray(frame)
        mask = np.all((img >= 165) & (img <= 235), axis=2).astype(np.uint8) * 255
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        out = []
        if hierarchy is not None:
            for c, h in zip(contours, hierarchy[0]):
                if h[3] < 0:                               # an outer contour: the holes are the interiors
                    continue
                x, y, w, hh = cv2.boundingRect(c)
                if w < self.min_side or hh < self.min_side or self.rng.random() < self.miss:
                    continue
                box = np.array([x - 2, y - 2, x + w + 1, y + hh + 1], float) + self.rng.uniform(
                    -self.jitter, self.jitter, 4)
                out.append(list(box) + [float(self.rng.uniform(0.6, 1.0))])
        return np.array(out, np.float32).reshape(-1, 5)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train", type=int, default=80, help="videos in the training split (3 keyframes each)")
    p.add_argument("--val", type=int, default=10)
    p.add_argument("--test", type=int, default=30)
    p.add_argument("--walking", type=float, default=0.0, help="fraction of the videos whose actors walk")
    p.add_argument("--stream", action="store_true", help="write a long stream with ground truth instead")
    p.add_argument("--seconds", type=float, default=60.0, help="--stream: its length")
    p.add_argument("--actors", type=int, default=3, help="--stream: how many actors")
    a = p.parse_args(argv)
    if a.stream:
        video, gt = make_stream(a.out, a.seed, a.seconds, a.actors)
        print("wrote {} and {}".format(video, gt))
        return 0
    make(a.out, a.train, a.val, a.test, a.seed, a.walking)
    print("wrote {} (train {}, val {}, test {} videos)".format(a.out, a.train, a.val, a.test))
    return 0


if __name__ == "__main__":
    sys.exit(main())
