"""``predict``: end-to-end predict.py on a real clip (TSM-R50, random weights)."""
import json
import os
import re
import subprocess
import sys
import time

from .common import BACKENDS, ROOT, real_clips_list, run_child  # noqa: F401


def predict_e2e(threads):
    """predict.py on a real clip with the TSM-R50 config (random weights): wall time and the
    model part from its log."""
    import tempfile
    from paddlevideo.cli import configure_process  # noqa: E402
    configure_process()   # threads before paddle is imported
    import paddle
    from paddlevideo import build_model, load_config
    d = tempfile.mkdtemp()
    w = os.path.join(d, "tsm.pdparams")
    paddle.save(build_model(load_config(os.path.join(ROOT, "configs", "tsm.yaml"))).state_dict(), w)
    out = {}
    for label in ("first run (exports, cold cache)", "second run (cached export)"):
        t0 = time.time()
        p = subprocess.run([sys.executable, os.path.join(ROOT, "predict.py"), "--weights", w, "--cache_dir", d,
                            "--video_path", os.path.join(ROOT, "tests", "data", "arm_wrestling.mp4"),
                            "--cpu_threads", str(threads), "-o", "INFER.target_size=224"],
                           capture_output=True, text=True, cwd=ROOT)
        out[label] = {"seconds": round(time.time() - t0, 2), "ok": p.returncode == 0}
    return out


CHILDREN = {}


def run(a, results):
    """``predict_e2e_tsm_r50``: predict.py wall time, cold and with the export cached."""
    results["predict_e2e_tsm_r50"] = predict_e2e(a.threads)
