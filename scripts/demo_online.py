"""The online demo (``bash run.sh demo --online``): a TSM with the past-only shift, streamed frame by frame.

Trains the demo's small TSM (configs/demo.yaml, the data of ``bash run.sh demo``) twice with identical settings —
``MODEL.shift_mode: online`` and the offline ``bidirectional`` shift — at the same time, evaluates both on the
held-out split, then streams a video made of held-out clips of different classes back to back through the
online model with :class:`~paddlevideo.apps.online.OnlineRecognizer` (every 2nd frame: the 8 segments of a
16-frame clip), and reports the per-step accuracy of the smoothed label over each clip's second half and the mean
delay (in source frames) until the smoothed label switches to the new clip's class.  Writes ``--out``/results.json
(``{"online": {"top1"}, "bidirectional": {"top1"}, "stream": {"step_accuracy", "mean_delay_frames"}, "seconds"}``)
and ``timeline.png`` (the smoothed label against the truth).

    python scripts/demo_online.py                            # what `bash run.sh demo --online` runs
    python scripts/demo_online.py --pairs 0 --train_per_class 60 --stream_clips 6 -o TRAIN.epoch=12 \
        -o MODEL.seg_num=4                                   # reduced (tests)
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "data", "dataset", "synthetic"))

import demo  # noqa: E402  (the TSM demo's data, overrides and parallel workers)
import make_synthetic  # noqa: E402

VARIANTS = [("online", ["MODEL.name=TSM", "MODEL.shift_mode=online"]),
            ("bidirectional", ["MODEL.name=TSM", "MODEL.shift_mode=bidirectional"])]


def stream_clips(lists, n, seed=0):
    """``n`` held-out clips cycling through the classes: ``[(path, label)]``."""
    import numpy as np
    with open(lists["test"]) as f:
        items = [line.rsplit(None, 1) for line in f if line.strip()]
    base = os.path.dirname(lists["test"])
    by_class = {}
    for rel, label in items:
        by_class.setdefault(int(label), []).append(os.path.join(base, rel))
    rng = np.random.default_rng(seed)
    classes = sorted(by_class)
    order = [classes[(i * 3) % len(classes)] for i in range(n)]       # neighbours differ, pairs included
    return [(str(rng.choice(by_class[c])), c) for c in order]


def stream(cfg, weights, clips, every, window):
    """Stream the clips back to back; return per-step records and the summary numbers."""
    import numpy as np
    from paddlevideo.data.video import read_frames
    from paddlevideo.apps.online import OnlineRecognizer
    rec = OnlineRecognizer(cfg, weights, backend="onnxruntime", window=window)
    steps, frame_no = [], 0
    for k, (path, label) in enumerate(clips):
        frames = read_frames(path, lambda n: list(range(n)))
        for i in range(0, len(frames), every):
            r = rec.step(frames[i])
            steps.append({"clip": k, "frame": frame_no + i, "in_clip": i, "clip_len": len(frames), "truth": label,
                          "label": r["label"], "top1": r["top_k"][0][0]})
        frame_no += len(frames)
    second_half = [s for s in steps if s["in_clip"] >= s["clip_len"] // 2]
    acc = float(np.mean([s["label"] == s["truth"] for s in second_half]))
    delays = []
    for k in range(1, len(clips)):
        clip_steps = [s for s in steps if s["clip"] == k]
        hit = next((s["in_clip"] for s in clip_steps if s["label"] == s["truth"]), clip_steps[0]["clip_len"])
        delays.append(hit)
    return steps, {"step_accuracy": round(acc, 4), "mean_delay_frames": round(float(np.mean(delays)), 2),
                   "steps": len(steps), "clips": len(clips), "every": every, "window": window}


def plot_timeline(steps, names, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(10, 3.2))
    x = [s["frame"] for s in steps]
    ax.step(x, [s["truth"] for s in steps], where="post", color="#999999", lw=6, alpha=0.5, label="truth")
    ax.step(x, [s["label"] for s in steps], where="post", color="#c44e52", lw=1.5, label="smoothed label")
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set(xlabel="source frame", title="online TSM, streamed one frame at a time (every 2nd frame)")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "output", "demo_online"))
    p.add_argument("--data", default=None, help="synthetic data directory (default: run.sh demo's)")
    p.add_argument("--pairs", default=None, help="reversed pairs to use (as scripts/demo.py; default 0,1,2,3)")
    p.add_argument("--train_per_class", type=int, default=100)
    p.add_argument("--val_per_class", type=int, default=20)
    p.add_argument("--test_per_class", type=int, default=40)
    p.add_argument("--seed", type=int, default=0, help="data generator seed")
    p.add_argument("--stream_clips", type=int, default=24, help="held-out clips streamed back to back")
    p.add_argument("--window", type=int, default=3, help="steps whose logits the smoothed label sums")
    p.add_argument("-o", "--override", action="append", default=[], metavar="SECTION.key=value")
    a = p.parse_args(argv)
    t0 = time.time()
    pairs = sorted(int(v) for v in a.pairs.split(",")) if a.pairs else make_synthetic.DEFAULT_PAIRS
    default = (a.train_per_class, a.val_per_class, a.test_per_class, a.seed) == (100, 20, 40, 0)
    data = a.data or os.path.join(ROOT, "data", "dataset", "synthetic",
                                  "data" if default and pairs == make_synthetic.DEFAULT_PAIRS else "data_online")
    lists, meta = demo.dataset(data, a.train_per_class, a.val_per_class, a.test_per_class, a.seed, pairs)
    over = demo.overrides(lists, meta, None) + a.override
    os.makedirs(a.out, exist_ok=True)
    print("[demo] training the demo TSM with the online and the bidirectional shift at the same time; logs in "
          "{}/{{online,bidirectional}}/console.log".format(a.out), flush=True)
    results = demo.run_workers(a.out, over, (os.cpu_count() or 1) >= 2, VARIANTS)
    from paddlevideo.cli import configure_process  # noqa: E402
    configure_process()   # threads before paddle is imported
    from paddlevideo import load_config
    cfg = load_config(demo.CONFIG, over + VARIANTS[0][1])
    weights = os.path.join(a.out, "online", "TSM_final.pdparams")
    clips = stream_clips(lists, a.stream_clips, a.seed)
    every = max(1, 16 // cfg.MODEL.seg_num)                  # the clips' 16 frames hold seg_num segments
    steps, summary = stream(cfg, weights, clips, every, a.window)
    png = plot_timeline(steps, meta["classes"], os.path.join(a.out, "timeline.png"))
    out = {"online": {"top1": results["online"]["test"]["top1_acc"]},
           "bidirectional": {"top1": results["bidirectional"]["test"]["top1_acc"]},
           "stream": summary, "seconds": round(time.time() - t0, 1), "timeline": png,
           "weights": {"online": weights, "bidirectional": os.path.join(a.out, "bidirectional", "TSM_final.pdparams")}}
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(out, f, indent=1)
    print("\n[demo] held-out top-1: online shift {:.3f}, bidirectional {:.3f}".format(out["online"]["top1"],
                                                                                     out["bidirectional"]["top1"]))
    print("[demo] streamed {} clips ({} steps): smoothed-label accuracy over each clip's second half {:.3f}, mean "
          "delay to switch {:.1f} frames; timeline {}".format(summary["clips"], summary["steps"],
                                                            summary["step_accuracy"], summary["mean_delay_frames"], png))
    print("[demo] done in {:.0f}s; results: {}".format(out["seconds"], os.path.join(a.out, "results.json")))
    return 0


if __name__ == "__main__":
    from paddlevideo.errors import run_cli
    run_cli(main)
