"""Check a list file with the same reader training uses; print the broken entries.

    python data/dataset/check_videos.py LIST [--config configs/tsm.yaml] [--output clean.list]

Every line is checked: list problems (missing label, bad label, missing file) and videos that
cannot be decoded at the config's TEST sampling (seg_num x seglen frames, decode_timeout per
clip).  ``--output`` writes a cleaned list with the good entries (absolute paths).  Exit status:
0 when everything is readable, 1 when something is broken, 2 on a usage error.
"""
import argparse
import os
import sys
from multiprocessing import Pool

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from paddlevideo.cli import configure_process  # noqa: E402
configure_process()   # threads before paddle is imported
from paddlevideo.config import load_config  # noqa: E402
from paddlevideo.data import VideoDataset, VideoError  # noqa: E402
from paddlevideo.data.dataset import parse_list  # noqa: E402
from paddlevideo.errors import run_cli  # noqa: E402

_DATASET = None


def _init(dataset):
    global _DATASET
    _DATASET = dataset


def _check(i):
    try:
        _DATASET.load(i)
        return i, None
    except VideoError as e:
        return i, str(e)


def broken_videos(items, cfg, workers=1):
    """``{index: reason}`` for the ``[(path, label)]`` items that cannot be decoded with the
    reader of ``cfg`` (a ``Config.mode(...)`` view), checked in ``workers`` processes."""
    dataset = VideoDataset(items, cfg)
    if workers > 1 and len(items) > 1:
        pool = Pool(min(workers, len(items)), initializer=_init, initargs=(dataset,))
        try:
            results = list(pool.imap(_check, range(len(items))))
        finally:
            pool.close()     # not terminate(): SIGTERM makes Paddle's handler in the workers print a C++ trace
            pool.join()
    else:
        _init(dataset)
        results = [_check(i) for i in range(len(items))]
    return {i: err for i, err in results if err}


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("list", help="list file ('path label' per line)")
    p.add_argument("--config", default=os.path.join(ROOT, "configs", "tsm.yaml"),
                   help="config whose TEST settings define sampling and num_classes")
    p.add_argument("-o", "--override", action="append", default=[], metavar="SECTION.key=value")
    p.add_argument("--output", help="write the good entries here")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--no_labels", action="store_true", help="the list has no labels (prediction lists)")
    p.add_argument("--debug", action="store_true")
    a = p.parse_args(argv)
    cfg = load_config(a.config, a.override).mode("test")
    bad_lines = []
    items = parse_list(a.list, cfg.num_classes, cfg.format, need_label=not a.no_labels, skip_bad=True,
                       root=cfg.data_root,
                       problems=bad_lines)
    broken = broken_videos(items, cfg, a.workers)
    for line in bad_lines:
        print("BAD LINE  {}".format(line))
    for i, err in sorted(broken.items()):
        print("BROKEN    {}: {}".format(items[i][0], err))
    total = len(items) + len(bad_lines)
    print("{} of {} entries are broken ({} bad lines, {} unreadable videos)".format(
        len(bad_lines) + len(broken), total, len(bad_lines), len(broken)))
    if a.output:
        with open(a.output, "w") as f:
            for i, (path, label) in enumerate(items):
                if i not in broken:
                    f.write("{} {}\n".format(path, label) if label >= 0 else "{}\n".format(path))
        print("cleaned list ({} entries) written to {}".format(len(items) - len(broken), a.output))
    return 1 if (bad_lines or broken) else 0


if __name__ == "__main__":
    run_cli(main)
