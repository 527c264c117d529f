"""Evaluation: loss, top-1, top-5 over every video of a list (no dropped partial batch)."""
import json
import os
import time

import numpy as np
from tqdm import tqdm

from ..data import VideoDataset, build_loader, parse_list, unpack_batch
from .backends import make_runner
from .common import log, log_softmax, resolve_weights, set_device, topk_correct


def run_eval(runner, loader, items, desc="eval", mode_tag="TEST", log_interval=0):
    """Evaluate with ``runner`` (clips -> logits, see backends) on ``loader``; return a summary dict
    (loss, top1, top5, counts, skipped, confusion)."""
    n = correct1 = correct5 = 0
    loss_sum = 0.0
    skipped = []
    confusion = None
    for it, batch in enumerate(tqdm(loader, desc=desc, leave=False, mininterval=2)):
        clips, y, _, failed = unpack_batch(batch)
        skipped += [items[int(i)][0] for i in failed]
        if clips is None:
            continue
        logits = runner(clips)
        logp = log_softmax(logits)
        loss_sum += float(-logp[np.arange(len(y)), y].sum())
        if confusion is None:
            confusion = np.zeros((logits.shape[1], logits.shape[1]), np.int64)
        np.add.at(confusion, (y, logits.argmax(axis=1)), 1)
        correct1 += topk_correct(logits, y, 1)
        correct5 += topk_correct(logits, y, 5)
        n += len(y)
        if log_interval and it % log_interval == 0:
            log("[{}] iter {}\tLoss: {:.6f},\ttop1_acc: {:.4f}, \ttop5_acc: {:.4f}".format(
                mode_tag, it, loss_sum / n, correct1 / n, correct5 / n))
    return {
        "loss": loss_sum / n if n else None,
        "top1_acc": correct1 / n if n else None,
        "top5_acc": correct5 / n if n else None,
        "num_videos": len(items),
        "num_evaluated": n,
        "num_skipped": len(skipped),
        "skipped": skipped,
        "confusion": confusion.tolist() if confusion is not None else None,   # rows: true, cols: predicted
    }


def evaluate_model(cfg, model_name, weights=None, log_interval=0, skip_bad_lines=False, cache_dir=None,
                   backend="auto", cpu_threads=None, exported=None):
    """Evaluate ``model_name`` with ``weights`` on the TEST list; return the summary."""
    m = cfg.mode("test")
    set_device(m.use_gpu)
    items = parse_list(m.filelist, m.num_classes, m.format, need_label=True, skip_bad=skip_bad_lines,
                       root=m.data_root)
    w = resolve_weights(cfg, weights, cache_dir)
    runner, used = make_runner(cfg, "test", w, backend, cpu_threads, cache_dir, exported)
    loader = build_loader(VideoDataset(items, m), m.batch_size, num_workers=m.num_reader_threads)
    t0 = time.time()
    res = run_eval(runner, loader, items, log_interval=log_interval)
    res.update({"model": model_name, "weights": w, "backend": used, "filelist": m.filelist,
                "seconds": round(time.time() - t0, 2)})
    return res


def evaluate(cfg, model_name, weights=None, save_dir="./output", log_interval=10, skip_bad_lines=False,
             cache_dir=None, backend="auto", cpu_threads=None, exported=None):
    """``eval.py``: evaluate the TEST list; print a summary and write ``save_dir/NAME_eval.json``."""
    res = evaluate_model(cfg, model_name, weights, log_interval, skip_bad_lines, cache_dir, backend,
                         cpu_threads, exported)
    if res["num_evaluated"]:
        log("[TEST] Finish\tLoss: {:.6f},\ttop1_acc: {:.4f},\ttop5_acc: {:.4f}\t({} videos, {} skipped)".format(
            res["loss"], res["top1_acc"], res["top5_acc"], res["num_evaluated"], res["num_skipped"]))
    else:
        log("[TEST] Finish\tno video could be decoded ({} skipped)".format(res["num_skipped"]))
    for path in res["skipped"]:
        log("[TEST] skipped (cannot decode): {}".format(path))
    os.makedirs(save_dir, exist_ok=True)
    out = os.path.join(save_dir, "{}_eval.json".format(model_name))
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    log("[TEST] summary written to {}".format(out))
    return res
