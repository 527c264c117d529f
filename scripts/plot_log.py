"""Draw the training curves of one or more runs from their NAME_log.jsonl files (train.py writes them).

    python scripts/plot_log.py output/demo/TSM/TSM_log.jsonl output/demo/TSN/TSN_log.jsonl -o curves.png

Each run is labelled by its file name (``--labels a,b`` to choose); the figure has the training loss,
the train/validation top-1 per epoch and the learning rate against the global step.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddlevideo.errors import UserError, run_cli  # noqa: E402


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("logs", nargs="+", help="NAME_log.jsonl files")
    p.add_argument("-o", "--out", default="curves.png", help="PNG to write (default curves.png)")
    p.add_argument("--labels", default=None, help="comma-separated labels, one per log")
    p.add_argument("--title", default=None)
    args = p.parse_args(argv)
    from paddlevideo.training.curves import plot_curves, read_jsonl
    labels = args.labels.split(",") if args.labels else [os.path.basename(x).replace("_log.jsonl", "")
                                                        for x in args.logs]
    if len(labels) != len(args.logs):
        raise UserError("--labels has {} names for {} logs; give one per log".format(len(labels), len(args.logs)))
    runs = {}
    for label, path in zip(labels, args.logs):
        recs = read_jsonl(path)
        if not recs:
            raise UserError("{} holds no log records (has the run logged an interval yet?)".format(path))
        key, k = label, 2
        while key in runs:
            key, k = "{} ({})".format(label, k), k + 1
        runs[key] = recs
    print("written:", plot_curves(runs, args.out, args.title))
    return 0


if __name__ == "__main__":
    run_cli(main)
