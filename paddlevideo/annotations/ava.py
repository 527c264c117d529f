"""AVA annotation files, read as the official evaluator reads them: keys, the label map, excluded timestamps,
the GT CSV, the proposals pickle.  NumPy only — no Paddle, no OpenCV — so the evaluation (:mod:`..metrics.ava`)
and the dataset tools use them without a deep-learning stack.

* GT CSV: ``video_id,timestamp,x1,y1,x2,y2,action_id,person_id`` — box normalised to [0, 1], one row per
  (person, action); the same box on several rows is one person with several actions (multi-label).
* excluded timestamps CSV: ``video_id,timestamp``.
* label map pbtxt: ``item { name: "..." id: N }`` — the evaluated classes.
* proposals pickle: ``{"video_id,%04d": float [n, 4|5]}`` normalised x1, y1, x2, y2 (, score).
"""
import csv
import os
import pickle
import sys
from collections import OrderedDict

import numpy as np

from ..errors import UserError

FPS = 30
TIMESTAMP_START = 900
MAX_PROPOSALS = 1000


def image_key(video, ts):
    """``"video,%04d"`` — so ``902`` and ``0902`` are the same keyframe."""
    return "{},{:04d}".format(video, int(ts))


def keyframe_index(ts):
    """1-based frame number of the keyframe at ``ts`` seconds: ``30·(ts − 900) + 1``."""
    return FPS * (int(ts) - TIMESTAMP_START) + 1


class Problems:
    """Counted warnings: ``add(reason, where, detail)``; :meth:`summary` gives one line per reason."""

    def __init__(self, quiet=False, max_lines=10):
        self.counts, self.quiet, self.max_lines = OrderedDict(), quiet, max_lines

    def add(self, reason, where, detail=""):
        n = self.counts.get(reason, 0) + 1
        self.counts[reason] = n
        if not self.quiet and n <= self.max_lines:
            print("warning: {}: skipped ({}{})".format(where, reason, ": " + detail if detail else ""),
                  file=sys.stderr)
        elif not self.quiet and n == self.max_lines + 1:
            print("warning: more rows skipped for {!r}; see the summary".format(reason), file=sys.stderr)

    def total(self):
        return sum(self.counts.values())

    def summary(self):
        return "; ".join("{} {}".format(n, r) for r, n in self.counts.items()) or "none"


def read_label_map(path):
    """``(OrderedDict id -> name, set of ids)`` from a label-map pbtxt, read as the official evaluator does
    (only lines starting with two spaces and ``name:`` / ``id:`` / ``label_id:``)."""
    if not path or not os.path.isfile(path):
        raise UserError("label map {} not found (MODEL.label_map); point it at the AVA pbtxt "
                        "(e.g. ava_action_list_v2.1_for_activitynet_2018.pbtxt)".format(path))
    names, name = OrderedDict(), None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("  name:"):
                name = line.split('"')[1]
            elif line.startswith("  id:") or line.startswith("  label_id:"):
                names[int(line.strip().split(" ")[-1])] = name
    if not names:
        raise UserError("label map {} holds no 'item {{ name: \"...\" id: N }}' blocks".format(path))
    return names, set(names)


def read_exclusions(path, problems=None):
    """The set of excluded keyframe keys of a ``video_id,timestamp`` CSV (``None`` path: empty)."""
    out = set()
    if not path:
        return out
    if not os.path.isfile(path):
        raise UserError("excluded-timestamps file {} not found (exclude_file / --exclude)".format(path))
    with open(path, newline="") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if not row:
                continue
            try:
                if len(row) != 2:
                    raise ValueError("expected video_id,timestamp")
                out.add(image_key(row[0], row[1]))
            except ValueError as e:
                if problems is not None:
                    problems.add("malformed excluded-timestamp rows", "{}:{}".format(path, n), str(e))
    return out


def parse_row(row, width):
    """``(video, ts, [x1, y1, x2, y2], action_id, last)`` of a CSV row with ``width`` (7 or 8) columns, or a
    ``ValueError`` naming the problem (box outside [0, 1] or inverted included)."""
    if len(row) not in width:
        raise ValueError("{} columns, expected {}".format(len(row), " or ".join(map(str, width))))
    video, ts = row[0], int(row[1])
    box = [float(v) for v in row[2:6]]
    if not all(np.isfinite(box)) or min(box) < 0 or max(box) > 1:
        raise ValueError("box {} is outside [0, 1]".format(row[2:6]))
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError("box {} is inverted or empty (x2 <= x1 or y2 <= y1)".format(row[2:6]))
    last = float(row[7]) if len(row) == 8 else None
    return video, ts, box, int(row[6]), last


def read_gt(path, num_classes, problems):
    """GT CSV → ``OrderedDict key -> (video, ts, boxes [K, 4] float32, labels [K, num_classes] float32)``:
    rows with an equal box are one entity with a multi-hot label (index = action id)."""
    if not path or not os.path.isfile(path):
        raise UserError("annotation file {} not found (filelist of the mode's section, e.g. -o TEST.filelist=...)"
                        .format(path))
    groups = OrderedDict()
    with open(path, newline="") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if not row or (n == 1 and row[0].strip().lower() in ("video_id", "video")):
                continue
            where = "{}:{}".format(path, n)
            try:
                video, ts, box, action, _ = parse_row(row, (7, 8))
            except ValueError as e:
                reason = "boxes outside [0, 1] or inverted" if "box" in str(e) else "malformed rows"
                problems.add(reason, where, str(e))
                continue
            if not 1 <= action < num_classes:
                problems.add("action ids outside [1, num_classes)", where,
                             "action {} (MODEL.num_classes {})".format(action, num_classes))
                continue
            g = groups.setdefault(image_key(video, ts), (video, ts, OrderedDict()))
            g[2].setdefault(tuple(box), set()).add(action)
    out = OrderedDict()
    for key, (video, ts, ents) in groups.items():
        boxes = np.array(list(ents), np.float32).reshape(-1, 4)
        labels = np.zeros((len(ents), num_classes), np.float32)
        for i, acts in enumerate(ents.values()):
            labels[i, sorted(acts)] = 1.0
        out[key] = (video, ts, boxes, labels)
    return out


def box_array(v):
    """A box list ``[n, 4|5]`` (or one flat box) as float64 ``[n, k]``."""
    return np.asarray(v, np.float64).reshape(-1, np.shape(v)[-1] if np.ndim(v) == 2 else 4)


def read_proposals(path):
    """The proposals pickle: ``{key: float [n, 4|5]}`` with keys normalised to ``video,%04d``."""
    if not path or not os.path.isfile(path):
        raise UserError("proposal file {} not found (proposal_file of the mode's section); it is a pickle "
                        "{{'video_id,0902': [[x1, y1, x2, y2, score], ...]}} of normalised person boxes".format(path))
    try:
        with open(path, "rb") as f:
            raw = pickle.load(f, encoding="latin1")
    except Exception as e:  # noqa: BLE001  (any unpickling failure is a bad file)
        raise UserError("proposal file {} is not a readable pickle ({})".format(path, e))
    if not isinstance(raw, dict):
        raise UserError("proposal file {} holds a {}, expected a dict keyed 'video_id,timestamp'".format(
            path, type(raw).__name__))
    out = {}
    for k, v in raw.items():
        video, _, ts = str(k).rpartition(",")
        try:
            out[image_key(video, ts)] = box_array(v)
        except (ValueError, TypeError):
            continue
    return out


def select_proposals(props):
    """PaddleVideo's rule: with scores (``[n, 5]``), keep those ≥ ``min(0.9, max score)``; the first 1000
    rows (columns unchanged)."""
    if props.shape[1] >= 5 and len(props):
        props = props[props[:, 4] >= min(0.9, float(props[:, 4].max()))]
    return props[:MAX_PROPOSALS]
