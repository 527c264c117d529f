"""``ava``: the AVA detector on one keyframe clip with 8 boxes, per backend."""
import json
import os
import re
import subprocess
import sys
import time

from .common import BACKENDS, ROOT, real_clips_list, run_child  # noqa: F401


def child_ava(backend, repeat, threads):
    """Runs in a subprocess: the AVA detector vs its trunk on one backend (random weights)."""
    import tempfile
    import numpy as np
    from paddlevideo.cli import configure_process  # noqa: E402
    configure_process()   # threads before paddle is imported
    import paddle
    from paddlevideo import build_model, load_config
    from paddlevideo.runtime.backends import InferenceRunner, OnnxRunner, dygraph_runner, export_model, to_onnx
    from paddlevideo.tasks import task_for
    cfg = load_config(os.path.join(ROOT, "configs", "slowfast_ava.yaml"))
    m = cfg.mode("infer")
    model = build_model(cfg)
    model.eval()

    class Trunk(paddle.nn.Layer):
        """The detector up to the RoI head's input: ``[N, 2304, H/16, W/16]``."""

        def __init__(self, det):
            super().__init__()
            self.det = det

        def forward(self, x):
            slow, fast = self.det.pathways(x)
            return paddle.concat([slow.mean(axis=2), fast.mean(axis=2)], axis=1)

    rs = np.random.RandomState(0)
    x = rs.rand(1, m.seg_num, 3, 256, 341).astype("float32")
    xy = rs.uniform(0, 120, (8, 2))
    boxes = np.concatenate([xy, xy + rs.uniform(40, 130, (8, 2))], axis=1).astype("float32")
    inputs = {"full": (x, boxes, np.array([8], np.int32)), "trunk": (x,)}
    specs = {"full": task_for(cfg).input_specs(m), "trunk": task_for(cfg).input_specs(m)[:1]}
    out = {}
    for part, net in (("full", model), ("trunk", Trunk(model))):
        if backend == "dygraph":
            run = dygraph_runner(net)
        else:
            prefix = export_model(net, os.path.join(tempfile.mkdtemp(), "m"), specs[part])
            if backend.startswith("onnxruntime"):
                path = to_onnx(prefix, 16)
                if backend == "onnxruntime-int8":        # calibrated on jittered copies of the input (speed only)
                    from paddlevideo.runtime.quantize import quantize_int8
                    samples = [tuple(np.asarray(v) * (1 + 0.1 * k) if v.dtype == np.float32 and v.ndim == 5 else v
                                     for v in inputs[part]) for k in range(4)]
                    path = quantize_int8(path, path[:-5] + ".int8.onnx", samples)
                run = OnnxRunner(path, threads)
            else:
                run = InferenceRunner(prefix, threads)
        run(*inputs[part])
        times = []
        for _ in range(repeat):
            t = time.time()
            run(*inputs[part])
            times.append(time.time() - t)
        out[part] = float(np.median(times))
    return {"seconds_per_keyframe": round(out["full"], 4), "backbone_seconds": round(out["trunk"], 4),
            "head_over_backbone": round(out["full"] / out["trunk"] - 1.0, 4), "boxes": 8,
            "shape": [1, m.seg_num, 3, 256, 341]}


CHILDREN = {"ava": lambda backend, repeat, threads: child_ava(backend, int(repeat), int(threads))}


def run(a, results):
    """``ava.<backend>``: the AVA detector (SlowFast-R50 8x8 + RoI head) per keyframe, and its trunk alone."""
    out = results.setdefault("ava", {})
    for backend in ("dygraph", "paddle-inference", "onnxruntime", "onnxruntime-int8"):
        r = run_child(["ava", backend, a.repeat, a.threads])
        out[backend] = r
        print("ava detector / {:<17} {}".format(backend, r), flush=True)
    fp32, int8 = out["onnxruntime"].get("seconds_per_keyframe"), out["onnxruntime-int8"].get("seconds_per_keyframe")
    if fp32 and int8:
        out["onnxruntime-int8"]["over_fp32"] = round(int8 / fp32, 3)
