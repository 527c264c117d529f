"""``online``: streaming TSM-R50 and TSM-MobileNetV2 at 224 px per backend."""
import json
import os
import re
import subprocess
import sys
import time

from .common import BACKENDS, ROOT, real_clips_list, run_child  # noqa: F401


ONLINE_MODELS = {"tsm_r50_224": ("configs/tsm.yaml", ["MODEL.shift_mode=online", "INFER.target_size=224"]),
                 "tsm_mobilenetv2_224": ("configs/pptsm_mv2_online.yaml", [])}


def child_online(name, backend, repeat, threads):
    """Runs in a subprocess: a streaming step vs the 8-frame clip of the same online model on one backend (random
    weights); for ONNX Runtime also end to end from a real file (decoding in the reader thread included)."""
    import tempfile
    import numpy as np
    from paddlevideo.cli import configure_process  # noqa: E402
    configure_process()   # threads before paddle is imported
    import paddle
    from paddlevideo import build_model, load_config
    from paddlevideo.runtime.backends import (SHIFT_IMPL, InferenceRunner, OnnxRunner, dygraph_runner, export_model,
                                             to_onnx)
    from paddlevideo.apps.online import OnlineRecognizer
    from paddlevideo.apps.stream import FrameReader
    config, over = ONLINE_MODELS[name]
    cfg = load_config(os.path.join(ROOT, config), over + ["MODEL.weights=null", "MODEL.label_list=null"])
    d = tempfile.mkdtemp()
    w = os.path.join(d, "w.pdparams")
    model = build_model(cfg)
    model.eval()
    paddle.save(model.state_dict(), w)

    def median(fn):
        fn()
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return float(np.median(times))
    rec = OnlineRecognizer(cfg, w, backend, threads, d)
    frame = (np.random.RandomState(0).rand(224, 224, 3) * 255).astype("uint8")
    x1 = rec.transform(frame)
    step = median(lambda: rec._run(x1, *rec.caches))
    clip = np.random.RandomState(1).rand(1, 8, 3, 224, 224).astype("float32")
    if backend == "dygraph":
        run = dygraph_runner(model)
    else:
        prefix = export_model(model, os.path.join(d, "clip"), [8, 3, 224, 224], SHIFT_IMPL[backend])
        run = OnnxRunner(to_onnx(prefix), threads) if backend == "onnxruntime" else InferenceRunner(prefix, threads)
    out = {"seconds_per_step": round(step, 5), "seconds_per_clip": round(median(lambda: run(clip)), 5)}
    out["step_over_clip"] = round(out["seconds_per_step"] / out["seconds_per_clip"], 4)
    if backend == "onnxruntime":
        reader = FrameReader(os.path.join(ROOT, "tests", "data", "arm_wrestling.mp4"))
        reader.start()
        n, t0 = 0, time.perf_counter()
        while True:
            item = reader.get()
            if item is None:
                break
            rec.step(item[2])
            n += 1
        out["end_to_end_steps_per_s"] = round(n / (time.perf_counter() - t0), 1)
        out["end_to_end_frames"] = n
    return out


# training models: (config, overrides, batch per process)


CHILDREN = {"online": lambda name, backend, repeat, threads: child_online(name, backend, int(repeat), int(threads))}


def run(a, results):
    """``online.<model>.<backend>``: seconds per streaming step vs per 8-frame clip; steps/s from a real file."""
    out = results.setdefault("online", {})
    for name in ONLINE_MODELS:
        for backend in ("onnxruntime", "paddle-inference", "dygraph"):
            r = run_child(["online", name, backend, max(a.repeat, 5), a.threads])
            out.setdefault(name, {})[backend] = r
            print("online {:<20} {:<17} {}".format(name, backend, r), flush=True)
    r50 = out.get("tsm_r50_224", {})
    for backend, r in out.get("tsm_mobilenetv2_224", {}).items():
        if r.get("seconds_per_step") and r50.get(backend, {}).get("seconds_per_clip"):
            r["step_over_r50_clip"] = round(r["seconds_per_step"] / r50[backend]["seconds_per_clip"], 4)
