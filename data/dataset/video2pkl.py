"""Convert the videos of a list to the legacy PaddleVideo pkl clips our reader reads (``MODEL.format: pkl``).

    python data/dataset/video2pkl.py LIST --out DIR [--workers N] [--short_side N]

Each video becomes ``DIR/<video name>.pkl``: a pickle of ``(video_id, label, [JPEG bytes of every
frame])`` as the legacy Kinetics preprocessing wrote, and ``DIR/pkl.list`` lists them with their
labels, so legacy training recipes work unchanged.  Resumable (existing .pkl files are kept;
each is written to a temporary name and renamed), parallel, with a progress bar and a summary of
the videos that could not be decoded (exit status 1 when there were any).
"""
import argparse
import os
import pickle
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from paddlevideo.data.convert import (  # noqa: E402
    add_common_arguments, decode_video, encode_jpeg, run_jobs, unique_names, write_summary)
from paddlevideo.data.dataset import parse_list  # noqa: E402
from paddlevideo.errors import run_cli  # noqa: E402


def convert(job):
    video, label, out, short_side = job
    jpegs = [encode_jpeg(f) for f in decode_video(video, None, short_side)]
    vid = os.path.splitext(os.path.basename(out))[0]
    tmp = out + ".partial"
    with open(tmp, "wb") as f:
        pickle.dump((vid, label, jpegs), f, protocol=2)
    os.replace(tmp, out)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("list", help="a 'path label' list")
    add_common_arguments(p)
    a = p.parse_args(argv)
    items = parse_list(a.list, None, "mp4", need_label=True, root=a.root)
    names = unique_names([v for v, _ in items])
    os.makedirs(a.out, exist_ok=True)
    outs = [os.path.join(a.out, n + ".pkl") for n in names]
    todo = [(v, label, o, a.short_side) for (v, label), o in zip(items, outs) if not os.path.exists(o)]
    print("{} videos, {} already converted, {} to do".format(len(items), len(items) - len(todo), len(todo)))
    failures = run_jobs(todo, convert, a.workers, "pkl")
    lines = ["{} {}".format(os.path.basename(o), label) for o, (_, label) in zip(outs, items) if os.path.exists(o)]
    return write_summary(os.path.join(a.out, "pkl.list"), lines, failures, "pkl clips")


if __name__ == "__main__":
    run_cli(main)
