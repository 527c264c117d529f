"""Evaluation: loss, top-1, top-5, per-class and mean class accuracy over every video of a list
(no dropped partial batch), per-video predictions and a confusion-matrix plot."""
import json
import os
import time

import numpy as np
from tqdm import tqdm

from ..data import VideoDataset, build_loader, parse_list
from .backends import make_runner
from .common import (combine_views, label_map_path, label_names, log, per_video, resolve_weights, set_device, topk_correct,
                     samples_per_batch)


def run_eval(runner, loader, items, desc="eval", mode_tag="TEST", log_interval=0, batch_size=1, average="prob",
             clips_per_video=1):
    """Evaluate with ``runner`` (clips -> logits, see backends) on ``loader``; return a summary dict
    (loss, top1, top5, counts, skipped, confusion, per-class, predictions).  With test views every
    video's ``clips_per_video`` clips × crops are combined by :func:`~.common.combine_views`
    (``average`` prob|logit); ``batch_size`` views go through the model per call."""
    n = correct1 = correct5 = 0
    loss_sum = 0.0
    skipped = []
    confusion = None
    predictions = []                              # per video: index, label, top-k (class, probability)
    videos = per_video(tqdm(loader, desc=desc, leave=False, mininterval=2), runner, batch_size, clips_per_video)
    for it, (idx, y, outputs, failed) in enumerate(videos):
        skipped += [items[int(i)][0] for i in failed]
        if outputs is None:
            continue
        logp = combine_views(outputs, average)
        loss_sum += float(-logp[np.arange(len(y)), y].sum())
        if confusion is None:
            confusion = np.zeros((logp.shape[1], logp.shape[1]), np.int64)
        np.add.at(confusion, (y, logp.argmax(axis=1)), 1)
        correct1 += topk_correct(logp, y, 1)
        correct5 += topk_correct(logp, y, 5)
        n += len(y)
        top = np.argsort(-logp, axis=1)[:, :min(5, logp.shape[1])]
        for row, i, label, cls in zip(np.exp(logp), idx, y, top):
            predictions.append({"index": int(i), "label": int(label), "top_k": [(int(c), float(row[c])) for c in cls]})
        if log_interval and it % log_interval == 0:
            log("[{}] iter {}\tLoss: {:.6f},\ttop1_acc: {:.4f}, \ttop5_acc: {:.4f}".format(
                mode_tag, it, loss_sum / n, correct1 / n, correct5 / n))
    return _summary(n, loss_sum, correct1, correct5, len(items), skipped, confusion, predictions)


def _summary(n, loss_sum, correct1, correct5, num_videos, skipped, confusion, predictions):
    rows = per_class(confusion)
    return {
        "loss": loss_sum / n if n else None,
        "top1_acc": correct1 / n if n else None,
        "top5_acc": correct5 / n if n else None,
        "num_videos": num_videos,
        "num_evaluated": n,
        "num_skipped": len(skipped),
        "skipped": skipped,
        "confusion": confusion.tolist() if confusion is not None else None,   # rows: true, cols: predicted
        "per_class": rows,
        "mean_class_acc": float(np.mean([r["top1"] for r in rows])) if rows else None,
        "predictions": predictions,
    }


def merge_results(parts):
    """One summary from :func:`run_eval` summaries of disjoint shards (data-parallel validation): the
    sums behind each summary (loss, correct counts, confusion matrix) add up."""
    if len(parts) == 1:
        return parts[0]
    done = [p for p in parts if p["num_evaluated"]]

    def total(key):
        return sum(p[key] * p["num_evaluated"] for p in done)
    cms = [np.asarray(p["confusion"]) for p in done]
    return _summary(sum(p["num_evaluated"] for p in done), total("loss"), round(total("top1_acc")),
                    round(total("top5_acc")), parts[0]["num_videos"], [s for p in parts for s in p["skipped"]],
                    sum(cms) if cms else None,
                    sorted((x for p in parts for x in p.get("predictions", [])), key=lambda x: x["index"]))


def per_class(confusion):
    """``[{"index", "count", "top1"}]`` for every class with at least one evaluated video."""
    if confusion is None:
        return []
    cm = np.asarray(confusion)
    return [{"index": c, "count": int(cm[c].sum()), "top1": float(cm[c, c] / cm[c].sum())}
            for c in range(len(cm)) if cm[c].sum()]


def evaluate_model(cfg, model_name, weights=None, log_interval=0, skip_bad_lines=False, cache_dir=None,
                   backend="auto", cpu_threads=None, exported=None):
    """Evaluate ``model_name`` with ``weights`` on the TEST list; return the summary."""
    m = cfg.mode("test")
    set_device(m.use_gpu)
    names = label_names(cfg)                 # a wrong MODEL.label_list stops now, not after the evaluation
    items = parse_list(m.filelist, m.num_classes, m.format, need_label=True, skip_bad=skip_bad_lines,
                       root=m.data_root)
    w = resolve_weights(cfg, weights, cache_dir)
    runner, used = make_runner(cfg, "test", w, backend, cpu_threads, cache_dir, exported)
    ds = VideoDataset(items, m)
    loader = build_loader(ds, samples_per_batch(m), num_workers=m.num_reader_threads)
    t0 = time.time()
    res = run_eval(runner, loader, items, log_interval=log_interval, batch_size=m.batch_size, average=m.average,
                   clips_per_video=ds.clips_per_video)
    res.update({"model": model_name, "weights": w, "backend": used, "filelist": m.filelist,
                "seconds": round(time.time() - t0, 2),
                "views": {"num_clips": m.num_clips, "num_crops": m.num_crops, "average": m.average}})
    for r in res["per_class"]:
        r["name"] = names[r["index"]]
    res["predictions"] = [{"video": items[p["index"]][0], "label": p["label"], "label_name": names[p["label"]],
                           "top_k": [{"label": names[c], "score": sc} for c, sc in p["top_k"]]}
                          for p in res["predictions"]] + [{"video": v, "error": "cannot decode this video"}
                                                          for v in res["skipped"]]
    return res


def evaluate_detection(cfg, model_name, weights=None, save_dir="./output", cache_dir=None, backend="auto",
                       cpu_threads=None, exported=None):
    """``eval.py`` with a detection config: score every TEST keyframe's proposals, write the AVA result CSV
    ``save_dir/NAME_detections.csv``, the official frame-mAP@0.5 with per-class AP in ``NAME_eval.json``
    (``mAP``, ``per_class``) and a per-class AP bar chart ``NAME_per_class_ap.png``."""
    from .ava_eval import plot_per_class
    from .tasks import task_for
    task = task_for(cfg)
    m = cfg.mode("test")
    set_device(m.use_gpu)
    label_map = label_map_path(cfg)
    records = task.read(m)
    w = None if exported and not weights else resolve_weights(cfg, weights, cache_dir)
    runner, used = make_runner(cfg, "test", w, backend, cpu_threads, cache_dir, exported)
    loader = task.loader(task.dataset(records, m), m)
    os.makedirs(save_dir, exist_ok=True)
    det = os.path.join(save_dir, "{}_detections.csv".format(model_name))
    t0 = time.time()
    res = task.evaluate(runner, loader, records, m, label_map, out_csv=det)
    res.update({"model": model_name, "weights": w, "backend": used, "gt": m.filelist, "detections": det,
                "exclude_file": m.exclude_file, "proposal_file": m.proposal_file, "label_map": label_map,
                "seconds": round(time.time() - t0, 2)})
    out = os.path.join(save_dir, "{}_eval.json".format(model_name))
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    png = plot_per_class(res["per_class"], os.path.join(save_dir, "{}_per_class_ap.png".format(model_name)),
                         "{}: frame-AP@0.5IoU per class".format(model_name))
    if res["mAP"] is None:
        log("[TEST] Finish	no class of the label map has ground truth in {}".format(m.filelist))
    else:
        log("[TEST] Finish	frame-mAP@0.5IoU: {:.4f} over {} classes	({} keyframes, {} skipped)".format(
            res["mAP"], len(res["per_class"]), res["num_evaluated"], res["num_skipped"]))
    log("[TEST] written: {}, {}, {}".format(det, out, png))
    return res


def evaluate(cfg, model_name, weights=None, save_dir="./output", log_interval=10, skip_bad_lines=False,
             cache_dir=None, backend="auto", cpu_threads=None, exported=None):
    """``eval.py``: evaluate the TEST list; print a summary and write ``save_dir/NAME_eval.json``."""
    from ..models import task_of
    if task_of(cfg) == "detection":
        return evaluate_detection(cfg, model_name, weights, save_dir, cache_dir, backend, cpu_threads, exported)
    res = evaluate_model(cfg, model_name, weights, log_interval, skip_bad_lines, cache_dir, backend,
                         cpu_threads, exported)
    if res["num_evaluated"]:
        log("[TEST] Finish\tLoss: {:.6f},\ttop1_acc: {:.4f},\ttop5_acc: {:.4f}\t({} videos, {} skipped)".format(
            res["loss"], res["top1_acc"], res["top5_acc"], res["num_evaluated"], res["num_skipped"]))
    else:
        log("[TEST] Finish\tno video could be decoded ({} skipped)".format(res["num_skipped"]))
    for path in res["skipped"]:
        log("[TEST] skipped (cannot decode): {}".format(path))
    if res["mean_class_acc"] is not None:
        log("[TEST] mean class accuracy: {:.4f} over {} classes".format(res["mean_class_acc"], len(res["per_class"])))
    os.makedirs(save_dir, exist_ok=True)
    preds = os.path.join(save_dir, "{}_predictions.json".format(model_name))
    with open(preds, "w") as f:
        json.dump(res["predictions"], f, indent=1)
    out = os.path.join(save_dir, "{}_eval.json".format(model_name))
    with open(out, "w") as f:
        json.dump({k: v for k, v in res.items() if k != "predictions"}, f, indent=1)
    written = [out, preds]
    if res["confusion"] is not None:
        written.append(plot_confusion(res["confusion"], label_names(cfg),
                                      os.path.join(save_dir, "{}_confusion.png".format(model_name)), model_name))
    log("[TEST] written: {}".format(", ".join(written)))
    return res


def plot_confusion(confusion, names, path, title):
    """Row-normalised confusion matrix as a PNG; class names on the axes up to 50 classes (indices
    beyond), the counts in the cells up to 20 classes."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cm = np.asarray(confusion, float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    k = len(cm)
    size = min(max(6.0, 0.3 * k + 3), 30.0)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if k <= 50:
        ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(k), names, fontsize=8)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true", title="{} confusion (rows normalised)".format(title))
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
