"""The zero-download demo: TSM learns what TSN cannot.

Generates (once, cached) a synthetic dataset of 8 classes in 4 time-reversed pairs (move
right/left, down/up, grow/shrink, rotate clockwise/counter-clockwise; see
data/dataset/synthetic/make_synthetic.py), trains a small TSM and a small TSN with identical
settings (configs/demo.yaml, only MODEL.name differs), evaluates both on the test split, predicts
one held-out clip with the TSM, prints a comparison table and writes ``results.json`` plus PNG
plots (training curves, TSM confusion matrix) to ``--out``.

    python scripts/demo.py                 # what `bash run.sh demo` runs
    python scripts/demo.py --quick         # a reduced version (used by the tests)
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "data", "dataset", "synthetic"))

import paddlevideo  # noqa: E402,F401  (thread settings before paddle)
from paddlevideo import load_config  # noqa: E402
from paddlevideo.errors import run_cli  # noqa: E402

import make_synthetic  # noqa: E402


def dataset(out, n_train, n_val, n_test, seed):
    """Generate the synthetic data unless the same dataset is already there."""
    meta_path = os.path.join(out, "meta.json")
    want = {"seed": seed, "train": n_train, "val": n_val, "test": n_test}
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if all(meta.get(k) == v for k, v in want.items()):
            print("[demo] using cached synthetic data in {}".format(out))
            return {s: os.path.join(out, s + ".list") for s in ("train", "val", "test")}
    t0 = time.time()
    lists = make_synthetic.make(out, n_train, n_val, n_test, seed)
    print("[demo] generated {} clips in {:.0f}s into {}".format(8 * (n_train + n_val + n_test), time.time() - t0, out))
    return lists


def pair_accuracy(confusion, pairs):
    """Top-1 within each reversed pair's clips: [(pair name, accuracy)]."""
    out = []
    for a, b in pairs:
        n = sum(sum(confusion[c]) for c in (a, b))
        ok = confusion[a][a] + confusion[b][b]
        out.append(ok / n if n else None)
    return out


def plot(results, names, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for model, r in results.items():
        ep = [h["epoch"] + 1 for h in r["history"]]
        ax[0].plot(ep, [h["loss"] for h in r["history"]], marker="o", label=model)
        ax[1].plot(ep, [h["valid"]["top1_acc"] for h in r["history"]], marker="o", label=model)
    ax[0].set(title="training loss", xlabel="epoch", ylabel="cross-entropy")
    ax[1].set(title="validation top-1", xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    for a in ax:
        a.legend()
        a.grid(alpha=0.3)
    fig.tight_layout()
    curves = os.path.join(out_dir, "training_curves.png")
    fig.savefig(curves, dpi=100)
    plt.close(fig)

    cm = np.array(results["TSM"]["test"]["confusion"], float)
    fig, ax = plt.subplots(figsize=(7, 6))
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true", title="TSM confusion matrix (test split)")
    fig.tight_layout()
    conf = os.path.join(out_dir, "tsm_confusion.png")
    fig.savefig(conf, dpi=100)
    plt.close(fig)
    return [curves, conf]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "output", "demo"))
    p.add_argument("--data", default=os.path.join(ROOT, "data", "dataset", "synthetic", "data"))
    p.add_argument("--quick", action="store_true", help="reduced data and epochs (tests)")
    p.add_argument("--train_per_class", type=int, default=None)
    p.add_argument("--epoch", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--debug", action="store_true")
    a = p.parse_args(argv)
    from paddlevideo.engine.evaluate import evaluate_model
    from paddlevideo.engine.predict import predict
    from paddlevideo.engine.train import train

    n_train = a.train_per_class or (40 if a.quick else 100)
    n_val, n_test = (10, 20) if a.quick else (20, 40)
    data = a.data if not a.quick else a.data + "_quick"
    lists = dataset(data, n_train, n_val, n_test, a.seed)
    t_start = time.time()
    base = [("TRAIN.filelist", lists["train"]), ("VALID.filelist", lists["val"]), ("TEST.filelist", lists["test"])]
    if a.epoch:
        base.append(("TRAIN.epoch", a.epoch))
    results = {}
    for model in ("TSM", "TSN"):
        cfg = load_config(os.path.join(ROOT, "configs", "demo.yaml"),
                          ["{}={}".format(k, v) for k, v in base] + ["MODEL.name=" + model])
        print("\n[demo] ===== training {} =====".format(model))
        t0 = time.time()
        history = train(cfg, model, save_dir=os.path.join(a.out, model), pretrain="none", valid_interval=1,
                        log_interval=0, fix_random_seed=True)
        train_s = time.time() - t0
        test = evaluate_model(cfg, model, os.path.join(a.out, model, model + "_final.pdparams"))
        results[model] = {"history": history, "test": test, "train_seconds": round(train_s, 1)}
        print("[demo] {} test top-1 {:.3f} (trained in {:.0f}s)".format(model, test["top1_acc"], train_s))

    names = make_synthetic.CLASSES
    pairs = make_synthetic.PAIRS
    clip = [line.split()[0] for line in open(lists["test"])][0]
    clip = os.path.join(os.path.dirname(lists["test"]), clip)
    print("\n[demo] TSM prediction for a held-out clip ({}):".format(os.path.basename(clip)))
    cfg = load_config(os.path.join(ROOT, "configs", "demo.yaml"), ["{}={}".format(k, v) for k, v in base])
    pred, _ = predict(cfg, video_path=clip, weights=os.path.join(a.out, "TSM", "TSM_final.pdparams"))

    pair_names = ["{} / {}".format(names[x], names[y]) for x, y in pairs]
    table = {m: {"top1": r["test"]["top1_acc"], "pairs": pair_accuracy(r["test"]["confusion"], pairs)}
             for m, r in results.items()}
    width = max(len(n) for n in pair_names)
    print("\n[demo] test top-1 on {} clips (chance within a pair: 0.50)".format(results["TSM"]["test"]["num_evaluated"]))
    print("{:<{w}}  {:>6}  {:>6}".format("", "TSM", "TSN", w=width))
    print("{:<{w}}  {:>6.3f}  {:>6.3f}".format("overall", table["TSM"]["top1"], table["TSN"]["top1"], w=width))
    for i, n in enumerate(pair_names):
        print("{:<{w}}  {:>6.3f}  {:>6.3f}".format(n, table["TSM"]["pairs"][i], table["TSN"]["pairs"][i], w=width))
    os.makedirs(a.out, exist_ok=True)
    pngs = plot(results, names, a.out)
    summary = {
        "tsm_top1": table["TSM"]["top1"], "tsn_top1": table["TSN"]["top1"],
        "pairs": pair_names,
        "tsm_pair_top1": table["TSM"]["pairs"], "tsn_pair_top1": table["TSN"]["pairs"],
        "prediction": pred[0] if pred else None,
        "seconds": round(time.time() - t_start, 1),
        "models": results, "plots": pngs, "data": data,
    }
    out = os.path.join(a.out, "results.json")
    with open(out, "w") as f:
        json.dump(summary, f, indent=1)
    print("\n[demo] results: {}\n[demo] plots: {}".format(out, ", ".join(pngs)))
    return 0


if __name__ == "__main__":
    run_cli(main)
