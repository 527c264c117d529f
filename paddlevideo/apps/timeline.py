"""Long videos: score sliding windows over a whole video with streaming decode, merge them into labelled
segments, and optionally render the labels onto a copy of the video.

Windows are ``window`` seconds long, ``stride`` seconds apart: window k covers frames ``[k*S, k*S + W)``
(``W = round(window*fps)``, ``S = round(stride*fps)``); a last window ending at the last frame covers a
tail the regular windows miss, and a video shorter than one window is one window.  Each window is
sampled like one test clip (the model's seg_num/seglen, :func:`~paddlevideo.data.sampling.segment_indices`
or dense sampling over the window) and centre-cropped.

Decoding is one forward pass over the file (OpenCV, grab every frame, convert only the sampled ones);
a sampled frame is kept, already scaled to ``short_size``, only until the last window that uses it has
been scored — memory depends on the window, not on the video's length.
"""
import os

import cv2
import numpy as np
from tqdm import tqdm

from ..data.sampling import clip_indices
from ..data.transforms import scale_short_side, transform_clip
from .. import quiet
from ..data.video import VideoError, sniff
from ..errors import UserError
from ..runtime.backends import make_runner
from ..config import label_names
from ..report import log, write_json
from ..runtime.batches import resolve_weights, set_device
from ..metrics.classification import softmax


def plan_windows(num_frames, fps, window, stride):
    """``[(first_frame, num_frames_in_window)]`` of the sliding windows (see the module doc)."""
    w = max(int(round(window * fps)), 1)
    s = max(int(round(stride * fps)), 1)
    if num_frames <= w:
        return [(0, max(num_frames, 1))]
    out = [(k * s, w) for k in range((num_frames - w) // s + 1)]
    if out[-1][0] + w < num_frames:
        out.append((num_frames - w, w))
    return out


def window_indices(m, start, length):
    """Frame indices (absolute) that the model samples from a window: one test clip of it."""
    return [start + i for i in clip_indices(length, m)]


def merge_segments(windows, threshold):
    """Consecutive windows with the same top-1 label, each scoring at least ``threshold``, become one
    segment ``{"start", "end", "label", "score"}`` (score: the mean top-1 probability of its windows)."""
    segments, scores = [], []
    for w in windows:
        top = w["top_k"][0]
        if top["score"] < threshold:
            if segments and scores:
                segments[-1]["score"] = float(np.mean(scores))
            scores = []
            segments.append(None)
            continue
        if segments and segments[-1] is not None and segments[-1]["label"] == top["label"]:
            segments[-1]["end"] = w["end"]
            scores.append(top["score"])
        else:
            if segments and segments[-1] is not None:
                segments[-1]["score"] = float(np.mean(scores))
            segments.append({"start": w["start"], "end": w["end"], "label": top["label"], "score": None})
            scores = [top["score"]]
    if segments and segments[-1] is not None:
        segments[-1]["score"] = float(np.mean(scores))
    return [s for s in segments if s is not None]


def _open(path):
    if not os.path.isfile(path):
        raise UserError("--video_path {} does not exist".format(path))
    try:
        sniff(path)
    except VideoError as e:
        raise UserError("{}: {}".format(path, e))
    with quiet.hidden():
        cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise UserError("{}: OpenCV cannot open this video (is it a video file?)".format(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if not fps or fps <= 0 or fps > 1000:
        cap.release()
        raise UserError("{}: the container states no frame rate; re-encode it (e.g. ffmpeg -i IN -r 30 OUT.mp4)"
                        .format(path))
    if count < 1:
        cap.release()
        raise UserError("{}: the container states no frame count; re-encode it (ffmpeg -i IN OUT.mp4)".format(path))
    return cap, fps, count


def timeline(cfg, video_path, window, stride=None, threshold=0.5, output=None, render=None, weights=None,
             topk=None, cache_dir=None, backend="auto", cpu_threads=None, exported=None, runner=None):
    """``predict.py --video_path V --window SEC [--stride SEC --threshold P --output F --render OUT.mp4]``.
    ``runner``: an already-built runner (clips ``[B, T, C, H, W]`` → logits ``[B, K]``, e.g. the server's
    batcher) instead of one made from ``weights``/``backend``.

    Returns ``{"video", "fps", "duration", "num_frames", "window", "stride", "windows": [{"start", "end",
    "top_k": [{"label", "score"}]}], "segments": [{"start", "end", "label", "score"}]}`` (times in seconds)."""
    if window is None or window <= 0 or (stride is not None and stride <= 0):
        raise UserError("--window and --stride must be positive numbers of seconds (got {} and {})".format(window, stride))
    stride = window if stride is None else stride
    m = cfg.mode("infer")
    if m.format != "mp4":
        raise UserError("--window needs a video file (MODEL.format mp4), not format {}".format(m.format))
    set_device(m.use_gpu)
    names = label_names(cfg)
    k = min(topk or m.topk, m.num_classes)
    if runner is None:
        w = None if exported and not weights else resolve_weights(cfg, weights, cache_dir)
        runner, _ = make_runner(cfg, "infer", w, backend, cpu_threads, cache_dir, exported)
    cap, fps, count = _open(video_path)
    plan = plan_windows(count, fps, window, stride)
    wanted = [window_indices(m, s, n) for s, n in plan]
    last_use = {}
    for j, idx in enumerate(wanted):
        for i in idx:
            last_use[i] = j
    results, kept, pending, done = [], {}, [], 0
    decoded, eof = 0, False

    def score(batch):
        probs = softmax(runner(np.stack([c for _, c in batch])))
        for (j, _), row in zip(batch, probs):
            top = np.argsort(-row)[:k]
            s, n = plan[j]
            results.append({"start": round(s / fps, 3), "end": round((s + n) / fps, 3),
                            "top_k": [{"label": names[c], "score": float(row[c])} for c in top]})

    def complete(j, kept):
        if not kept:                     # nothing decodable so far: this window cannot be scored
            return
        frames = [kept[x] if x in kept else kept[min(kept, key=lambda y: abs(y - x))] for x in wanted[j]]
        clip = transform_clip(np.stack(frames), m, train=False)
        pending.append((j, clip))
        if len(pending) >= m.batch_size:
            score(pending)
            pending.clear()

    bar = tqdm(total=count, desc="timeline", unit="frame", mininterval=2, leave=False)
    try:
        with quiet.hidden():
            while done < len(plan):
                if not cap.grab():
                    eof = True
                    break
                i = decoded
                decoded += 1
                bar.update(1)
                if i in last_use:
                    ok, frame = cap.retrieve()
                    if ok:
                        kept[i] = scale_short_side(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)[None], m.short_size)[0]
                while done < len(plan) and max(wanted[done]) <= i:
                    complete(done, kept)
                    done += 1
                for x in [x for x in kept if last_use[x] < done]:
                    del kept[x]
    finally:
        bar.close()
        cap.release()
    missing = 0
    while done < len(plan):              # the header promised more frames than the file holds
        missing += 1
        complete(done, kept)
        done += 1
    if pending:
        score(pending)
    if not results:
        raise UserError("{}: no frame could be decoded".format(video_path))
    results.sort(key=lambda r: r["start"])
    frames = decoded if eof else count
    out = {"video": os.path.abspath(video_path), "fps": round(float(fps), 3), "num_frames": frames,
           "duration": round(frames / fps, 3), "window": window, "stride": stride, "threshold": threshold,
           "windows": results, "segments": merge_segments(results, threshold)}
    if eof and decoded < count:
        log("[TIMELINE] note: the container states {} frames, {} decoded; windows past the end use the last "
            "decoded frames".format(count, decoded))
    for seg in out["segments"]:
        log("[TIMELINE] {:9.2f}s - {:9.2f}s  {}  ({:.3f})".format(seg["start"], seg["end"], seg["label"], seg["score"]))
    log("[TIMELINE] {} windows of {:g}s every {:g}s over {:.1f}s; {} segments".format(
        len(results), window, stride, out["duration"], len(out["segments"])))
    if output:
        write_json(output, out)
        log("[TIMELINE] written to {}".format(output))
    if render:
        render_timeline(video_path, out, render)
    return out


def render_timeline(video_path, timeline_result, out_path):
    """Copy ``video_path`` to ``out_path`` (MPEG-4 in an .mp4/.avi container) with the label of the
    segment (or, outside any segment, the top-1 of the latest window) drawn on every frame; streams
    frame by frame."""
    cap = cv2.VideoCapture(video_path)
    fps = cap.get(cv2.CAP_PROP_FPS)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        cap.release()
        raise UserError("--render {}: cannot write a video there (use an .mp4 or .avi name in a writable folder)"
                        .format(out_path))
    segs, wins = timeline_result["segments"], timeline_result["windows"]
    scale = max(h / 480.0, 0.5)
    i = 0
    try:
        with quiet.hidden():
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                t = i / fps
                seg = next((s for s in segs if s["start"] <= t < s["end"]), None)
                if seg is not None:
                    text = "{} {:.2f}".format(seg["label"], seg["score"])
                else:
                    win = [x for x in wins if x["start"] <= t] or wins[:1]
                    text = "({} {:.2f})".format(win[-1]["top_k"][0]["label"], win[-1]["top_k"][0]["score"])
                text = "{:6.1f}s  {}".format(t, text)
                org = (int(10 * scale), int(30 * scale))
                cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, (0, 0, 0), int(4 * scale) + 1,
                            cv2.LINE_AA)
                cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, (255, 255, 255),
                            max(int(1.5 * scale), 1), cv2.LINE_AA)
                writer.write(frame)
                i += 1
    finally:
        cap.release()
        writer.release()
    log("[TIMELINE] rendered {} frames to {}".format(i, out_path))
    return out_path
