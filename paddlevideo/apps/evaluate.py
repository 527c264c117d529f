"""Evaluation: loss, top-1, top-5, per-class and mean class accuracy over every video of a list
(no dropped partial batch), per-video predictions and a confusion-matrix plot."""
import json
import os
import time

from ..config import label_map_path, label_names
from ..data import parse_list
from ..errors import UserError
from ..metrics.classification import Metrics, per_class, video_records  # noqa: F401  (per_class: an alias)
from ..metrics.plots import plot_confusion
from ..report import log
from ..runtime.backends import RunOptions
from ..runtime.batches import run_eval, set_device  # noqa: F401  (run_eval: an alias of engine.evaluate's)


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
    from ..runtime import parallel
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
        return _evaluate_into(cfg, model_name, weights, log_interval, RunOptions(backend, cpu_threads, cache_dir,
                                                                                 exported),
                              save_dir, resume, items, names, m, world, rank, temporary)
    finally:
        if temporary and rank == 0:
            import shutil
            shutil.rmtree(save_dir, ignore_errors=True)


def _evaluate_into(cfg, model_name, weights, log_interval, opts, save_dir, resume, items, names, m, world, rank,
                   temporary):
    """:func:`evaluate_model`'s run over ``items`` into ``save_dir``."""
    from ..runtime.records import Parts, open_runner, run_identity, run_shard, tap, write_array
    preds = os.path.join(save_dir, "{}_predictions.json".format(model_name))
    runner, used, w = open_runner(cfg, "test", weights, opts, world, rank)
    parts = Parts(preds + ".parts", world, rank, resume)
    todo = parts.start(items, run_identity(cfg, "test", w, opts.exported, used))
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
    from ..runtime import parallel
    from ..metrics.plots import plot_per_class
    from ..runtime.records import open_runner
    from ..tasks import task_for
    task = task_for(cfg)
    m = cfg.mode("test")
    set_device(m.use_gpu)
    label_map = label_map_path(cfg)
    records = task.read(m)
    world, rank = parallel.init()
    runner, used, w = open_runner(cfg, "test", weights, RunOptions(backend, cpu_threads, cache_dir, exported), world,
                                  rank)
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
    """``eval.py``: evaluate the TEST list by the model family's task (classification: metrics, predictions,
    confusion; detection: the AVA result CSV and frame-mAP), on rank 0 of a sharded run."""
    from ..tasks import task_for
    return task_for(cfg).evaluate_app(cfg, model_name, weights=weights, save_dir=save_dir,
                                      log_interval=log_interval, skip_bad_lines=skip_bad_lines, cache_dir=cache_dir,
                                      backend=backend, cpu_threads=cpu_threads, exported=exported, resume=resume)


def evaluate_classification(cfg, model_name, weights=None, save_dir="./output", log_interval=10,
                            skip_bad_lines=False, cache_dir=None, backend="auto", cpu_threads=None, exported=None,
                            resume=False):
    """Classification: print a summary and write ``save_dir/NAME_eval.json``, ``NAME_predictions.json`` and the
    confusion PNG (rank 0 of a sharded run)."""
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


