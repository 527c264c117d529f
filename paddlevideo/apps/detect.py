"""``predict.py`` with a detection config: who does what, where, in a video.

Keyframes every ``stride`` seconds (``t = 0, stride, 2·stride, …``); each keyframe's clip is ``seg_num``
frames every ``frame_interval`` frames *at 30 fps* (the training rate; rescaled to the video's fps) centred on
it.  Person boxes come from ``--proposals FILE`` or a person detector:

* ``--proposals``: a pickle (AVA layout) or JSON ``{"<video stem>,<seconds %04d>": [[x1, y1, x2, y2(, score)],
  ...]}`` with normalised boxes, kept by the evaluation's rule (score ≥ min(0.9, the keyframe's max)).  Keys are
  whole seconds: the keyframe at ``t`` reads key ``t`` only when ``t`` is a whole second (``--stride 0.5``: the
  keyframes at 1.5 s, 2.5 s read none — never a neighbour's), so no two keyframes read the same key.  A keyframe
  without an entry takes its boxes from ``--detector`` when one is given, else it gets none (counted, one line);
* a detector: any callable ``detector(frame RGB uint8 [H, W, 3]) -> [n, 5]`` (pixel x1, y1, x2, y2, score).
  The zero-download default is OpenCV's HOG people detector (:class:`HOGPersonDetector`); pass your own with
  ``--detector module:attribute`` (a class, instantiated without arguments, or a function), e.g. a
  PaddleDetection/ONNX person model wrapped in ten lines.

Output (``--output F.json``): ``{"video", "fps", "stride", "keyframes": [{"time" (seconds), "frame",
"persons": [{"box" (pixels), "box_norm", "detector_score", "actions": [{"id", "label", "score"}]}]}]}``
with the actions whose score ≥ ``threshold``; ``--render OUT.mp4`` draws them (time in seconds).
"""
import json
import os
import pickle

import cv2
import numpy as np

from ..data.ava import FPS, box_array, read_label_map, rescale, select_proposals
from ..errors import UserError
from ..runtime.backends import make_runner
from .persons import HOGPersonDetector, load_detector  # noqa: F401  (detect.HOGPersonDetector: an alias)
from ..config import label_map_path
from ..report import log, write_json
from ..runtime.batches import resolve_weights, set_device


def read_box_file(path):
    """The ``--proposals`` file (pickle or JSON) → ``{key: [n, 4|5]}`` normalised."""
    if not os.path.isfile(path):
        raise UserError("--proposals {} not found".format(path))
    try:
        if path.endswith(".json"):
            with open(path) as f:
                raw = json.load(f)
        else:
            with open(path, "rb") as f:
                raw = pickle.load(f, encoding="latin1")
        return {k: box_array(v) for k, v in raw.items()}
    except Exception as e:  # noqa: BLE001  (any unreadable content is a bad file)
        raise UserError("--proposals {}: not a pickle/JSON dict of boxes ({})".format(path, e))


def proposal_key(stem, t):
    """The ``--proposals`` key of the keyframe at ``t`` seconds: ``stem,%04d`` when ``t`` is a whole second, else
    None (no rounding: 1.5 s and 2.5 s must not both read ``0002``)."""
    whole = round(t)
    return "{},{:04d}".format(stem, int(whole)) if abs(t - whole) < 1e-6 else None


def count_frames(video_path):
    """Decode ``video_path`` to its end and count the frames (for containers whose header reports none)."""
    cap = cv2.VideoCapture(video_path)
    n = 0
    try:
        while cap.grab():
            n += 1
    finally:
        cap.release()
    return n


def plan_keyframes(num_frames, fps, stride, clip_len, interval):
    """``[(time, key frame, clip frame indices)]`` (0-based frames) for keyframes every ``stride`` s."""
    if stride <= 0:
        raise UserError("--stride must be > 0 seconds (got {})".format(stride))
    step = interval * fps / FPS
    out, t = [], 0.0
    while int(round(t * fps)) < num_frames:
        key = int(round(t * fps))
        idx = np.clip(np.round(key + (np.arange(clip_len) - clip_len // 2) * step).astype(int), 0, num_frames - 1)
        out.append((round(t, 3), key, idx))
        t += stride
    return out


def detect_video(cfg, video_path, stride=1.0, proposals=None, detector=None, threshold=0.5, output=None,
                 render=None, weights=None, cache_dir=None, backend="auto", cpu_threads=None, exported=None,
                 runner=None, quiet=False):
    """Run the detector over ``video_path``; return the result dict (see the module doc).  ``runner``: an
    already-built runner (e.g. the server's batcher) instead of one made from ``weights``/``backend``;
    ``quiet``: no per-keyframe log lines (a server)."""
    m = cfg.mode("infer")
    set_device(m.use_gpu)
    if not os.path.isfile(video_path):
        raise UserError("--video_path {} does not exist".format(video_path))
    names = {}
    if cfg.MODEL.label_map:
        names, _ = read_label_map(label_map_path(cfg))
    boxes_file = read_box_file(proposals) if proposals else None
    person = load_detector(detector) if boxes_file is None or detector else None
    if runner is None:
        w = None if exported and not weights else resolve_weights(cfg, weights, cache_dir)
        runner, used = make_runner(cfg, "infer", w, backend, cpu_threads, cache_dir, exported)
    else:
        used = getattr(runner, "backend", backend)
    cap = cv2.VideoCapture(video_path)
    if not cap.isOpened():
        raise UserError("OpenCV cannot open {}".format(video_path))
    fps = cap.get(cv2.CAP_PROP_FPS) or FPS
    n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    if not 0 < n < 1e8:                     # raw streams, piped mkv/ts: the header has no (or a junk) count
        n = count_frames(video_path)
        if n == 0:
            cap.release()
            raise UserError("{}: no frame could be decoded (an empty or broken video)".format(video_path))
    n = int(n)
    plan = plan_keyframes(n, fps, stride, m.seg_num, m.frame_interval)
    stem = os.path.splitext(os.path.basename(video_path))[0]
    result = {"video": os.path.abspath(video_path), "fps": fps, "stride": stride, "backend": used,
              "threshold": threshold, "keyframes": []}
    needed = {int(j) for _, key, idx in plan for j in list(idx) + [key]}
    frames, k, i, missing, between = {}, 0, 0, 0, 0
    while k < len(plan):
        ok = cap.grab()
        if ok and i in needed:
            ok, img = cap.retrieve()
            if ok:
                frames[i] = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        while k < len(plan) and (not ok or i >= plan[k][2].max()):
            t, key, idx = plan[k]
            have = [j for j in idx if j in frames]
            if not have:
                break
            clip = np.stack([frames[j] if j in frames else frames[have[-1]] for j in idx])
            keyimg = frames.get(key, clip[len(clip) // 2])
            h, wd = keyimg.shape[:2]
            key_name = proposal_key(stem, t) if boxes_file is not None else None
            b = boxes_file.get(key_name) if key_name is not None else None
            if boxes_file is not None and b is None:
                missing += 1
                between += key_name is None
            if b is not None or (boxes_file is not None and person is None):
                b = select_proposals(b if b is not None else np.zeros((0, 5)))   # score >= min(0.9, max)
                scores = b[:, 4] if b.shape[1] > 4 else np.ones(len(b))
                px = b[:, :4] * np.array([wd, h, wd, h])
            else:
                d = np.asarray(person(keyimg), np.float64).reshape(-1, 5)
                px, scores = d[:, :4], d[:, 4]
            result["keyframes"].append(_score(runner, clip, px, scores, m, t, key, wd, h, names, threshold))
            k += 1
            lo = plan[k][2].min() if k < len(plan) else i + 1
            frames = {j: f for j, f in frames.items() if j >= lo}
        if not ok:
            break
        i += 1
    cap.release()
    result["keyframes_without_boxes"] = missing if person is None else 0
    result["keyframes_without_proposals"] = missing
    for kf in ([] if quiet else result["keyframes"]):
        acts = "; ".join("[{}] {}".format(", ".join("{:.0f}".format(v) for v in p["box"]),
                                           ", ".join("{} {:.2f}".format(a["label"], a["score"]) for a in p["actions"])
                                           or "-") for p in kf["persons"])
        log("[DETECT] t={:.2f}s  {} person(s)  {}".format(kf["time"], len(kf["persons"]), acts))
    if missing:
        log("[DETECT] {} keyframes had no entry in {} (keys '{},<whole seconds %04d>'{}){}".format(
            missing, proposals, stem, "; {} of them fall between whole seconds and read no key".format(between)
            if between else "", ": their boxes came from the detector" if person is not None else ""))
    if output:
        write_json(output, result)
        log("[DETECT] results written to {}".format(output))
    if render:
        render_video(video_path, result, render, stride)
        log("[DETECT] rendered {}".format(render))
    return result


def detect_cli(cfg, args):
    """``predict.py`` for a detection model: one video, keyframe by keyframe; returns the exit code."""
    if not args.video_path:
        raise UserError("detection predicts one video: pass --video_path FILE")
    detect_video(cfg, args.video_path, args.stride or 1.0, args.proposals, args.detector, args.threshold,
                 args.output, args.render, args.weights, args.cache_dir, args.backend, args.cpu_threads,
                 args.exported)
    return 0


def score_boxes(runner, clip, px, m):
    """The detector on one keyframe: ``clip [T, H, W, 3]`` RGB uint8 and person boxes ``px [R, 4]`` (pixels) →
    action probabilities ``[R, num_classes]`` (sigmoid; column 0 unused), all boxes in one call."""
    frames, (boxes,) = rescale(clip, [np.asarray(px, np.float32)], m.short_size)
    x = frames.astype(np.float32) / 255.0
    x = (x - np.asarray(m.image_mean, np.float32)) / np.asarray(m.image_std, np.float32)
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))[None]
    logits = np.asarray(runner(x, boxes.astype(np.float32), np.array([len(boxes)], np.int32)), np.float64)
    return 1.0 / (1.0 + np.exp(-logits))


def _score(runner, clip, px, det_scores, m, t, key, w, h, names, threshold):
    """One keyframe: the model on the clip and the person boxes → its JSON entry."""
    entry = {"time": t, "frame": int(key), "persons": []}
    if len(px) == 0:
        return entry
    probs = score_boxes(runner, clip, px, m)
    for b, s, p in zip(px, det_scores, probs):
        acts = [{"id": int(c), "label": names.get(int(c), str(c)), "score": float(p[c])}
                for c in np.argsort(-p) if c > 0 and p[c] >= threshold and (not names or c in names)]
        entry["persons"].append({"box": [float(v) for v in b], "box_norm": [float(b[0] / w), float(b[1] / h),
                                                                             float(b[2] / w), float(b[3] / h)],
                                 "detector_score": float(s), "actions": acts})
    return entry


def render_video(video_path, result, out, stride):
    """Copy of the video with each keyframe's boxes and actions drawn until the next keyframe; a video whose
    short side is under 360 px is upscaled (nearest) by an integer factor so that the labels stay legible."""
    cap = cv2.VideoCapture(video_path)
    fps = result["fps"]
    writer, i, kfs, cur, up = None, 0, list(result["keyframes"]), None, 1
    try:
        while True:
            ok, img = cap.read()
            if not ok:
                break
            if writer is None:
                up = max(1, int(round(360 / min(img.shape[:2]))))
                os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
                writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                         (img.shape[1] * up, img.shape[0] * up))
            if up > 1:
                img = cv2.resize(img, (img.shape[1] * up, img.shape[0] * up), interpolation=cv2.INTER_NEAREST)
            t = i / fps
            while kfs and kfs[0]["time"] <= t + 1e-6:
                cur = kfs.pop(0)
            scale = img.shape[0] / 720
            if cur is not None and t - cur["time"] < stride + 1e-6:
                for p in cur["persons"]:
                    x1, y1, x2, y2 = [int(round(v * up)) for v in p["box"]]
                    cv2.rectangle(img, (x1, y1), (x2, y2), (0, 255, 0), 2)
                    for j, a in enumerate(p["actions"][:3]):
                        cv2.putText(img, "{} {:.2f}".format(a["label"], a["score"]),
                                    (x1 + 3, y1 + int(28 * scale) * (j + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                                    (255, 255, 0), 1, cv2.LINE_AA)
            cv2.putText(img, "t={:.1f}s".format(t), (6, img.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, scale * 1.2,
                        (255, 255, 255), 1, cv2.LINE_AA)
            writer.write(img)
            i += 1
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    return out
