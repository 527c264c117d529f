"""Prediction: top-k class names with probabilities for each video of a file or list, or (``features``)
the pooled pre-classifier feature of each video as ``.npy`` files with an index JSON."""
import os

import numpy as np

from ..data import VideoDataset, build_loader, parse_list
from ..data.convert import unique_names
from ..errors import UserError
from .backends import make_runner
from .common import (combine_views, label_names, log, per_video, resolve_weights, set_device, samples_per_batch,
                     write_json)


def _items(m, video_path, filelist, skip_bad_lines):
    if video_path:
        if not os.path.isfile(video_path):
            raise UserError("--video_path {} does not exist".format(video_path))
        return [(os.path.abspath(video_path), -1)]
    return parse_list(filelist or m.filelist, m.num_classes, m.format, need_label=False,
                      skip_bad=skip_bad_lines, root=m.data_root)


def predict(cfg, video_path=None, filelist=None, weights=None, output=None, topk=None, skip_bad_lines=False,
            cache_dir=None, backend="auto", cpu_threads=None, exported=None, features=None):
    """``predict.py``: print one block per video; return ``(results, failed paths)``.

    results: ``[{"video": path, "top_k": [{"label": name, "score": p}, ...]}]``, and ``{"video": path,
    "error": reason}`` for a video that could not be decoded (also written to ``output`` as JSON when given).
    With ``features`` (a folder) the pooled feature of every video is written (:func:`extract_features`); with
    ``output`` too, the predictions are also made and written there (both, never one silently).
    """
    m = cfg.mode("infer")
    set_device(m.use_gpu)
    items = _items(m, video_path, filelist, skip_bad_lines)
    if features:
        done = extract_features(cfg, items, features, weights, cache_dir, backend, cpu_threads)
        if not output:
            return done
    names = label_names(cfg)
    k = min(topk or m.topk, m.num_classes)
    w = None if exported and not weights else resolve_weights(cfg, weights, cache_dir)
    runner, _ = make_runner(cfg, "infer", w, backend, cpu_threads, cache_dir, exported)
    ds = VideoDataset(items, m)
    loader = build_loader(ds, samples_per_batch(m), num_workers=m.num_reader_threads)
    results, failed = [], []
    for idx, _, outputs, bad in per_video(loader, runner, m.batch_size, ds.clips_per_video):
        for i in bad:
            failed.append(items[int(i)][0])
            results.append({"video": items[int(i)][0], "error": "cannot decode this video"})
            log("[INFER] video: {}\n  error: cannot decode this video (skipped)".format(items[int(i)][0]))
        if outputs is None:
            continue
        probs = np.exp(combine_views(outputs, m.average))
        for row, i in zip(probs, idx):
            top = np.argsort(-row)[:k]
            entry = {"video": items[int(i)][0],
                     "top_k": [{"label": names[c], "score": float(row[c])} for c in top]}
            results.append(entry)
            lines = ["[INFER] video: {}".format(entry["video"])]
            lines += ["  class: {}, probability: {:.6f}".format(t["label"], t["score"]) for t in entry["top_k"]]
            log("\n".join(lines))
    if output:
        write_json(output, results)
        log("[INFER] results written to {}".format(output))
    if failed:
        log("[INFER] {} of {} videos failed".format(len(failed), len(items)))
    return results, failed


def extract_features(cfg, items, out_dir, weights=None, cache_dir=None, backend="auto", cpu_threads=None):
    """Write ``out_dir/<video name>.npy`` (float32 ``[D]``: the model's pooled pre-classifier feature — 2048
    for TSM/TSN-R50, 1024 for StNet-R50 and I3D, 2048 for two-stream I3D (RGB then flow), 2304 for
    SlowFast-R50 — averaged over the test views) and ``out_dir/features.json``: ``{"model", "weights",
    "dim", "views", "videos": [{"video", "label", "file"}], "failed": [{"video", "error"}]}``."""
    m = cfg.mode("infer")
    w = resolve_weights(cfg, weights, cache_dir)
    runner, used = make_runner(cfg, "infer", w, backend, cpu_threads, cache_dir, output="features")
    ds = VideoDataset(items, m)
    loader = build_loader(ds, samples_per_batch(m), num_workers=m.num_reader_threads)
    os.makedirs(out_dir, exist_ok=True)
    files = unique_names([p for p, _ in items])
    index = {"model": cfg.MODEL.name, "weights": w, "backend": used, "dim": None,
             "views": {"num_clips": m.num_clips, "num_crops": m.num_crops}, "videos": [], "failed": []}
    for idx, _, outputs, bad in per_video(loader, runner, m.batch_size, ds.clips_per_video):
        for i in bad:
            index["failed"].append({"video": items[int(i)][0], "error": "cannot decode this video"})
            log("[FEATURES] video: {}\n  error: cannot decode this video (skipped)".format(items[int(i)][0]))
        if outputs is None:
            continue
        feats = outputs.mean(axis=1)                           # the mean over the video's views
        for f, i in zip(feats.astype(np.float32), idx):
            name = files[int(i)] + ".npy"
            np.save(os.path.join(out_dir, name), f)
            index["dim"] = int(f.shape[0])
            index["videos"].append({"video": items[int(i)][0], "label": int(items[int(i)][1]), "file": name})
            log("[FEATURES] video: {} -> {} [{}]".format(items[int(i)][0], name, f.shape[0]))
    write_json(os.path.join(out_dir, "features.json"), index)
    log("[FEATURES] {} features written to {} (index: features.json){}".format(
        len(index["videos"]), out_dir, "; {} videos failed".format(len(index["failed"])) if index["failed"] else ""))
    return index["videos"], [f["video"] for f in index["failed"]]
