"""``models``: model-only seconds per clip and GFLOP/s per backend (TSN-R50, TSM-R50, StNet, SlowFast, I3D)."""
import json
import os
import re
import subprocess
import sys
import time

from .common import BACKENDS, ROOT, real_clips_list, run_child  # noqa: F401


# name: (config, overrides, GMAC per clip).  ResNet-50 is 4.11 GMAC per 224^2 image (x8); TSM adds
# only data movement; StNet-R50 at 25 x 256^2 super-images of 5 frames: 25 x (5.36 trunk + 0.62
# extra conv1 channels) + 2 x 20.1 temporal conv3d = 189 GMAC.  FLOPs = 2 x MAC.
MODELS = {
    "resnet50_8x224": ("configs/tsn.yaml", ["MODEL.name=TSN", "INFER.seg_num=8", "INFER.target_size=224"], 32.9),
    "tsm_r50_8x224": ("configs/tsm.yaml", ["INFER.target_size=224"], 32.9),
    "stnet_r50_25x5x256": ("configs/stnet.yaml", [], 189.0),
    # SlowFast-R50 4x16, one 32-frame 224^2 view: 36.1 GMAC (the SlowFast paper's count)
    "slowfast_r50_4x16_32x224": ("configs/slowfast.yaml", ["INFER.target_size=224"], 36.1),
    # I3D RGB on a 64-frame 224^2 clip: 108 GMAC (the count SlowFast's paper lists for it)
    "i3d_rgb_64x224": ("configs/i3d_rgb.yaml", [], 108.0),
}


def child_model(name, backend, repeat, threads):
    """Runs in a subprocess: time one model on one backend; a lower precision also reports its top-1
    agreement with fp32 and max |delta prob| on the real test clips."""
    import numpy as np
    from paddlevideo.cli import configure_process  # noqa: E402
    configure_process()   # threads before paddle is imported
    from paddlevideo import build_model, load_config
    from paddlevideo.data import VideoDataset, parse_list
    from paddlevideo.runtime.backends import (SHIFT_IMPL, InferenceRunner, OnnxRunner, dygraph_runner, export_model,
                                             input_shape, int8_model, to_onnx)
    from paddlevideo.metrics.classification import softmax
    config, over, gmac = MODELS[name]
    clips = real_clips_list()
    cfg = load_config(os.path.join(ROOT, config), over + ["INFER.calibration={}".format(clips),
                                                          "INFER.calibration_size=8"])
    m = cfg.mode("infer")
    shape = input_shape(m)
    model = build_model(cfg)
    model.eval()
    x = np.random.rand(*([1] + shape)).astype("float32")
    flops = 2 * gmac * 1e9
    t0 = time.time()
    reference = None
    if backend == "dygraph":
        run = dygraph_runner(model)
    else:
        import tempfile
        base = backend.replace("-int8", "").replace("-bf16", "")
        prefix = export_model(model, os.path.join(tempfile.mkdtemp(), "m"), shape, SHIFT_IMPL[base])
        if base == "onnxruntime":
            fp32 = to_onnx(prefix)
            run = OnnxRunner(int8_model(fp32, m) if backend.endswith("-int8") else fp32, threads)
            reference = OnnxRunner(fp32, threads) if backend.endswith("-int8") else None
        else:
            run = InferenceRunner(prefix, threads, bf16=backend.endswith("-bf16"))
            reference = InferenceRunner(prefix, threads) if backend.endswith("-bf16") else None
    setup = time.time() - t0
    extra = {}
    if reference is not None:
        items = parse_list(clips, m.num_classes, m.format)
        ds = VideoDataset(items, m)
        agree, diff = [], 0.0
        for i in range(len(items)):
            clip = ds.load(i)[0][None]
            p, q = softmax(run(clip)), softmax(reference(clip))
            agree.append(int(p.argmax() == q.argmax()))
            diff = max(diff, float(np.abs(p - q).max()))
        extra = {"top1_agreement": round(float(np.mean(agree)), 4), "max_abs_prob_diff": round(diff, 5),
                 "agreement_clips": len(items)}
    run(x)
    times = []
    for _ in range(repeat):
        t = time.time()
        run(x)
        times.append(time.time() - t)
    sec = float(np.median(times))
    return dict({"seconds_per_clip": round(sec, 4), "setup_seconds": round(setup, 2),
                 "gflops_per_clip": round(flops / 1e9, 1) if flops else None,
                 "gflop_per_s": round(flops / 1e9 / sec, 1) if flops else None, "shape": shape}, **extra)


CHILDREN = {"model": lambda name, backend, repeat, threads: child_model(name, backend, int(repeat), int(threads))}


def run(a, results):
    """``models.<name>.<backend>``: seconds per clip, GFLOP/s (and lower precisions' agreement with fp32)."""
    names = a.only.split(",") if a.only else list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise SystemExit("error: unknown model(s) {}; choose from {}".format(", ".join(unknown), ", ".join(MODELS)))
    out = results.setdefault("models", {})
    for name in names:
        for backend in a.backends.split(","):
            if a.quick and name.startswith(("stnet", "slowfast", "i3d")) and backend == "dygraph":
                continue
            r = run_child(["model", name, backend, a.repeat, a.threads])
            out.setdefault(name, {})[backend] = r
            print("{:<42} {}".format(name + " / " + backend, r), flush=True)
    for backend in BACKENDS[1:]:
        base = out.get("resnet50_8x224", {}).get(backend, {}).get("seconds_per_clip")
        tsm = out.get("tsm_r50_8x224", {}).get(backend, {}).get("seconds_per_clip")
        if base and tsm:
            results.setdefault("tsm_over_resnet50", {})[backend] = round(tsm / base, 3)
    for name, per in out.items():
        for low, full in (("onnxruntime-int8", "onnxruntime"), ("paddle-inference-bf16", "paddle-inference")):
            if per.get(low, {}).get("seconds_per_clip") and per.get(full, {}).get("seconds_per_clip"):
                per[low]["over_fp32"] = round(per[low]["seconds_per_clip"] / per[full]["seconds_per_clip"], 3)
