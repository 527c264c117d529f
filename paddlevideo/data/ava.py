"""AVA data: keyframe clips with their boxes and the training RoI targets (the annotation files are read by
:mod:`paddlevideo.annotations.ava`, re-exported here).

Files (AVA v2.x, see ``docs`` in the README):

* GT CSV (the mode's ``filelist``), no header: ``video_id,timestamp,x1,y1,x2,y2,action_id,person_id`` —
  box normalised to [0, 1], one row per (person, action); the same box on several rows is one person
  with several actions (multi-label).
* excluded timestamps CSV (``exclude_file``): ``video_id,timestamp``.
* label map pbtxt (``MODEL.label_map``): ``item { name: "..." id: N }`` — the evaluated classes.
* proposals pickle (``proposal_file``): ``{"video_id,%04d": float [n, 4|5]}`` normalised x1, y1, x2, y2 (, score).
* frames (``data_root``): ``<data_root>/<video_id>/%05d.jpg`` at 30 fps from ``00001.jpg`` = second 900 of the
  movie (``data/dataset/ava_prepare.py``), or a video ``<data_root>/<video_id>.{mp4,mkv,webm,avi}`` holding
  seconds 900.. of the movie, of which only each keyframe's clip is decoded.

A keyframe at ``ts`` is frame ``30·(ts − 900) + 1``; its clip is ``seg_num`` frames every
``frame_interval`` around it (``center − seg_num/2·interval … center + (seg_num/2 − 1)·interval``, the
keyframe is element ``seg_num/2``), clamped to the frames that exist.  Training adds PaddleVideo's random
offset in {−1, 0} to every index; evaluation does not (mmaction2's choice: deterministic scores).

Bad annotations are skipped and counted (:class:`Problems`), never raised mid-run: malformed rows, boxes
outside [0, 1] or inverted, unknown videos, missing frames, keyframes absent from the proposals.
"""
import os
import sys

import cv2
import numpy as np
import paddle

from ..annotations.ava import (FPS, MAX_PROPOSALS, TIMESTAMP_START, Problems, box_array, image_key,  # noqa: F401
                               keyframe_index, parse_row, read_exclusions, read_gt, read_label_map, read_proposals,
                               select_proposals)
from ..errors import UserError
from .video import VideoError, call_with_timeout

VIDEO_EXTS = (".mp4", ".mkv", ".webm", ".avi")
POS_IOU = 0.9          # MaxIoUAssignerAVA: positive only at IoU >= 0.9 with a GT box
NUM_SAMPLED = 32       # RandomSampler num 32, pos_fraction 1, GT boxes added as proposals


def frame_source(root, video):
    """``("frames", dir, count)`` or ``("video", path, None)`` for ``video`` under ``root``, else None."""
    d = os.path.join(root, video)
    if os.path.isdir(d):
        count = sum(1 for n in os.listdir(d) if n.endswith(".jpg"))
        return ("frames", d, count)
    for ext in VIDEO_EXTS:
        if os.path.isfile(d + ext):
            return ("video", d + ext, None)
    return None


def box_iou(a, b):
    """IoU of ``[n, 4]`` and ``[m, 4]`` (x1, y1, x2, y2), continuous coordinates → ``[n, m]``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def load_records(m, problems=None, train=False):
    """The keyframes of a mode's settings ``m`` (``filelist`` GT CSV, ``proposal_file``, ``exclude_file``,
    ``data_root``): a list of dicts ``{key, video, ts, source, gt_boxes, gt_labels, proposals}``.  The
    exclusions filter training only (evaluation skips them in the metric, as the official code)."""
    problems = problems if problems is not None else Problems()
    gt = read_gt(m.filelist, m.num_classes, problems)
    props = read_proposals(m.proposal_file) if m.proposal_file else None
    excluded = read_exclusions(m.exclude_file, problems) if train else set()
    if not m.data_root:
        raise UserError("no data_root set for the AVA frames (<data_root>/<video_id>/00001.jpg ...); set "
                        "{}.data_root".format(m.mode.upper()))
    sources, records = {}, []
    half = m.seg_num // 2 * m.frame_interval
    for key, (video, ts, boxes, labels) in gt.items():
        where = "{} ({})".format(m.filelist, key)
        if key in excluded:
            problems.add("excluded timestamps", where)
            continue
        if video not in sources:
            sources[video] = frame_source(m.data_root, video)
        src = sources[video]
        if src is None:
            problems.add("unknown videos (no frames under data_root)", where,
                         "no {}/{}/ folder or video".format(m.data_root, video))
            continue
        center = keyframe_index(ts)
        if center < 1 or (src[2] is not None and center + half - m.frame_interval > src[2]):
            problems.add("missing frames", where, "keyframe frame {} (clip to {}) but {} has {} frames".format(
                center, center + half - m.frame_interval, src[1], src[2]))
            continue
        if props is not None and key not in props:
            problems.add("keyframes absent from the proposals", where)
            continue
        p = select_proposals(props[key])[:, :4] if props is not None else boxes.astype(np.float64)
        records.append({"key": key, "video": video, "ts": ts, "source": src, "gt_boxes": boxes,
                        "gt_labels": labels, "proposals": p.astype(np.float32)})
    if not records:
        raise UserError("no usable keyframe in {} ({} skipped: {}); check data_root, proposal_file and the CSV"
                        .format(m.filelist, problems.total(), problems.summary()))
    return records, problems


def clip_frame_indices(center, clip_len, interval, count, rng=None):
    """1-based frame numbers of the clip around ``center`` (training: each gets a random offset in {−1, 0}),
    clamped to ``[1, count]`` (no upper clamp when ``count`` is None)."""
    start = center - (clip_len // 2) * interval
    idx = start + np.arange(clip_len) * interval
    if rng is not None:
        idx = idx + rng.integers(-1, 1, size=clip_len)
    return np.clip(idx, 1, count if count else np.iinfo(np.int64).max)


def read_clip(source, idx):
    """``[T, H, W, 3]`` uint8 RGB of 1-based frame numbers ``idx`` from a frame folder or a cut video."""
    kind, path, _ = source
    if kind == "frames":
        cache, out = {}, []
        for i in idx:
            i = int(i)
            if i not in cache:
                img = cv2.imread(os.path.join(path, "{:05d}.jpg".format(i)), cv2.IMREAD_COLOR)
                if img is None:
                    raise VideoError("frame {}/{:05d}.jpg does not exist or does not decode".format(path, i))
                cache[i] = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            out.append(cache[i])
        return np.stack(out)
    import decord
    vr = decord.VideoReader(path, num_threads=1)
    fps = vr.get_avg_fps() or FPS
    frames = np.clip(np.round((np.asarray(idx) - 1) / FPS * fps).astype(np.int64), 0, len(vr) - 1)
    uniq, inverse = np.unique(frames, return_inverse=True)
    return vr.get_batch(uniq.tolist()).asnumpy()[inverse]


def rescale(frames, boxes, short):
    """Short side to ``short`` (long side ``int(L·short/S + 0.5)``, bilinear); boxes (pixels) scaled alike."""
    h, w = frames.shape[1:3]
    if w <= h:
        nw, nh = short, int(h * short / w + 0.5)
    else:
        nh, nw = short, int(w * short / h + 0.5)
    if (nh, nw) != (h, w):
        frames = np.stack([cv2.resize(f, (nw, nh), interpolation=cv2.INTER_LINEAR) for f in frames])
    return frames, [b * np.array([nw / w, nh / h, nw / w, nh / h], np.float32) for b in boxes]


def assign_targets(proposals, gt_boxes, gt_labels, rng):
    """Training RoIs: GT boxes + proposals, labelled with the GT of max IoU when IoU ≥ 0.9 (else all-zero),
    then up to 32 positives drawn at random and negatives after them up to 32 rows — the reference's
    MaxIoUAssignerAVA + RandomSampler(32, pos_fraction 1, add_gt_as_proposals)."""
    rois = np.concatenate([gt_boxes, proposals]) if len(proposals) else gt_boxes
    iou = box_iou(rois, gt_boxes)
    best = iou.argmax(axis=1)
    pos = iou[np.arange(len(rois)), best] >= POS_IOU
    labels = np.where(pos[:, None], gt_labels[best], 0.0).astype(np.float32)
    pos_i, neg_i = np.flatnonzero(pos), np.flatnonzero(~pos)
    pos_i = rng.permutation(pos_i)[:NUM_SAMPLED]
    neg_i = rng.permutation(neg_i)[:NUM_SAMPLED - len(pos_i)]
    keep = np.concatenate([pos_i, neg_i])
    return rois[keep].astype(np.float32), labels[keep]


class AVADataset(paddle.io.Dataset):
    """Keyframes of an AVA-format annotation set.  A sample is ``(clip [T, 3, H, W] float32, rois [R, 4]
    float32 pixels of the clip's frames, labels [R, num_classes] float32 multi-hot, index)``: in training the
    sampled GT + proposal RoIs with their targets, in evaluation the selected proposals with zero labels.
    Index with ``(epoch, i)`` or ``i`` (random choices from ``(seed, epoch, i)``)."""

    clips_per_video = 1

    def __init__(self, records, cfg, seed=0):
        self.records, self.cfg, self.seed = records, cfg, seed
        self.train = cfg.mode == "train"

    def __len__(self):
        return len(self.records)

    def load(self, i, epoch=0):
        r, m = self.records[i], self.cfg
        rng = np.random.default_rng([self.seed, epoch, i])
        idx = clip_frame_indices(keyframe_index(r["ts"]), m.seg_num, m.frame_interval, r["source"][2],
                                 rng if self.train else None)
        frames = call_with_timeout(lambda: read_clip(r["source"], idx), m.decode_timeout)
        h, w = frames.shape[1:3]
        scale = np.array([w, h, w, h], np.float32)
        if self.train:
            rois, labels = assign_targets(r["proposals"], r["gt_boxes"], r["gt_labels"], rng)
            rois = rois * scale
            short = int(rng.integers(m.scale_jitter[0], m.scale_jitter[1] + 1)) if m.scale_jitter else m.short_size
            frames, (rois,) = rescale(frames, [rois], short)
            frames, rois = self._crop_flip(frames, rois, rng)
            keep = (rois[:, 2] > rois[:, 0]) & (rois[:, 3] > rois[:, 1])     # boxes the crop left empty
            rois, labels = rois[keep], labels[keep]
        else:
            rois, labels = r["proposals"] * scale, np.zeros((len(r["proposals"]), m.num_classes), np.float32)
            frames, (rois,) = rescale(frames, [rois], m.short_size)
        x = frames.astype(np.float32) * (1.0 / 255.0)
        x = (x - np.asarray(m.image_mean, np.float32)) / np.asarray(m.image_std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), rois.astype(np.float32), labels

    def _crop_flip(self, frames, rois, rng):
        """RandomCrop_v2 (``target_size`` square; boxes shifted and clipped) and a horizontal flip (p 0.5)."""
        m = self.cfg
        h, w = frames.shape[1:3]
        size = m.target_size
        if size < min(h, w) or size < max(h, w):
            ch, cw = min(size, h), min(size, w)
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            frames = frames[:, y0:y0 + ch, x0:x0 + cw]
            rois = rois - np.array([x0, y0, x0, y0], np.float32)
            rois[:, 0::2] = np.clip(rois[:, 0::2], 0, cw - 1)
            rois[:, 1::2] = np.clip(rois[:, 1::2], 0, ch - 1)
        if m.flip and rng.random() < 0.5:
            w = frames.shape[2]
            frames = frames[:, :, ::-1]
            rois = rois.copy()
            rois[:, [0, 2]] = w - rois[:, [2, 0]] - 1
        return frames, rois

    def __getitem__(self, key):
        epoch, i = key if isinstance(key, tuple) else (0, key)
        try:
            clip, rois, labels = self.load(i, epoch)
            return clip, rois, labels, i
        except VideoError as e:
            print("warning: skipped keyframe {}: cannot decode ({})".format(self.records[i]["key"], e),
                  file=sys.stderr)
            return None, None, None, i


def collate(samples):
    """``(clips [B', T, 3, H, W], rois [R, 4], rois_num [B'] int32, labels [R, C], meta [B, 3] int64)`` —
    ``meta`` rows ``(index, -1, ok)`` as the classification collate, failed samples included."""
    ok = [s for s in samples if s[0] is not None]
    meta = np.array([[s[3], -1, s[0] is not None] for s in samples], np.int64)
    if not ok:
        z = np.zeros((1, 4), np.float32)
        return np.zeros((1, 1, 1, 1, 1), np.float32), z, np.zeros(1, np.int32), z, meta
    return (np.stack([s[0] for s in ok]), np.concatenate([s[1] for s in ok]),
            np.array([len(s[1]) for s in ok], np.int32), np.concatenate([s[2] for s in ok]), meta)


def unpack(batch):
    """``(inputs (clips, rois, rois_num) or None, labels [R, C], indices [B'], failed indices)``."""
    clips, rois, num, labels, meta = batch
    meta = meta.numpy() if hasattr(meta, "numpy") else np.asarray(meta)
    ok = meta[:, 2] == 1
    if not ok.any():
        return None, None, meta[ok, 0], meta[~ok, 0]
    return (clips, rois, num), labels, meta[ok, 0], meta[~ok, 0]


def group_rows(values, counts):
    """Split rows ``[R, ...]`` into a list of per-clip arrays by ``counts [B]``."""
    return np.split(np.asarray(values), np.cumsum(np.asarray(counts))[:-1])

