"""The detection demo (``bash run.sh demo --detection``): a small SlowFast detector learns per-person actions.

Generates (once, cached) synthetic AVA-format data (data/dataset/synthetic/make_synthetic_ava.py: 2–4
actors per clip, 8 actions in time-reversed pairs, multi-label actors, distractor proposals), trains
``configs/demo_detection.yaml`` from scratch and the same config with a single input frame
(``MODEL.seg_num=1``, the one-frame baseline) at the same time in two processes, scores the held-out
test split with the official frame-mAP protocol (eval.py's path), renders one held-out clip with
predict.py's detection path and writes ``--out``/results.json:
``{"slowfast": {"mAP", "per_class", "weights"}, "one_frame": {...}, "seconds", ...}``.

    python scripts/demo_detection.py                          # what `bash run.sh demo --detection` runs
    python scripts/demo_detection.py --train 12 --test 4 -o TRAIN.epoch=1   # reduced (tests)
"""
import argparse
import json
import os
import pickle
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "data", "dataset", "synthetic"))

import make_synthetic_ava  # noqa: E402
from paddlevideo.errors import UserError  # noqa: E402  (no paddle import: workers set their threads first)

CONFIG = os.path.join(ROOT, "configs", "demo_detection.yaml")
MODELS = {"slowfast": [], "one_frame": ["MODEL.seg_num=1"]}


def dataset(out, n_train, n_val, n_test, seed, walking=0.0):
    """Generate unless the same data is there; return ``make_synthetic_ava.make``'s paths.  ``walking``: the fraction
    of clips whose actors walk (the live demo's training data)."""
    want = {"seed": seed, "train": n_train, "val": n_val, "test": n_test}
    if walking:
        want["walking"] = walking
    meta = os.path.join(out, "meta.json")
    if os.path.exists(meta):
        with open(meta) as f:
            have = json.load(f)
        if all(have.get(k) == v for k, v in want.items()):
            print("[demo] using the synthetic AVA data already in {}".format(out), flush=True)
            return paths_of(out)
    t0 = time.time()
    make_synthetic_ava.make(out, n_train, n_val, n_test, seed, walking)
    print("[demo] generated {} clips in {:.0f}s into {}".format(n_train + n_val + n_test, time.time() - t0, out),
          flush=True)
    return paths_of(out)


def paths_of(out):
    return {s: tuple(os.path.join(out, s + e) for e in (".csv", "_proposals.pkl", "_excluded.csv"))
            for s in ("train", "val", "test")}


def overrides(data):
    o = ["MODEL.label_map=" + os.path.join(data, "label_map.pbtxt")]
    for mode, split in (("TRAIN", "train"), ("VALID", "val"), ("TEST", "test")):
        gt, props, excl = paths_of(data)[split]
        o += ["{}.filelist={}".format(mode, gt), "{}.proposal_file={}".format(mode, props),
              "{}.exclude_file={}".format(mode, excl), "{}.data_root={}".format(mode, os.path.join(data, "frames"))]
    return o


def worker(name, out, over):
    """Train one model and score the test split; write ``out/name/result.json``."""
    from paddlevideo.cli import configure_process  # noqa: E402
    configure_process()   # threads before paddle is imported
    from paddlevideo import load_config
    from paddlevideo.apps.evaluate import evaluate
    from paddlevideo.training.loop import train
    cfg = load_config(CONFIG, over + MODELS[name])
    save = os.path.join(out, name)
    t0 = time.time()
    history = train(cfg, "SLOWFAST_AVA", save_dir=save, pretrain="none", valid_interval=0, log_interval=0,
                    fix_random_seed=True)
    seconds = time.time() - t0
    weights = os.path.join(save, "SLOWFAST_AVA_final.pdparams")
    res = evaluate(cfg, "SLOWFAST_AVA", weights, save_dir=save, backend="dygraph")
    with open(os.path.join(save, "result.json"), "w") as f:
        json.dump({"mAP": res["mAP"], "per_class": res["per_class"], "weights": weights,
                   "train_seconds": round(seconds, 1), "train_loss_per_epoch": [h["loss"] for h in history]}, f)
    print("[demo] {} test frame-mAP {:.3f} (trained in {:.0f}s)".format(name, res["mAP"], seconds), flush=True)


def run_workers(out, over):
    env = dict(os.environ, OMP_NUM_THREADS="1", PADDLEVIDEO_THREADS="1")
    procs = []
    for name in MODELS:
        os.makedirs(os.path.join(out, name), exist_ok=True)
        log = open(os.path.join(out, name, "console.log"), "w")
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", name, "--out", out, "--"] + over,
                             stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=ROOT)

        def pump(p=p, log=log, name=name):
            for line in p.stdout:
                log.write(line)
                log.flush()
                if line.startswith(("[TRAIN] Epoch", "[demo]", "[TEST] Finish")) and "iter" not in line.split("\t")[0]:
                    print("{} | {}".format(name, line.rstrip()), flush=True)
        t = threading.Thread(target=pump, daemon=True)
        t.start()
        procs.append((name, p, t, log))
    results = {}
    for name, p, t, log in procs:
        p.wait()
        t.join()
        log.close()
        if p.returncode != 0:
            raise SystemExit("[demo] training {} failed (exit {}); see {}".format(
                name, p.returncode, os.path.join(out, name, "console.log")))
        with open(os.path.join(out, name, "result.json")) as f:
            results[name] = json.load(f)
    return results


def render_clip(data, out, over, weights):
    """Encode the first test video's frames as an mp4 (30 fps) and run predict.py's detection path on it with
    the test proposals (keys re-based to seconds of the mp4); return ``(json path, mp4 path)``."""
    import cv2
    from paddlevideo import load_config
    from paddlevideo.apps.detect import detect_video
    frames = os.path.join(data, "frames")
    video = sorted(v for v in os.listdir(frames) if v.startswith("test_"))[0]
    names = sorted(os.listdir(os.path.join(frames, video)))
    clip = os.path.join(out, video + ".mp4")
    first = cv2.imread(os.path.join(frames, video, names[0]))
    w = cv2.VideoWriter(clip, cv2.VideoWriter_fourcc(*"mp4v"), 30, (first.shape[1], first.shape[0]))
    for n in names:
        w.write(cv2.imread(os.path.join(frames, video, n)))
    w.release()
    with open(paths_of(data)["test"][1], "rb") as f:
        props = pickle.load(f)
    boxes = {"{},{:04d}".format(video, int(k.split(",")[1]) - 900): v.tolist() for k, v in props.items()
             if k.startswith(video + ",")}
    box_file = os.path.join(out, video + "_proposals.json")
    with open(box_file, "w") as f:
        json.dump(boxes, f)
    cfg = load_config(CONFIG, over)
    res_path, mp4 = os.path.join(out, "rendered.json"), os.path.join(out, "rendered.mp4")
    detect_video(cfg, clip, 1.0, box_file, threshold=0.5, output=res_path, render=mp4, weights=weights,
                 backend="dygraph")
    cap = cv2.VideoCapture(mp4)                    # the keyframe at 3 s as a PNG for the README
    cap.set(cv2.CAP_PROP_POS_FRAMES, 90)
    ok, img = cap.read()
    cap.release()
    png = os.path.join(out, "rendered_frame.png")
    if ok:
        cv2.imwrite(png, img)
    return res_path, mp4, png


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "output", "demo_detection"))
    p.add_argument("--data", default=os.path.join(ROOT, "data", "dataset", "synthetic", "ava"))
    p.add_argument("--train", type=int, default=80, help="training videos (3 keyframes each)")
    p.add_argument("--val", type=int, default=10)
    p.add_argument("--test", type=int, default=30)
    p.add_argument("--seed", type=int, default=0, help="data generator seed")
    p.add_argument("-o", "--override", action="append", default=[], metavar="SECTION.key=value",
                   help="change a setting of configs/demo_detection.yaml for both models")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        return worker(a.worker, a.out, a.overrides)
    t0 = time.time()
    if a.train < 2 or a.test < 1:
        raise UserError("--train must be >= 2 and --test >= 1 videos")
    dataset(a.data, a.train, a.val, a.test, a.seed)
    over = overrides(a.data) + a.override
    os.makedirs(a.out, exist_ok=True)
    print("[demo] training the SlowFast detector and the one-frame baseline at the same time, one thread each; "
          "logs in {}/{{slowfast,one_frame}}/console.log".format(a.out), flush=True)
    results = run_workers(a.out, over)
    from paddlevideo.cli import configure_process  # noqa: E402
    configure_process()   # threads before paddle is imported
    rendered = render_clip(a.data, a.out, over, results["slowfast"]["weights"])
    summary = {name: {k: r[k] for k in ("mAP", "per_class", "weights", "train_seconds")}
               for name, r in results.items()}
    summary.update({"seconds": round(time.time() - t0, 1), "data": a.data, "data_seed": a.seed,
                    "rendered": {"json": rendered[0], "mp4": rendered[1], "png": rendered[2]}})
    print("\n[demo] held-out frame-mAP@0.5IoU: SlowFast {:.3f}, one-frame baseline {:.3f}".format(
        summary["slowfast"]["mAP"], summary["one_frame"]["mAP"]))
    w = max(len(k) for k in summary["slowfast"]["per_class"])
    for k in summary["slowfast"]["per_class"]:
        print("  {:<{w}}  {:.3f}  {:.3f}".format(k, summary["slowfast"]["per_class"][k],
                                                 summary["one_frame"]["per_class"].get(k, float("nan")), w=w))
    path = os.path.join(a.out, "results.json")
    with open(path, "w") as f:
        json.dump(summary, f, indent=1)
    print("[demo] done in {:.0f}s; results: {}; rendered clip: {}".format(summary["seconds"], path, rendered[1]))
    return 0


if __name__ == "__main__":
    from paddlevideo.errors import run_cli
    run_cli(main)
