"""Prediction: top-k class names with probabilities for each video of a file or list, or (``features``)
the pooled pre-classifier feature of each video as ``.npy`` files with an index JSON."""
import os

import numpy as np

from ..data import parse_list
from ..data.convert import unique_names
from ..errors import UserError
from ..config import label_names
from ..report import log
from ..runtime.batches import set_device
from ..metrics.classification import video_records
from ..runtime.backends import RunOptions
from ..runtime.records import Parts, open_runner, run_identity, run_shard, save_npy, tap, write_array


def _items(m, video_path, filelist, skip_bad_lines):
    if video_path:
        if not os.path.isfile(video_path):
            raise UserError("--video_path {} does not exist".format(video_path))
        return [(os.path.abspath(video_path), -1)]
    return parse_list(filelist or m.filelist, m.num_classes, m.format, need_label=False,
                      skip_bad=skip_bad_lines, root=m.data_root)


def predict(cfg, video_path=None, filelist=None, weights=None, output=None, topk=None, skip_bad_lines=False,
            cache_dir=None, backend="auto", cpu_threads=None, exported=None, features=None, resume=False,
            collect=True):
    """``predict.py``: print one block per video; return ``(results, failed paths)``.

    results (when ``collect``): ``[{"index", "video", "top_k": [{"label": name, "class": id, "score": p}, ...]}]``,
    and ``{"index", "video", "error": reason}`` for a video that could not be decoded.  With ``output`` each
    video's line is streamed to ``output.parts/`` as it finishes and ``output`` (a JSON array, or JSON lines for
    ``*.jsonl``; every video in list order) is built from them at the end (:mod:`.records`): a run sharded over
    processes writes what one process would, and ``resume`` finishes a killed run.  With ``features`` (a folder)
    the pooled feature of every video is written (:func:`extract_features`); with ``output`` too, the
    predictions are also made and written there (both, never one silently).  ``failed``: on rank 0 of a sharded
    run every failed video of the list, on the others their own.
    """
    from ..runtime import parallel
    m = cfg.mode("infer")
    set_device(m.use_gpu)
    items = _items(m, video_path, filelist, skip_bad_lines)
    world, rank = parallel.init()
    if (world > 1 or resume) and not (output or features):
        raise UserError("{} needs --output FILE and/or --features DIR: {}".format(
            "--resume" if resume else "a sharded prediction (--nproc)",
            "the finished videos are read from them" if resume else "the ranks' results meet there"))
    failed = []
    if features:
        _, failed = extract_features(cfg, items, features, weights, cache_dir, backend, cpu_threads, resume,
                                     world, rank)
        if not output:
            return [], failed
    names = label_names(cfg)
    k = min(topk or m.topk, m.num_classes)
    runner, used, w = open_runner(cfg, "infer", weights, RunOptions(backend, cpu_threads, cache_dir, exported), world,
                                  rank)
    parts = Parts(output + ".parts", world, rank, resume) if output else None
    todo = parts.start(items, run_identity(cfg, "infer", w, exported, used, topk=k)) if parts \
        else list(range(len(items)))
    if parts:
        parts.report_resume("INFER", "predicted", len(items))

    def records(videos, sub, positions):
        return video_records(videos, sub, positions, m.average, k, names, labelled=False)
    results, failed = [], []
    for rec in run_shard(items, todo, m, runner, parts, records, "predict"):
        if collect:
            results.append(rec)
        if "error" in rec:
            failed.append(rec["video"])
            log("[INFER] video: {}\n  error: cannot decode this video (skipped)".format(rec["video"]))
            continue
        lines = ["[INFER] video: {}".format(rec["video"])]
        lines += ["  class: {}, probability: {:.6f}".format(t["label"], t["score"]) for t in rec["top_k"]]
        log("\n".join(lines))
    if parts is None or not parts.finish():
        return results, failed
    failed = []

    def note_failed(rec):
        if "error" in rec:
            failed.append(rec["video"])
    write_array(output, tap(parts.merged(items), note_failed))
    log("[INFER] results written to {}".format(output))
    if failed:
        log("[INFER] {} of {} videos failed".format(len(failed), len(items)))
    return results, failed


def predict_cli(cfg, args):
    """``predict.py`` for a classification model: the timeline of one long video (``--window``), or top-k /
    features of a video or a list; returns the exit code (1 when videos failed)."""
    if not args.video_path and not (args.filelist or cfg.INFER.get("filelist")):
        raise UserError("nothing to predict: pass --video_path FILE or --filelist LIST")
    if args.window is not None or args.render or args.stride is not None:
        if not args.video_path or args.window is None:
            raise UserError("a timeline needs --video_path FILE and --window SEC (--stride/--render go with them)")
        from .timeline import timeline
        timeline(cfg, args.video_path, args.window, args.stride, args.threshold, args.output, args.render,
                 args.weights, args.infer_topk, args.cache_dir, args.backend, args.cpu_threads, args.exported)
        return 0
    from ..runtime.parallel import exit_status
    _, failed = predict(cfg, video_path=args.video_path, filelist=args.filelist, weights=args.weights,
                        output=args.output, topk=args.infer_topk, skip_bad_lines=args.skip_bad_lines,
                        cache_dir=args.cache_dir, backend=args.backend, cpu_threads=args.cpu_threads,
                        exported=args.exported, features=args.features, resume=args.resume, collect=False)
    return exit_status(1 if failed else 0)       # rank 0 of a launch knows the whole list's failures


def extract_features(cfg, items, out_dir, weights=None, cache_dir=None, backend="auto", cpu_threads=None,
                     resume=False, world=1, rank=0):
    """Write ``out_dir/<video name>.npy`` (float32 ``[D]``: the model's pooled pre-classifier feature — 2048
    for TSM/TSN-R50, 1024 for StNet-R50 and I3D, 2048 for two-stream I3D (RGB then flow), 2304 for
    SlowFast-R50 — averaged over the test views; names from :func:`~paddlevideo.data.convert.unique_names`, so
    equal file names in different folders never collide) and ``out_dir/features.json``: ``{"model", "weights",
    "backend", "dim", "views", "failed": [{"index", "video", "error"}], "videos": [{"index", "video", "label",
    "file"}]}``.  Each ``.npy`` is written atomically and recorded in ``out_dir/features.parts/`` as it is done;
    ``resume`` skips the videos whose line and ``.npy`` are there.  Returns ``([], failed paths)``."""
    m = cfg.mode("infer")
    files = unique_names([p for p, _ in items])
    parts = Parts(os.path.join(out_dir, "features.parts"), world, rank, resume,
                  complete=lambda r: "error" in r or os.path.isfile(os.path.join(out_dir, r.get("file", ""))))
    runner, used, w = open_runner(cfg, "infer", weights, RunOptions(backend, cpu_threads, cache_dir), world, rank,
                                  output="features")
    todo = parts.start(items, run_identity(cfg, "infer", w, None, used, output="features"))
    parts.report_resume("FEATURES", "written", len(items))

    def records(videos, sub, positions):
        for idx, _, outputs, bad in videos:
            recs = [{"index": positions[i], "video": sub[i][0], "error": "cannot decode this video"} for i in bad]
            if outputs is not None:
                for f, i in zip(outputs.mean(axis=1).astype(np.float32), idx):   # the mean over the video's views
                    name = files[positions[i]] + ".npy"
                    save_npy(os.path.join(out_dir, name), f)
                    recs.append({"index": positions[i], "video": sub[i][0], "label": int(sub[i][1]), "file": name,
                                 "dim": int(f.shape[0])})
            yield from sorted(recs, key=lambda r: r["index"])
    os.makedirs(out_dir, exist_ok=True)
    failed = []
    for rec in run_shard(items, todo, m, runner, parts, records, "features"):
        if "error" in rec:
            failed.append(rec["video"])
            log("[FEATURES] video: {}\n  error: cannot decode this video (skipped)".format(rec["video"]))
        else:
            log("[FEATURES] video: {} -> {} [{}]".format(rec["video"], rec["file"], rec["dim"]))
    if not parts.finish():
        return [], failed
    failed, dim, n = [], None, 0
    for r in parts.merged(items):
        if "error" in r:
            failed.append(r)
        else:
            dim, n = r["dim"], n + 1
    head = {"model": cfg.MODEL.name, "weights": w, "backend": used, "dim": dim,
            "views": {"num_clips": m.num_clips, "num_crops": m.num_crops}, "failed": failed}
    write_array(os.path.join(out_dir, "features.json"),
                ({k: v for k, v in r.items() if k != "dim"} for r in parts.merged(items) if "error" not in r),
                head=head, key="videos")
    log("[FEATURES] {} features written to {} (index: features.json){}".format(
        n, out_dir, "; {} videos failed".format(len(failed)) if failed else ""))
    return [], [f["video"] for f in failed]
