"""``ava_eval``: the AVA scorer on a synthetic 5 M-row result file, capped (official) and not."""
import json
import os
import re
import subprocess
import sys
import time

from .common import BACKENDS, ROOT, real_clips_list, run_child  # noqa: F401


AVA_ROWS_PER_KEY = 240        # 4 persons x 60 classes: one row per box per class


def write_ava_eval_files(d, rows):
    """A synthetic GT CSV (4 persons per keyframe, 1-2 actions each), its label map (the shipped 60 classes) and a
    result CSV of ``rows`` rows (every person x every class, random scores), written streaming; returns paths."""
    import random
    rng = random.Random(0)
    sys.path.insert(0, ROOT)
    from paddlevideo.data.ava import read_label_map
    label_map = os.path.join(ROOT, "data", "dataset", "ava_action_list_v2.1.pbtxt")
    ids = sorted(read_label_map(label_map)[0])
    keys = rows // AVA_ROWS_PER_KEY
    gt, det = os.path.join(d, "gt.csv"), os.path.join(d, "det.csv")
    with open(gt, "w") as g, open(det, "w") as f:
        for k in range(keys):
            video, ts = "v{:03d}".format(k // 900), 902 + k % 900
            for p in range(4):
                x = 0.05 + 0.22 * p
                box = "{:.3f},{:.3f},{:.3f},{:.3f}".format(x, 0.1, x + 0.2, 0.9)
                for a in rng.sample(ids, rng.randint(1, 2)):
                    g.write("{},{},{},{},{}\n".format(video, ts, box, a, p))
                f.write("".join("{},{},{},{},{:.4f}\n".format(video, ts, box, a, rng.random()) for a in ids))
    return gt, det, label_map, keys * AVA_ROWS_PER_KEY


def child_ava_eval(gt, det, label_map, capacity):
    from paddlevideo.metrics.ava import evaluate_files
    t0 = time.time()
    res = evaluate_files(gt, det, label_map, capacity=int(capacity))
    return {"seconds": round(time.time() - t0, 2), "mAP": round(res["mAP"], 4), "keyframes": res["num_gt_keyframes"]}


CHILDREN = {"ava_eval": child_ava_eval}


def run(a, results):
    """``ava_eval.<capacity_50|no_cap>``: rows, keyframes, seconds, peak RSS of the scorer."""
    import tempfile
    gt, det, label_map, rows = write_ava_eval_files(tempfile.mkdtemp(), 50000 if a.quick else 5000000)
    for name, capacity in (("capacity_50", 50), ("no_cap", 0)):
        r = run_child(["ava_eval", gt, det, label_map, capacity])
        r["rows"] = rows
        results.setdefault("ava_eval", {})[name] = r
        print("ava_eval {} ({} rows): {}".format(name, rows, r), flush=True)
