"""Evaluation: loss, top-1, top-5, per-class and mean class accuracy over every video of a list
(no dropped partial batch), per-video predictions and a confusion-matrix plot."""
import json
import os
import time

import numpy as np
from tqdm import tqdm

from ..data import parse_list
from ..errors import UserError
from .common import combine_views, label_map_path, label_names, log, per_video, set_device


def video_records(videos, items, positions=None, average="prob", k=5, names=None, labelled=True):
    """One record per video from :func:`~.common.per_video` output, in list order within each batch:
    ``{"index": list position, "video": path, ["label", "label_name"], "top_k": [{"label": name, "class": id,
    "score": probability}], ["loss": -log p(label)]}``, or ``{"index", "video", "error"}`` for a video that
    could not be decoded.  ``positions[i]``: the list position of ``items[i]`` (a shard's sub-list)."""
    where = (lambda i: int(positions[i])) if positions is not None else int   # noqa: E731
    for idx, y, outputs, bad in videos:
        recs = [{"index": where(i), "video": items[int(i)][0], "error": "cannot decode this video"} for i in bad]
        if outputs is not None:
            logp = combine_views(outputs, average)
            top = np.argsort(-logp, axis=1)[:, :min(k, logp.shape[1])]
            for j, i in enumerate(idx):
                r = {"index": where(i), "video": items[int(i)][0]}
                if labelled:
                    r["label"] = int(y[j])
                    r["label_name"] = names[y[j]] if names else str(y[j])
                r["top_k"] = [{"label": names[c] if names else str(c), "class": int(c),
                               "score": float(np.exp(logp[j, c]))} for c in top[j]]
                if labelled:
                    r["loss"] = float(-logp[j, y[j]])
                recs.append(r)
        yield from sorted(recs, key=lambda r: r["index"])


class Metrics:
    """Loss, top-1/5, confusion, per-class and mean class accuracy, accumulated from video records in any
    number of parts (:meth:`merge`); the same numbers however the list was split."""

    def __init__(self, num_classes):
        self.num_classes = num_classes
        self.n = self.c1 = self.c5 = 0
        self.loss = 0.0
        self.skipped = []
        self.confusion = np.zeros((num_classes, num_classes), np.int64)

    def add(self, rec):
        if "error" in rec:
            self.skipped.append(rec["video"])
            return
        y, classes = rec["label"], [t["class"] for t in rec["top_k"]]
        self.n += 1
        self.loss += rec["loss"]
        self.c1 += classes[0] == y
        self.c5 += y in classes[:5]
        self.confusion[y, classes[0]] += 1

    @staticmethod
    def merge(parts):
        out = Metrics(parts[0].num_classes)
        for p in parts:
            out.n, out.c1, out.c5, out.loss = out.n + p.n, out.c1 + p.c1, out.c5 + p.c5, out.loss + p.loss
            out.skipped += p.skipped
            out.confusion += p.confusion
        return out

    def summary(self, num_videos):
        n = self.n
        rows = per_class(self.confusion if n else None)
        return {
            "loss": self.loss / n if n else None,
            "top1_acc": self.c1 / n if n else None,
            "top5_acc": self.c5 / n if n else None,
            "num_videos": num_videos,
            "num_evaluated": n,
            "num_skipped": len(self.skipped),
            "skipped": self.skipped,
            "confusion": self.confusion.tolist() if n else None,    # rows: true, cols: predicted
            "per_class": rows,
            "mean_class_acc": float(np.mean([r["top1"] for r in rows])) if rows else None,
        }


def run_eval(runner, loader, items, num_classes, desc="eval", batch_size=1, average="prob", clips_per_video=1):
    """Evaluate with ``runner`` (clips -> logits, see backends) on ``loader`` over ``items``; return the
    :class:`Metrics` (training's validation; eval.py streams the records instead, :func:`evaluate_model`).
    With test views every video's ``clips_per_video`` clips x crops are combined by
    :func:`~.common.combine_views` (``average`` prob|logit); ``batch_size`` views go through the model per call."""
    metrics = Metrics(num_classes)
    videos = per_video(tqdm(loader, desc=desc, leave=False, mininterval=2), runner, batch_size, clips_per_video)
    for rec in video_records(videos, items, average=average):
        metrics.add(rec)
    return metrics


def per_class(confusion):
    """``[{"index", "count", "top1"}]`` for every class with at least one evaluated video."""
    if confusion is None:
        return []
    cm = np.asarray(confusion)
    return [{"index": c, "count": int(cm[c].sum()), "top1": float(cm[c, c] / cm[c].sum())}
            for c in range(len(cm)) if cm[c].sum()]


def evaluate_model(cfg, model_name, weights=None, log_interval=0, skip_bad_lines=False, cache_dir=None,
                   backend="auto", cpu_threads=None, exported=None, save_dir=None, resume=False):
    """Evaluate ``model_name`` with ``weights`` on the TEST list; return the summary (on every rank of a
    sharded run, rank 0's alone has the metrics: the others return None).

    Each video's record (:func:`video_records`) is streamed to ``save_dir/NAME_predictions.json.parts/`` as it
    finishes; the metrics (:class:`Metrics`) and ``save_dir/NAME_predictions.json`` (every video in list order,
    failures included) are then built from those lines — so a run sharded over processes
    (``paddle.distributed.launch``: each rank a disjoint share) or resumed (``resume``: videos with a line are
    skipped) gives the numbers of one uninterrupted process.  ``save_dir`` None (a library call): the files go to a
    temporary folder that is removed, and the summary carries ``predictions`` (the list of records) instead."""
    import tempfile
    from . import parallel
    m = cfg.mode("test")
    set_device(m.use_gpu)
    names = label_names(cfg)                 # a wrong MODEL.label_list stops now, not after the evaluation
    items = parse_list(m.filelist, m.num_classes, m.format, need_label=True, skip_bad=skip_bad_lines,
                       root=m.data_root)
    world, rank = parallel.init()
    temporary = save_dir is None
    if temporary:                         # rank 0's temporary folder for every rank (their parts meet there)
        save_dir = parallel.gather(tempfile.mkdtemp(prefix="pv_eval_") if rank == 0 else None, world)[0]
    try:
        return _evaluate_into(cfg, model_name, weights, log_interval, cache_dir, backend, cpu_threads, exported,
                              save_dir, resume, items, names, m, world, rank, temporary)
    finally:
        if temporary and rank == 0:
            import shutil
            shutil.rmtree(save_dir, ignore_errors=True)


def _evaluate_into(cfg, model_name, weights, log_interval, cache_dir, backend, cpu_threads, exported, save_dir,
                   resume, items, names, m, world, rank, temporary):
    """:func:`evaluate_model`'s run over ``items`` into ``save_dir``."""
    from .records import Parts, open_runner, run_identity, run_shard, tap, write_array
    preds = os.path.join(save_dir, "{}_predictions.json".format(model_name))
    runner, used, w = open_runner(cfg, "test", weights, backend, cpu_threads, cache_dir, exported, world, rank)
    parts = Parts(preds + ".parts", world, rank, resume)
    todo = parts.start(items, run_identity(cfg, "test", w, exported, used))
    parts.report_resume("TEST", "evaluated", len(items))
    t0 = time.time()
    shard = Metrics(m.num_classes)

    def records(videos, sub, positions):
        return video_records(videos, sub, positions, m.average, 5, names)
    for it, rec in enumerate(run_shard(items, todo, m, runner, parts, records, "eval")):
        shard.add(rec)
        if log_interval and shard.n and it % log_interval == 0:
            log("[TEST] iter {}\tLoss: {:.6f},\ttop1_acc: {:.4f}, \ttop5_acc: {:.4f}".format(
                it, shard.loss / shard.n, shard.c1 / shard.n, shard.c5 / shard.n))
    if not parts.finish():
        return None
    metrics = Metrics(m.num_classes)
    write_array(preds, tap(parts.merged(items), metrics.add))
    res = metrics.summary(len(items))
    res.update({"model": model_name, "weights": w, "backend": used, "filelist": m.filelist,
                "seconds": round(time.time() - t0, 2), "processes": world, "predictions_file": preds,
                "views": {"num_clips": m.num_clips, "num_crops": m.num_crops, "average": m.average}})
    for r in res["per_class"]:
        r["name"] = names[r["index"]]
    if temporary:
        with open(preds) as f:
            res["predictions"] = json.load(f)
        del res["predictions_file"]
    return res


def evaluate_detection(cfg, model_name, weights=None, save_dir="./output", cache_dir=None, backend="auto",
                       cpu_threads=None, exported=None):
    """``eval.py`` with a detection config: score every TEST keyframe's proposals, write the AVA result CSV
    ``save_dir/NAME_detections.csv``, the official frame-mAP@0.5 with per-class AP in ``NAME_eval.json``
    (``mAP``, ``per_class``) and a per-class AP bar chart ``NAME_per_class_ap.png``.  Sharded
    (``paddle.distributed.launch``): rank r scores the r-th contiguous share of the keyframes into its own CSV;
    rank 0 joins them in rank (= list) order and scores the whole — the numbers of one process."""
    import shutil
    from . import parallel
    from .ava_eval import plot_per_class
    from .records import open_runner
    from .tasks import task_for
    task = task_for(cfg)
    m = cfg.mode("test")
    set_device(m.use_gpu)
    label_map = label_map_path(cfg)
    records = task.read(m)
    world, rank = parallel.init()
    runner, used, w = open_runner(cfg, "test", weights, backend, cpu_threads, cache_dir, exported, world, rank)
    os.makedirs(save_dir, exist_ok=True)
    det = os.path.join(save_dir, "{}_detections.csv".format(model_name))
    part = lambda r: os.path.join(det + ".parts", "part-{:05d}.csv".format(r))  # noqa: E731
    lo, hi = len(records) * rank // world, len(records) * (rank + 1) // world   # contiguous: rank order = list order
    t0 = time.time()
    skipped = task.score(runner, task.loader(task.dataset(records[lo:hi], m), m), records[lo:hi],
                         det if world == 1 else part(rank))
    skipped = [k for s in parallel.gather(skipped, world) for k in s]           # also: every part is written
    if rank != 0:
        return None
    if world > 1:
        with open(det, "wb") as out:
            for r in range(world):
                with open(part(r), "rb") as f:
                    shutil.copyfileobj(f, out)
        shutil.rmtree(det + ".parts")
    res = task.summary(records, skipped, m, det, label_map)
    res.update({"model": model_name, "weights": w, "backend": used, "gt": m.filelist, "detections": det,
                "exclude_file": m.exclude_file, "proposal_file": m.proposal_file, "label_map": label_map,
                "seconds": round(time.time() - t0, 2), "processes": world})
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
             cache_dir=None, backend="auto", cpu_threads=None, exported=None, resume=False):
    """``eval.py``: evaluate the TEST list; print a summary and write ``save_dir/NAME_eval.json``,
    ``NAME_predictions.json`` and the confusion PNG (rank 0 of a sharded run)."""
    from ..models import task_of
    if task_of(cfg) == "detection":
        if resume:
            raise UserError("--resume is for classification eval/predict/features; a detection evaluation "
                            "reruns from the start")
        return evaluate_detection(cfg, model_name, weights, save_dir, cache_dir, backend, cpu_threads, exported)
    res = evaluate_model(cfg, model_name, weights, log_interval, skip_bad_lines, cache_dir, backend,
                         cpu_threads, exported, save_dir, resume)
    if res is None:                      # not rank 0: rank 0 reports
        return None
    if res["num_evaluated"]:
        log("[TEST] Finish\tLoss: {:.6f},\ttop1_acc: {:.4f},\ttop5_acc: {:.4f}\t({} videos, {} skipped)".format(
            res["loss"], res["top1_acc"], res["top5_acc"], res["num_evaluated"], res["num_skipped"]))
    else:
        log("[TEST] Finish\tno video could be decoded ({} skipped)".format(res["num_skipped"]))
    for path in res["skipped"]:
        log("[TEST] skipped (cannot decode): {}".format(path))
    if res["mean_class_acc"] is not None:
        log("[TEST] mean class accuracy: {:.4f} over {} classes".format(res["mean_class_acc"], len(res["per_class"])))
    out = os.path.join(save_dir, "{}_eval.json".format(model_name))
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    written = [out, res["predictions_file"]]
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
