"""``memory``: peak RSS of predict/eval over 200 and 5,000 list lines (outputs stream to disk)."""
import json
import os
import re
import subprocess
import sys
import time

from .common import BACKENDS, ROOT, real_clips_list, run_child  # noqa: F401


def memory_runs(sizes=(200, 5000)):
    """``memory``: peak RSS of ``predict.py --output`` and ``eval.py`` (the small test TSM, ONNX Runtime) over lists
    of ``sizes`` lines of short clips (12 clips of 16 frames at 64x64 written here, repeated): outputs stream to
    disk, so the peak must not grow with the list (target: within 50 MB from 200 to 5,000 lines)."""
    import tempfile
    import numpy as np
    d = tempfile.mkdtemp(prefix="pv_memory_")
    code = ("import sys, os, numpy as np, cv2\n"
            "d = sys.argv[1]\n"
            "for k in range(12):\n"
            "    w = cv2.VideoWriter(os.path.join(d, 'c%02d.avi' % k), cv2.VideoWriter_fourcc(*'MJPG'), 25, (64, 64))\n"
            "    for t in range(16):\n"
            "        w.write(np.full((64, 64, 3), (k * 20 + t * 3) % 256, np.uint8))\n"
            "    w.release()\n"
            "import paddlevideo, paddle\n"
            "from paddlevideo import build_model, load_config\n"
            "paddle.seed(0)\n"
            "paddle.save(build_model(load_config(sys.argv[2], ['MODEL.num_classes=3', 'MODEL.seg_num=4'])).state_dict(),"
            " os.path.join(d, 'w.pdparams'))\n")
    small = os.path.join(ROOT, "configs", "tsm_small.yaml")
    subprocess.run([sys.executable, "-c", code, d, small], check=True, cwd=ROOT, capture_output=True)
    opts = ["--config", small, "-o", "MODEL.num_classes=3", "-o", "MODEL.seg_num=4", "--weights",
            os.path.join(d, "w.pdparams"), "--cache_dir", os.path.join(d, "cache")]
    for s_ in ("TEST", "INFER"):
        opts += ["-o", s_ + ".short_size=64", "-o", s_ + ".target_size=64", "-o", s_ + ".batch_size=8"]
    out = {}
    for n in (10,) + tuple(sizes):                       # 10: exports the model into the cache first
        lst = os.path.join(d, "list{}.txt".format(n))
        with open(lst, "w") as f:
            f.write("".join("{} {}\n".format(os.path.join(d, "c%02d.avi" % (i % 12)), i % 3) for i in range(n)))
        for script, extra in (("predict.py", ["--output", os.path.join(d, "p{}.json".format(n))]),
                              ("eval.py", ["--save_dir", os.path.join(d, "e{}".format(n))])):
            wrap = ("import resource, subprocess, sys, time\n"
                    "t = time.time()\n"
                    "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
                    "print('RESULT', p.returncode, round(time.time() - t, 1),"
                    " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
                    "sys.stderr.write(p.stderr[-2000:])\n")
            p = subprocess.run([sys.executable, "-c", wrap, sys.executable, os.path.join(ROOT, script), *opts,
                                "--filelist", lst, *extra], capture_output=True, text=True, cwd=ROOT)
            fields = p.stdout.split()
            if n == 10:
                continue
            if not fields or fields[0] != "RESULT" or fields[1] != "0":
                out.setdefault(script, {})[str(n)] = {"error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
                continue
            out.setdefault(script, {})[str(n)] = {"peak_rss_mb": round(float(fields[3]), 1),
                                                  "seconds": float(fields[2])}
    for script, per in out.items():
        a, b = per.get(str(sizes[0]), {}), per.get(str(sizes[-1]), {})
        if "peak_rss_mb" in a and "peak_rss_mb" in b:
            per["growth_mb"] = round(b["peak_rss_mb"] - a["peak_rss_mb"], 1)
    return out


CHILDREN = {}


def run(a, results):
    """``memory.<script>.<lines>``: peak RSS of predict.py and eval.py by list length."""
    results["memory"] = memory_runs((200, 1000) if a.quick else (200, 5000))
    print("memory (peak RSS by list length):", json.dumps(results["memory"]), flush=True)
