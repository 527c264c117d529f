"""AVA frame-mAP@0.5IoU by the official ActivityNet protocol (the code PaddleVideo and mmaction2 copied:
``PascalDetectionEvaluator`` over ``read_csv`` / ``read_labelmap`` / ``read_exclusions``), re-implemented in
NumPy step for step so that the number is the official one on the same files:

* rows whose action id is not in the label map are dropped (GT and detections); keys are
  ``video,%04d`` (``902`` = ``0902``); each key's rows are ordered by descending score (the GT's 8th column,
  the person id, is read as its "score") through the same heap the official reader uses;
* **capacity** (the official ``get_ava_performance.py`` reads the detections with ``capacity=50``, the GT with
  0): per key, after the label-map filter, rows go into a min-heap of ``(score, action_id, y1, x1, y2, x2)``
  tuples — pushed while the key holds fewer than ``capacity``, otherwise ``heapreplace`` only when the new score
  is strictly greater than the heap's smallest (ties at the boundary broken by tuple order, as ``heapq`` does) —
  then each key's survivors are sorted by descending score (Python's stable sort of the heap's list).
  ``capacity`` 0 keeps every row: the number PaddleVideo's and mmaction2's copies of the evaluator give;
* excluded keys are skipped for GT and detections;
* per key and class: detections with ``x2 <= x1`` or ``y2 <= y1`` are dropped, the rest sorted by
  ``argsort(score)[::-1]``; each takes the GT box of its class with the highest IoU (continuous
  coordinates); TP when IoU ≥ threshold and that box is still free, else FP (no second choice);
  detections on keys without GT are FPs;
* per class: VOC all-point AP over every key's detections (``argsort(score)[::-1]``), 0 for a class with
  GT and no detection, NaN (left out) without GT; mAP = nanmean over the label map's ids.

:func:`evaluate_files` is what ``scripts/ava_eval.py`` and ``eval.py`` run.
"""
import csv
import heapq
import os
from collections import defaultdict

import numpy as np

from ..annotations.ava import Problems, image_key, read_exclusions, read_label_map


OFFICIAL_CAPACITY = 50   # detections kept per keyframe by the official evaluation (get_ava_performance.py)


def read_csv(path, whitelist, problems, capacity=0):
    """``(boxes, labels, scores)``: dicts key → lists, boxes as ``[y1, x1, y2, x2]``, in the official order.
    ``capacity`` > 0 keeps only each key's ``capacity`` best rows (the official heap; memory: capacity × keys)."""
    entries = defaultdict(list)
    with open(path, newline="") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if not row:
                continue
            try:
                if len(row) not in (7, 8):
                    raise ValueError("{} columns, expected 7 or 8".format(len(row)))
                key = image_key(row[0], row[1])
                x1, y1, x2, y2 = [float(v) for v in row[2:6]]
                action = int(row[6])
                score = float(row[7]) if len(row) == 8 else 1.0
            except ValueError as e:
                problems.add("malformed rows", "{}:{}".format(path, n), str(e))
                continue
            if whitelist and action not in whitelist:
                continue
            heap = entries[key]
            if capacity < 1 or len(heap) < capacity:
                heapq.heappush(heap, (score, action, y1, x1, y2, x2))
            elif score > heap[0][0]:
                heapq.heapreplace(heap, (score, action, y1, x1, y2, x2))
    boxes, labels, scores = defaultdict(list), defaultdict(list), defaultdict(list)
    for key in list(entries):
        for score, action, y1, x1, y2, x2 in sorted(entries.pop(key), key=lambda t: -t[0]):
            boxes[key].append([y1, x1, y2, x2])
            labels[key].append(action)
            scores[key].append(score)
    return boxes, labels, scores


def iou_yx(a, b):
    """IoU of ``[n, 4]`` and ``[m, 4]`` ``[y1, x1, y2, x2]`` boxes (np_box_ops.iou)."""
    y1a, x1a, y2a, x2a = np.split(a, 4, axis=1)
    y1b, x1b, y2b, x2b = np.split(b, 4, axis=1)
    h = np.maximum(np.zeros((len(a), len(b))), np.minimum(y2a, y2b.T) - np.maximum(y1a, y1b.T))
    w = np.maximum(np.zeros((len(a), len(b))), np.minimum(x2a, x2b.T) - np.maximum(x1a, x1b.T))
    inter = h * w
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (np.expand_dims(area(a), 1) + np.expand_dims(area(b), 0) - inter)


def tp_fp_single_class(det_boxes, det_scores, gt_boxes, iou_threshold):
    """One key, one class: ``(scores, tp labels)`` after sorting the detections by ``argsort[::-1]``."""
    keep = det_scores > -10.0                     # the official NMS call's score_threshold (NMS itself is off)
    det_boxes, det_scores = det_boxes[keep], det_scores[keep]
    if det_boxes.size == 0:
        return np.array([], float), np.array([], bool)
    order = np.argsort(det_scores)[::-1]
    det_boxes, det_scores = det_boxes[order], det_scores[order]
    tp = np.zeros(len(det_boxes), bool)
    if gt_boxes.size == 0:
        return det_scores, tp
    iou = iou_yx(det_boxes, gt_boxes)
    best = np.argmax(iou, axis=1)
    taken = np.zeros(len(gt_boxes), bool)
    for i in range(len(det_boxes)):
        g = best[i]
        if iou[i, g] >= iou_threshold and not taken[g]:
            tp[i] = taken[g] = True
    return det_scores, tp


def average_precision(scores, tp, num_gt):
    """VOC all-point AP: precision made non-increasing from the right, summed over the recall steps."""
    if num_gt == 0:
        return np.nan
    labels = tp.astype(float)
    order = np.argsort(scores)[::-1]
    tps = np.cumsum(labels[order])
    fps = np.cumsum((labels[order] <= 0).astype(float))
    if not tps.size:
        return 0.0
    precision = tps.astype(float) / (tps + fps)
    recall = tps.astype(float) / num_gt
    recall = np.concatenate([[0], recall, [1]])
    precision = np.concatenate([[0], precision, [0]])
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = np.maximum(precision[i], precision[i + 1])
    idx = np.where(recall[1:] != recall[:-1])[0] + 1
    return float(np.sum((recall[idx] - recall[idx - 1]) * precision[idx]))


def frame_map(gt, det, class_ids, excluded=(), iou_threshold=0.5):
    """``(mAP, {id: AP or NaN})`` of ``gt`` / ``det`` (each :func:`read_csv`'s triple)."""
    num_class = max(class_ids)
    gt_boxes, gt_labels, _ = gt
    boxes, labels, scores = det
    num_gt = np.zeros(num_class, int)
    gt_db = {}
    for key in gt_boxes:
        if key in excluded:
            continue
        b = np.array(gt_boxes[key], float).reshape(-1, 4)
        c = np.array(gt_labels[key], int) - 1
        gt_db[key] = (b, c)
        for k in c:
            if 0 <= k < num_class:
                num_gt[k] += 1
    per_scores, per_tp = defaultdict(list), defaultdict(list)
    empty = (np.zeros((0, 4)), np.zeros(0, int))
    for key in boxes:
        if key in excluded:
            continue
        b = np.array(boxes[key], float).reshape(-1, 4)
        s = np.array(scores[key], float)
        c = np.array(labels[key], int) - 1
        valid = np.logical_and(b[:, 0] < b[:, 2], b[:, 1] < b[:, 3])
        b, s, c = b[valid], s[valid], c[valid]
        gb, gc = gt_db.get(key, empty)
        for k in np.unique(c[(c >= 0) & (c < num_class)]):      # a class without detections here adds nothing
            sc, tp = tp_fp_single_class(b[c == k], s[c == k], gb[gc == k], iou_threshold)
            if sc.shape[0] > 0:
                per_scores[k].append(sc)
                per_tp[k].append(tp)
    ap = np.full(num_class, np.nan)
    for k in range(num_class):
        if num_gt[k] == 0:
            continue
        sc = np.concatenate(per_scores[k]) if per_scores[k] else np.array([], float)
        tp = np.concatenate(per_tp[k]) if per_tp[k] else np.array([], bool)
        ap[k] = average_precision(sc, tp, num_gt[k])
    mean = float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan")
    return mean, {k + 1: float(ap[k]) for k in range(num_class)}


def evaluate_files(gt_csv, det_csv, label_map, exclude=None, iou=0.5, problems=None, capacity=OFFICIAL_CAPACITY):
    """Score a detection CSV against a GT CSV.  Returns ``{"mAP", "per_class": {name: AP} (classes with GT),
    "classes_without_gt": [names], "iou", "capacity", "num_gt_keyframes", "num_detection_keyframes",
    "skipped_rows"}``.  ``capacity``: detections kept per keyframe (50: the official evaluation; 0: every row,
    PaddleVideo's/mmaction2's numbers)."""
    if capacity is None or int(capacity) < 0:
        from ..errors import UserError
        raise UserError("capacity must be >= 0 (50: the official AVA evaluation, 0: no cap), got {}".format(capacity))
    capacity = int(capacity)
    problems = problems if problems is not None else Problems()
    names, ids = read_label_map(label_map)
    for path, what in ((gt_csv, "--gt"), (det_csv, "--detections")):
        if not os.path.isfile(path):
            from ..errors import UserError
            raise UserError("{} {} not found".format(what, path))
    excluded = read_exclusions(exclude, problems)
    gt = read_csv(gt_csv, ids, problems)
    det = read_csv(det_csv, ids, problems, capacity)
    mean, ap = frame_map(gt, det, ids, excluded, iou)
    per_class = {names[i]: ap[i] for i in names if np.isfinite(ap.get(i, np.nan))}
    return {"mAP": mean if np.isfinite(mean) else None, "per_class": per_class,
            "per_class_id": {str(i): ap[i] for i in names if np.isfinite(ap.get(i, np.nan))},
            "classes_without_gt": [names[i] for i in names if not np.isfinite(ap.get(i, np.nan))],
            "iou": iou, "capacity": capacity, "num_gt_keyframes": len([k for k in gt[0] if k not in excluded]),
            "num_detection_keyframes": len([k for k in det[0] if k not in excluded]),
            "skipped_rows": problems.total(), "skipped": dict(problems.counts)}


def write_detections(path, rows):
    """The AVA result CSV: ``video_id,timestamp,x1,y1,x2,y2,action_id,score`` (timestamp as a plain int,
    floats ``%.3f`` as PaddleVideo writes them)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        for video, ts, box, action, score in rows:
            f.write("{},{},{:.3f},{:.3f},{:.3f},{:.3f},{},{:.3f}\n".format(video, int(ts), *box, action, score))
