"""``reader``: the inference reader against the model and end to end; training transforms by workers."""
import json
import resource
import os
import re
import subprocess
import sys
import time

from .common import BACKENDS, ROOT, real_clips_list, run_child  # noqa: F401


def child_reader(workers, n_batches):
    from paddlevideo.cli import configure_process  # noqa: E402
    configure_process()   # threads before paddle is imported
    from paddlevideo import load_config
    from paddlevideo.data import VideoDataset, build_loader
    cfg = load_config(os.path.join(ROOT, "configs", "tsm.yaml"), ["TRAIN.num_reader_threads={}".format(workers)])
    m = cfg.mode("train")
    clips = [os.path.join(ROOT, "tests", "data", f) for f in sorted(os.listdir(os.path.join(ROOT, "tests", "data")))
             if f.endswith((".mp4", ".avi"))]
    items = [(c, 0) for c in clips] * 8
    loader = build_loader(VideoDataset(items, m), 2, shuffle=True, num_workers=workers)
    t0 = time.time()
    n = 0
    for k, batch in enumerate(loader):
        n += batch[1].shape[0]
        if k + 1 >= n_batches:
            break
    dt = time.time() - t0
    return {"clips_per_s": round(n / dt, 2), "clips": n}


def child_pipeline(backend, n_items, threads, repeat=3):
    """``reader.<backend>``: predict's path (:func:`paddlevideo.runtime.records.run_shard`: DataLoader workers ->
    per-video runner) for TSM-R50 8x224 on the real clips, ``n_items`` list lines.  Reader only (the same loader,
    no model), model only (the runner on already decoded clips) and end to end, each in clips/s: the median of
    ``repeat`` interleaved rounds — for the default reader (``decoder: auto``) and for ``decoder: decord`` (today's
    before the cheaper exact path), so that both are measured in the same run."""
    import tempfile
    import numpy as np
    from paddlevideo.cli import configure_process  # noqa: E402
    configure_process()   # threads before paddle is imported
    import paddle
    from paddlevideo import build_model, load_config
    from paddlevideo.data import parse_list
    from paddlevideo.runtime.backends import make_runner
    from paddlevideo.apps.evaluate import video_records
    from paddlevideo.runtime import records
    from paddlevideo.runtime.records import run_shard, shard_loader
    clips = real_clips_list()
    precision = "int8" if backend.endswith("-int8") else "fp32"
    cfg = load_config(os.path.join(ROOT, "configs", "tsm.yaml"), [
        "INFER.target_size=224", "INFER.precision=" + precision, "INFER.calibration=" + clips,
        "INFER.calibration_size=8"])
    modes = {}
    for dec in ("auto", "decord"):
        modes[dec] = cfg.mode("infer")
        modes[dec]["decoder"] = dec
    m = modes["auto"]
    d = tempfile.mkdtemp()
    w = os.path.join(d, "tsm.pdparams")
    paddle.seed(0)
    paddle.save(build_model(cfg).state_dict(), w)
    runner, used = make_runner(cfg, "infer", w, "onnxruntime", threads, d, spin=False)   # as eval/predict run it
    items = (parse_list(clips, m.num_classes, m.format, need_label=False) * n_items)[:n_items]
    decoded = []

    cpu = {"reader": [], "reader_decord": [], "model": []}   # CPU s per clip (all threads; workers once reaped)

    def cpu_now():
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def reader(dec):
        t0, c0 = time.time(), cpu_now()
        loader = shard_loader(items, modes[dec])
        for batch in loader:
            if len(decoded) < 4:
                decoded.append(batch[0].numpy())
        del loader
        import gc
        gc.collect()                         # the workers exit and are reaped: their CPU time is counted
        time.sleep(0.5)
        dt = time.time() - t0
        cpu["reader" if dec == "auto" else "reader_decord"].append((cpu_now() - c0) / len(items))
        return len(items) / dt

    def model():
        t0, c0 = time.time(), cpu_now()
        for k in range(len(items)):
            runner(decoded[k % len(decoded)])
        cpu["model"].append((cpu_now() - c0) / len(items))
        return len(items) / (time.time() - t0)

    def end_to_end(dec, run=runner):
        t0 = time.time()
        n = sum(1 for _ in run_shard(items, list(range(len(items))), modes[dec], run, None,
                                     lambda v, sub, pos: video_records(v, sub, pos, labelled=False), "bench"))
        return n / (time.time() - t0)

    def end_to_end_plain():                  # the earlier set-up: workers at normal priority, spinning threads
        nice, records.READER_NICE = records.READER_NICE, 0
        try:
            return end_to_end("decord", spinning)
        finally:
            records.READER_NICE = nice
    spinning = make_runner(cfg, "infer", w, "onnxruntime", threads, d)[0]
    rates = {"reader": [], "reader_decord": [], "model": [], "e2e": [], "e2e_decord": [], "plain": []}
    for _ in range(repeat):                  # interleaved, so that a slow spell of the VM hits all of them
        rates["reader"].append(reader("auto"))
        rates["reader_decord"].append(reader("decord"))
        if len(rates["model"]) == 0:
            runner(decoded[0])               # warm-up
        rates["model"].append(model())
        rates["e2e"].append(end_to_end("auto"))
        rates["e2e_decord"].append(end_to_end("decord"))
        rates["plain"].append(end_to_end_plain())
    med = {k: float(np.median(v)) for k, v in rates.items()}
    reader_rate, model_rate, e2e = med["reader"], med["model"], med["e2e"]
    # the cores do both jobs: end to end cannot beat cores / (reader + model CPU seconds per clip), nor the model
    cpu_r, cpu_rd, cpu_m = (float(np.median(cpu[k])) for k in ("reader", "reader_decord", "model"))
    cores = os.cpu_count() or 1
    bound = min(model_rate, cores / (cpu_r + cpu_m))
    bound_d = min(model_rate, cores / (cpu_rd + cpu_m))
    return {"backend": used, "clips": len(items), "repeats": repeat,
            "loader_workers": min(m.num_reader_threads, cores),
            "reader_clips_per_s": round(reader_rate, 2), "reader_clips_per_s_decord": round(med["reader_decord"], 2),
            "model_clips_per_s": round(model_rate, 2),
            "end_to_end_clips_per_s": round(e2e, 2), "end_to_end_clips_per_s_decord": round(med["e2e_decord"], 2),
            "end_to_end_over_decord": round(e2e / med["e2e_decord"], 3),
            "end_to_end_over_slower": round(e2e / min(reader_rate, model_rate), 3),
            "plain_end_to_end_clips_per_s": round(med["plain"], 2),
            "reader_cpu_s_per_clip": round(cpu_r, 4), "reader_cpu_s_per_clip_decord": round(cpu_rd, 4),
            "reader_cpu_over_decord": round(cpu_r / cpu_rd, 3), "model_cpu_s_per_clip": round(cpu_m, 4),
            "bound_clips_per_s": round(bound, 2), "bound_clips_per_s_decord": round(bound_d, 2),
            "cpu_bound_share": round(e2e / (cores / (cpu_r + cpu_m)), 3),
            "cpu_bound_share_decord": round(med["e2e_decord"] / (cores / (cpu_rd + cpu_m)), 3)}


CHILDREN = {"reader": lambda workers, n: child_reader(int(workers), int(n)),
            "pipeline": lambda backend, n, threads, repeat: child_pipeline(backend, int(n), int(threads), int(repeat))}


def run(a, results):
    """``reader.<backend>``: reader / model / end to end clips/s of predict's path; ``reader.train_transforms``."""
    out = results.setdefault("reader", {})
    for backend in ("onnxruntime", "onnxruntime-int8"):
        r = run_child(["pipeline", backend, 20 if a.quick else 40, a.threads, max(a.repeat, 3)])
        out[backend] = r
        print("reader / model / end to end, {}: {}".format(backend, r), flush=True)
    for workers in ((0, 1) if a.quick else (0, 1, 2)):
        r = run_child(["reader", workers, 10])
        out.setdefault("train_transforms", {})["{} workers".format(workers)] = r
        print("reader (training transforms) {} workers: {}".format(workers, r), flush=True)
