"""Prediction: top-k class names with probabilities for each video of a file or list."""
import json
import os

import numpy as np

from ..data import VideoDataset, build_loader, parse_list, unpack_batch
from ..errors import UserError
from .backends import make_runner
from .common import label_names, log, resolve_weights, set_device, softmax


def predict(cfg, video_path=None, filelist=None, weights=None, output=None, topk=None, skip_bad_lines=False,
            cache_dir=None, backend="auto", cpu_threads=None, exported=None):
    """``predict.py``: print one block per video; return ``(results, failed paths)``.

    results: ``[{"video": path, "top_k": [{"label": name, "score": p}, ...]}]``, and ``{"video": path,
    "error": reason}`` for a video that could not be decoded (also written to ``output`` as JSON when given).
    """
    m = cfg.mode("infer")
    set_device(m.use_gpu)
    if video_path:
        if not os.path.isfile(video_path):
            raise UserError("--video_path {} does not exist".format(video_path))
        items = [(os.path.abspath(video_path), -1)]
    else:
        items = parse_list(filelist or m.filelist, m.num_classes, m.format, need_label=False,
                           skip_bad=skip_bad_lines, root=m.data_root)
    names = label_names(cfg)
    k = min(topk or m.topk, m.num_classes)
    w = None if exported and not weights else resolve_weights(cfg, weights, cache_dir)
    runner, _ = make_runner(cfg, "infer", w, backend, cpu_threads, cache_dir, exported)
    loader = build_loader(VideoDataset(items, m), m.batch_size, num_workers=m.num_reader_threads)
    results, failed = [], []
    for batch in loader:
        clips, _, idx, bad = unpack_batch(batch)
        for i in bad:
            failed.append(items[int(i)][0])
            results.append({"video": items[int(i)][0], "error": "cannot decode this video"})
            log("[INFER] video: {}\n  error: cannot decode this video (skipped)".format(items[int(i)][0]))
        if clips is None:
            continue
        probs = softmax(runner(clips))
        for row, i in zip(probs, idx):
            top = np.argsort(-row)[:k]
            entry = {"video": items[int(i)][0],
                     "top_k": [{"label": names[c], "score": float(row[c])} for c in top]}
            results.append(entry)
            lines = ["[INFER] video: {}".format(entry["video"])]
            lines += ["  class: {}, probability: {:.6f}".format(t["label"], t["score"]) for t in entry["top_k"]]
            log("\n".join(lines))
    if output:
        d = os.path.dirname(os.path.abspath(output))
        os.makedirs(d, exist_ok=True)
        with open(output, "w") as f:
            json.dump(results, f, indent=1)
        log("[INFER] results written to {}".format(output))
    if failed:
        log("[INFER] {} of {} videos failed".format(len(failed), len(items)))
    return results, failed
