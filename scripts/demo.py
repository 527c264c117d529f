"""The zero-download demo: TSM learns what TSN cannot (``bash run.sh demo``).

Generates (once, cached) a synthetic dataset of 8 classes in 4 time-reversed pairs (move
right/left, down/up, grow/shrink, fade in/out; each class's clips are the frame-reversed clips of
its partner, see data/dataset/synthetic/make_synthetic.py), trains a small
TSM and a small TSN with identical settings (configs/demo.yaml; only MODEL.name differs, i.e. the
temporal shift), evaluates both on the held-out test split, predicts one held-out clip with the
TSM and prints a table (top-1 overall and per reversed pair).  Writes to ``--out``:
``results.json``, ``training_curves.png``, ``confusion_tsm.png``, ``confusion_tsn.png`` and each
model's checkpoints, training log (``NAME_log.jsonl``) and console log under ``NAME/``.

The two models train at the same time in two processes of one thread each (on a machine with at
least 2 cores): small convolutions do not scale across threads in Paddle's dynamic graph (one
process with 2 threads: 2.7 s per step, one thread: 1.4 s), so this halves the wall time.

    python scripts/demo.py                               # what `bash run.sh demo` runs
    python scripts/demo.py --pairs 0 --train_per_class 60 --epoch 12 -o MODEL.seg_num=4   # reduced (tests)
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "data", "dataset", "synthetic"))

import make_synthetic  # noqa: E402
from paddlevideo.errors import UserError  # noqa: E402  (no paddle import: workers set their threads first)

MODELS = ("TSM", "TSN")
CONFIG = os.path.join(ROOT, "configs", "demo.yaml")


def dataset(out, n_train, n_val, n_test, seed, pairs):
    """Generate the synthetic data unless the same dataset is already there; return the list paths."""
    meta_path = os.path.join(out, "meta.json")
    want = {"seed": seed, "train": n_train, "val": n_val, "test": n_test, "pair_ids": pairs}
    lists = {s: os.path.join(out, s + ".list") for s in ("train", "val", "test")}
    lists["labels"] = os.path.join(out, "labels.txt")
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if all(meta.get(k) == v for k, v in want.items()) and all(os.path.exists(p) for p in lists.values()):
            print("[demo] using the synthetic data already in {}".format(out), flush=True)
            return lists, meta
    t0 = time.time()
    lists = make_synthetic.make(out, n_train, n_val, n_test, seed, pairs=pairs)
    with open(meta_path) as f:
        meta = json.load(f)
    print("[demo] generated {} clips in {:.0f}s into {}".format(
        len(meta["classes"]) * (n_train + n_val + n_test), time.time() - t0, out), flush=True)
    return lists, meta


def overrides(lists, meta, epoch):
    o = ["TRAIN.filelist=" + lists["train"], "VALID.filelist=" + lists["val"], "TEST.filelist=" + lists["test"],
         "INFER.filelist=" + lists["test"], "MODEL.num_classes={}".format(len(meta["classes"])),
         "MODEL.label_list=" + lists["labels"]]
    return o + (["TRAIN.epoch={}".format(epoch)] if epoch else [])


def worker(label, out, over):
    """Train the model of ``over`` (its MODEL.name) and evaluate it on the test split; write
    ``out/label/result.json``."""
    from paddlevideo.cli import configure_process  # noqa: E402
    configure_process()   # threads before paddle is imported
    from paddlevideo import load_config
    from paddlevideo.apps.evaluate import evaluate_model
    from paddlevideo.training.loop import train

    cfg = load_config(CONFIG, over)
    model = cfg.MODEL.name
    save = os.path.join(out, label)
    t0 = time.time()
    history = train(cfg, model, save_dir=save, pretrain="none", valid_interval=1, log_interval=10,
                    fix_random_seed=True)
    seconds = time.time() - t0
    test = evaluate_model(cfg, model, os.path.join(save, model + "_final.pdparams"), backend="dygraph")
    with open(os.path.join(save, model + "_final.state.json")) as f:
        steps = json.load(f)["step"]
    result = {"test": test, "history": history, "train_seconds": round(seconds, 1), "steps": steps}
    with open(os.path.join(save, "result.json"), "w") as f:
        json.dump(result, f)
    print("[demo] {} test top-1 {:.3f} (trained in {:.0f}s)".format(label, test["top1_acc"], seconds), flush=True)


def run_workers(out, over, parallel, jobs=None):
    """Run one worker process per model (at the same time when ``parallel``), one thread each.  ``jobs``:
    ``[(label, extra overrides)]`` training TSM under ``out/label`` each (default: TSM and TSN under ``out``);
    returns ``{label: result}``."""
    jobs = jobs or [(m, ["MODEL.name=" + m]) for m in MODELS]
    env = dict(os.environ, OMP_NUM_THREADS="1" if parallel else os.environ.get("OMP_NUM_THREADS", ""))
    if not env["OMP_NUM_THREADS"]:
        env.pop("OMP_NUM_THREADS")
    procs = []

    def start(model, extra):
        os.makedirs(os.path.join(out, model), exist_ok=True)
        log = open(os.path.join(out, model, "console.log"), "w")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", model, "--out", out, "--"] + over + extra
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=ROOT)

        def pump():
            for line in p.stdout:
                log.write(line)
                log.flush()
                if line.startswith(("[TRAIN] Epoch", "[VALID]", "[demo]", "[TRAIN] finished")) \
                        and "iter" not in line.split("\t")[0]:
                    print("{} | {}".format(model, line.rstrip()), flush=True)
        t = threading.Thread(target=pump, daemon=True)
        t.start()
        return p, t, log

    for model, extra in jobs:
        procs.append((model,) + start(model, extra))
        if not parallel:
            procs[-1][1].wait()
    for model, p, t, log in procs:
        p.wait()
        t.join()
        log.close()
        if p.returncode != 0:
            raise SystemExit("[demo] training {} failed (exit {}); see {}".format(
                model, p.returncode, os.path.join(out, model, "console.log")))
    results = {}
    for model, _ in jobs:
        with open(os.path.join(out, model, "result.json")) as f:
            results[model] = json.load(f)
    return results


def pair_accuracy(confusion, pairs):
    """Top-1 over the clips of each reversed pair (both classes)."""
    out = []
    for a, b in pairs:
        n = sum(sum(confusion[c]) for c in (a, b))
        out.append((confusion[a][a] + confusion[b][b]) / n if n else None)
    return out


def plot(out, names):
    """training_curves.png (loss per step, validation top-1 per epoch) and one confusion matrix per model."""
    from paddlevideo.training.curves import plot_curves, read_jsonl
    from paddlevideo.apps.evaluate import plot_confusion
    runs = {model: read_jsonl(os.path.join(out, model, model + "_log.jsonl")) for model in MODELS}
    paths = [plot_curves(runs, os.path.join(out, "training_curves.png"), "TSM vs TSN, same settings",
                         chance=1.0 / len(names))]
    for model in MODELS:
        with open(os.path.join(out, model, "result.json")) as f:
            cm = json.load(f)["test"]["confusion"]
        paths.append(plot_confusion(cm, names, os.path.join(out, "confusion_{}.png".format(model.lower())),
                                    "{} (test split)".format(model)))
    return paths


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "output", "demo"), help="results (default output/demo)")
    p.add_argument("--data", default=None, help="synthetic data directory (default data/dataset/synthetic/data, "
                   "or ..._pairs<P> for a subset)")
    p.add_argument("--pairs", default=None, help="reversed pairs to use: 0 move right/left, 1 move down/up, 2 grow/"
                   "shrink, 3 fade in/out, 4 rotate clockwise/counter-clockwise; default 0,1,2,3")
    p.add_argument("--train_per_class", type=int, default=100)
    p.add_argument("--val_per_class", type=int, default=20)
    p.add_argument("--test_per_class", type=int, default=40)
    p.add_argument("--epoch", type=int, default=None, help="override TRAIN.epoch of configs/demo.yaml")
    p.add_argument("--seed", type=int, default=0, help="data generator seed (training uses TRAIN.seed)")
    p.add_argument("--sequential", action="store_true", help="train the models one after the other")
    p.add_argument("-o", "--override", action="append", default=[], metavar="SECTION.key=value",
                   help="change a setting of configs/demo.yaml for both models, e.g. -o TRAIN.batch_size=8")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        return worker(a.worker, a.out, a.overrides)

    t_start = time.time()
    pairs = sorted(int(v) for v in a.pairs.split(",")) if a.pairs else make_synthetic.DEFAULT_PAIRS
    bad = [v for v in pairs if not 0 <= v < len(make_synthetic.PAIRS)]
    if bad:
        raise UserError("--pairs {}: pair indices are 0..{} ({})".format(a.pairs, len(make_synthetic.PAIRS) - 1, "; ".join(
            "{} {}".format(i, " / ".join(make_synthetic.CLASSES[c] for c in pr)) for i, pr in enumerate(make_synthetic.PAIRS))))
    default = pairs == make_synthetic.DEFAULT_PAIRS
    data = a.data or os.path.join(ROOT, "data", "dataset", "synthetic",
                                  "data" if default else "data_pairs" + "".join(map(str, pairs)))
    lists, meta = dataset(data, a.train_per_class, a.val_per_class, a.test_per_class, a.seed, pairs)
    names, pair_idx = meta["classes"], meta["pairs"]
    over = overrides(lists, meta, a.epoch) + a.override
    parallel = not a.sequential and (os.cpu_count() or 1) >= 2
    print("[demo] training TSM and TSN {} ({} train clips, {} classes); logs in {}/{{TSM,TSN}}/console.log".format(
        "at the same time, one thread each" if parallel else "one after the other",
        len(names) * a.train_per_class, len(names), a.out), flush=True)
    os.makedirs(a.out, exist_ok=True)
    results = run_workers(a.out, over, parallel)

    from paddlevideo.cli import configure_process  # noqa: E402
    configure_process()   # threads before paddle is imported
    from paddlevideo import load_config
    from paddlevideo.apps.predict import predict
    with open(lists["test"]) as f:
        rel, label = f.readline().rsplit(None, 1)
    clip = os.path.join(os.path.dirname(lists["test"]), rel)
    print("\n[demo] the trained TSM on a held-out clip (true class: {}):".format(names[int(label)]), flush=True)
    cfg = load_config(CONFIG, over + ["MODEL.name=TSM"])
    pred, _ = predict(cfg, video_path=clip, weights=os.path.join(a.out, "TSM", "TSM_final.pdparams"),
                      backend="dygraph")

    pair_names = ["{} / {}".format(names[x], names[y]) for x, y in pair_idx]
    table = {m: {"top1": r["test"]["top1_acc"], "pairs": pair_accuracy(r["test"]["confusion"], pair_idx)}
             for m, r in results.items()}
    w = max(len(n) for n in pair_names + ["overall (chance {:.3f})".format(1.0 / len(names))])
    print("\n[demo] test top-1 on {} held-out clips".format(results["TSM"]["test"]["num_evaluated"]))
    print("{:<{w}}  {:>6}  {:>6}".format("", "TSM", "TSN", w=w))
    print("{:<{w}}  {:>6.3f}  {:>6.3f}".format("overall (chance {:.3f})".format(1.0 / len(names)),
                                               table["TSM"]["top1"], table["TSN"]["top1"], w=w))
    for i, n in enumerate(pair_names):
        print("{:<{w}}  {:>6.3f}  {:>6.3f}".format(n, table["TSM"]["pairs"][i], table["TSN"]["pairs"][i], w=w))
    pngs = plot(a.out, names)
    summary = {
        "classes": names, "pairs": pair_names, "data": data, "data_seed": a.seed,
        "seconds": round(time.time() - t_start, 1), "parallel": parallel,
        "prediction": pred[0] if pred else None, "plots": pngs,
    }
    for model, r in results.items():
        summary[model] = {
            "top1": table[model]["top1"], "pair_top1": dict(zip(pair_names, table[model]["pairs"])),
            "confusion": r["test"]["confusion"], "test_clips": r["test"]["num_evaluated"],
            "train_seconds": r["train_seconds"], "steps": r["steps"],
            "weights": os.path.join(a.out, model, model + "_final.pdparams"),
            "valid_top1_per_epoch": [h.get("valid", {}).get("top1_acc") for h in r["history"]],
            "train_loss_per_epoch": [h["loss"] for h in r["history"]],
        }
    path = os.path.join(a.out, "results.json")
    with open(path, "w") as f:
        json.dump(summary, f, indent=1)
    print("\n[demo] done in {:.0f}s; results: {}\n[demo] plots: {}".format(summary["seconds"], path, ", ".join(pngs)))
    return 0


if __name__ == "__main__":
    from paddlevideo.errors import run_cli
    run_cli(main)
