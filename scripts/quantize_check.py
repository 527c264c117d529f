"""Accuracy check of the lower precisions: int8 (ONNX Runtime QDQ) and bf16 (Paddle Inference oneDNN)
against fp32, on a labelled list and on the real test clips.

    python scripts/quantize_check.py [--config configs/demo.yaml --weights output/demo/TSM/TSM_final.pdparams
                                      --filelist <TEST.filelist> --calibration <VALID.filelist>] [--out F.json]

Defaults: the demo's trained TSM (run `bash run.sh demo` first) on the demo's test split, calibrated on
its validation split.  Reports per precision: top-1 accuracy, top-1 agreement with fp32 and max |delta
prob| over the list, max |delta prob| and agreement on the real clips of tests/data, seconds.
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from paddlevideo.cli import configure_process  # noqa: E402
configure_process()   # threads before paddle is imported
from paddlevideo.errors import UserError, run_cli  # noqa: E402


def check(config, weights, filelist=None, calibration=None, precisions=("int8", "bf16"), cache_dir=None):
    import numpy as np
    from paddlevideo import load_config
    from paddlevideo.data import VideoDataset, parse_list
    from paddlevideo.runtime.backends import make_runner
    from paddlevideo.metrics.classification import softmax
    from paddlevideo.apps.evaluate import evaluate_model
    if not os.path.isfile(weights):
        raise UserError("weights {} not found; train the demo first (bash run.sh demo) or pass --weights".format(weights))
    over = []
    if filelist:
        over.append("TEST.filelist={}".format(filelist))
    if calibration:
        over += ["TEST.calibration={}".format(calibration), "INFER.calibration={}".format(calibration)]
    clips_dir = os.path.join(ROOT, "tests", "data")
    clips = [os.path.join(clips_dir, n) for n in sorted(os.listdir(clips_dir)) if n.endswith((".mp4", ".avi"))]
    out = {"config": config, "weights": weights, "precisions": {}}
    probs = {}
    for precision in ("fp32",) + tuple(precisions):
        cfg = load_config(config, over + ["TEST.precision={}".format(precision), "INFER.precision={}".format(precision)])
        t0 = time.time()
        res = evaluate_model(cfg, cfg.MODEL.name, weights, cache_dir=cache_dir)
        preds = res["predictions"]
        top1 = {p["video"]: p["top_k"][0]["label"] for p in preds if "top_k" in p}
        score = {p["video"]: {t["label"]: t["score"] for t in p["top_k"]} for p in preds if "top_k" in p}
        runner, backend = make_runner(cfg, "infer", weights, cache_dir=cache_dir)
        m = cfg.mode("infer")
        ds = VideoDataset([(c, -1) for c in clips], m)
        probs[precision] = np.concatenate([softmax(runner(ds.load(i)[0][None])) for i in range(len(clips))])
        entry = {"backend": backend, "top1_acc": res["top1_acc"], "num_videos": res["num_evaluated"],
                 "seconds": round(time.time() - t0, 1)}
        if precision != "fp32":
            ref, ref_score = out["precisions"]["fp32"]["_top1"], out["precisions"]["fp32"]["_score"]
            entry["top1_agreement"] = float(np.mean([top1[v] == ref[v] for v in ref]))
            entry["max_abs_prob_diff"] = max(abs(score[v].get(k, 0.0) - s) for v in ref_score
                                             for k, s in ref_score[v].items() if k in score[v])
            entry["accuracy_change_points"] = round(100 * (res["top1_acc"] - out["precisions"]["fp32"]["top1_acc"]), 2)
            entry["real_clips"] = {"clips": len(clips),
                                   "top1_agreement": float(np.mean(probs[precision].argmax(1) == probs["fp32"].argmax(1))),
                                   "max_abs_prob_diff": float(np.abs(probs[precision] - probs["fp32"]).max())}
        else:
            entry.update({"_top1": top1, "_score": score})
        out["precisions"][precision] = entry
    out["precisions"]["fp32"].pop("_top1")
    out["precisions"]["fp32"].pop("_score")
    return out


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=os.path.join(ROOT, "configs", "demo.yaml"))
    p.add_argument("--weights", default=os.path.join(ROOT, "output", "demo", "TSM", "TSM_final.pdparams"))
    p.add_argument("--filelist", default=None, help="labelled list (default: TEST.filelist of the config)")
    p.add_argument("--calibration", default=None, help="int8 calibration list (default: VALID.filelist)")
    p.add_argument("--precisions", default="int8,bf16")
    p.add_argument("--cache_dir", default=None)
    p.add_argument("--out", default=None, help="write the result as JSON here")
    p.add_argument("--debug", action="store_true")
    a = p.parse_args(argv)
    res = check(a.config, a.weights, a.filelist, a.calibration, tuple(a.precisions.split(",")), a.cache_dir)
    print(json.dumps(res, indent=1))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    run_cli(main)
