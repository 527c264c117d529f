"""Build ``path label`` lists and ``labels.txt`` from the datasets users have, one subcommand each.

    python data/dataset/build_list.py folder  ROOT --out DIR [--val_ratio 0.2] [--test_ratio 0] [--seed 0]
    python data/dataset/build_list.py kinetics --csv val.csv --videos DIR --out val.list [--label_list kinetics400|PATH]
    python data/dataset/build_list.py ucf101  --splits ucfTrainTestlist --videos UCF-101 --split 1 --out DIR
    python data/dataset/build_list.py hmdb51  --splits testTrainMulti_7030_splits --videos hmdb51 --split 1 --out DIR

Common options: ``--root DIR`` writes paths relative to DIR (name the same DIR as ``data_root``
in the config), otherwise absolute; ``--check`` decodes every listed video with the training
reader and moves unreadable ones to ``<list>.unreadable``.  Every subcommand reports videos that
are listed but missing and videos that are present but not listed (the first 20, and all of them
in ``<out>.missing.txt`` / ``<out>.extra.txt``).  Exit status 0 (with a warning when something is
missing), 1 when no listed video is found (a wrong ``--videos``), 2 on a usage error.
"""
import argparse
import csv
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from paddlevideo.errors import UserError, run_cli  # noqa: E402

VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".flv", ".m4v", ".mpg", ".mpeg", ".wmv", ".3gp")
KINETICS400 = os.path.join(HERE, "kinetics400_label_list.txt")


def find_videos(top):
    """Every video file below ``top`` (any depth), sorted."""
    out = []
    for d, _, files in os.walk(top):
        out += [os.path.join(d, f) for f in files if f.lower().endswith(VIDEO_EXTS)]
    return sorted(out)


def index_by_stem(paths):
    """``{file name without extension: path}`` (the first one when a name repeats)."""
    out = {}
    for p in paths:
        out.setdefault(os.path.splitext(os.path.basename(p))[0], p)
    return out


class Report:
    """Collects what the lists name but the disk lacks, and what the disk has but no list names."""

    def __init__(self, out_base):
        self.out_base, self.missing, self.used = out_base, [], set()

    def found(self, path):
        self.used.add(os.path.abspath(path))

    def finish(self, on_disk, listed):
        extra = [p for p in on_disk if os.path.abspath(p) not in self.used]
        for kind, items in (("missing", self.missing), ("extra", extra)):
            path = "{}.{}.txt".format(self.out_base, kind)
            if items:
                with open(path, "w") as f:
                    f.write("".join(i + "\n" for i in items))
            elif os.path.exists(path):
                os.remove(path)
        if listed == 0:
            raise SystemExit("error: none of the {} listed videos was found; check --videos (it should hold the "
                             "video files, directly or in class folders)".format(len(self.missing)))
        if self.missing:
            print("warning: {} listed videos are missing (first 20 below; all in {}.missing.txt)".format(
                len(self.missing), self.out_base), file=sys.stderr)
            for m in self.missing[:20]:
                print("  missing: " + m, file=sys.stderr)
        if extra:
            print("note: {} videos under the video folder are in no list (first 20 below; all in {}.extra.txt)".format(
                len(extra), self.out_base))
            for e in extra[:20]:
                print("  not listed: " + e)
        print("{} videos listed, {} missing, {} not listed".format(listed, len(self.missing), len(extra)))


def write_list(path, entries, root):
    """Write ``path label`` lines (relative to ``root`` when given)."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    with open(path, "w") as f:
        for video, label in entries:
            p = os.path.relpath(video, root) if root else os.path.abspath(video)
            f.write("{} {}\n".format(p, label))
    print("wrote {} ({} videos)".format(path, len(entries)))


def write_labels(path, names):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(n + "\n" for n in names))
    print("wrote {} ({} classes)".format(path, len(names)))


def check(list_path, root, workers):
    """Decode every entry with the training reader; move unreadable ones to ``list.unreadable``."""
    from paddlevideo.cli import configure_process  # noqa: E402
    configure_process()   # threads before paddle is imported
    from check_videos import broken_videos
    from paddlevideo.config import load_config
    from paddlevideo.data.dataset import parse_list
    cfg = load_config(os.path.join(ROOT, "configs", "tsm.yaml"), ["MODEL.num_classes=100000"]).mode("test")
    items = parse_list(list_path, None, "mp4", root=root)
    broken = broken_videos(items, cfg, workers)
    with open(list_path) as f:
        lines = [line for line in f if line.strip()]
    with open(list_path, "w") as f:
        f.write("".join(line for i, line in enumerate(lines) if i not in broken))
    bad = list_path + ".unreadable"
    if broken:
        with open(bad, "w") as f:
            f.write("".join("{}\t# {}\n".format(lines[i].rstrip("\n"), err) for i, err in sorted(broken.items())))
        print("warning: --check: {} of {} videos cannot be decoded; moved to {}".format(len(broken), len(items), bad),
              file=sys.stderr)
    else:
        if os.path.exists(bad):
            os.remove(bad)
        print("--check: all {} videos of {} decode".format(len(items), list_path))


def cmd_folder(a):
    top = os.path.abspath(a.root_dir)
    if not os.path.isdir(top):
        raise UserError("{} is not a folder; give the folder holding one sub-folder per class".format(a.root_dir))
    classes = sorted(d for d in os.listdir(top) if os.path.isdir(os.path.join(top, d)) and find_videos(os.path.join(top, d)))
    report = Report(os.path.join(a.out, "dataset"))
    if not classes:
        raise SystemExit("error: no class sub-folder with videos under {}; expected ROOT/<class>/<videos>".format(top))
    rng = np.random.default_rng(a.seed)
    splits = {"train": [], "val": [], "test": []}
    for label, name in enumerate(classes):
        videos = find_videos(os.path.join(top, name))
        order = [videos[i] for i in rng.permutation(len(videos))]
        n_test, n_val = int(round(len(order) * a.test_ratio)), int(round(len(order) * a.val_ratio))
        parts = {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
        for split, vids in parts.items():
            splits[split] += [(v, label) for v in sorted(vids)]
            for v in vids:
                report.found(v)
    write_labels(os.path.join(a.out, "labels.txt"), classes)
    for split, entries in splits.items():
        if entries or split == "train":
            write_list(os.path.join(a.out, split + ".list"), entries, a.root)
    report.finish(find_videos(top), sum(len(e) for e in splits.values()))
    return [os.path.join(a.out, s + ".list") for s, e in splits.items() if e]


def kinetics_names(choice):
    if choice == "kinetics400":
        path = KINETICS400
    elif choice in ("kinetics600", "kinetics700"):
        raise UserError("--label_list {0}: the {0} class list does not ship with the project; pass the official "
                        "class list file (one name per line, in the official order) as --label_list PATH".format(choice))
    else:
        path = choice
    if not os.path.isfile(path):
        raise UserError("--label_list {}: no such file".format(choice))
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def cmd_kinetics(a):
    names = kinetics_names(a.label_list)
    index = {n: i for i, n in enumerate(names)}
    if not os.path.isfile(a.csv):
        raise UserError("--csv {} not found".format(a.csv))
    on_disk = find_videos(a.videos) if os.path.isdir(a.videos) else []
    by_stem = index_by_stem(on_disk)
    report = Report(os.path.splitext(a.out)[0])
    entries, unknown = [], []
    with open(a.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"label", "youtube_id", "time_start", "time_end"} <= set(rows[0]):
        raise UserError("{}: expected the official columns label,youtube_id,time_start,time_end,split (got {})".format(
            a.csv, ",".join(rows[0])))
    for line, row in enumerate(rows, 2):
        label = row["label"].strip().strip('"')
        if label not in index:
            unknown.append("{}:{}: class {!r}".format(a.csv, line, label))
            continue
        yid = row["youtube_id"].strip()
        clip = "{}_{:06d}_{:06d}".format(yid, int(float(row["time_start"])), int(float(row["time_end"])))
        path = by_stem.get(clip) or by_stem.get(yid)
        if path is None:
            report.missing.append(clip)
            continue
        report.found(path)
        entries.append((path, index[label]))
    if unknown:
        raise UserError("{} rows name classes that are not in the class list ({}): {}".format(
            len(unknown), a.label_list, "; ".join(unknown[:5])))
    write_list(a.out, entries, a.root)
    write_labels(a.labels or os.path.join(os.path.dirname(os.path.abspath(a.out)), "labels.txt"), names)
    report.finish(on_disk, len(entries))
    return [a.out]


def _split_videos(a, pairs, names):
    """``pairs``: {split: [(relative video path or name, label)]} → lists in ``a.out``."""
    on_disk = find_videos(a.videos) if os.path.isdir(a.videos) else []
    by_name = {}
    for p in on_disk:
        by_name.setdefault(os.path.basename(p), p)
    report = Report(os.path.join(a.out, "dataset"))
    outs, listed = [], 0
    for split, items in pairs.items():
        entries = []
        for rel, label in items:
            path = os.path.join(a.videos, rel)
            path = path if os.path.isfile(path) else by_name.get(os.path.basename(rel))
            if path is None:
                report.missing.append(rel)
                continue
            report.found(path)
            entries.append((path, label))
        write_list(os.path.join(a.out, split + ".list"), entries, a.root)
        outs.append(os.path.join(a.out, split + ".list"))
        listed += len(entries)
    write_labels(os.path.join(a.out, "labels.txt"), names)
    report.finish(on_disk, listed)
    return outs


def _read(path, what):
    if not os.path.isfile(path):
        raise UserError("{} not found ({}); check --splits and --split".format(path, what))
    with open(path) as f:
        return [line.split() for line in f if line.strip()]


def cmd_ucf101(a):
    rows = _read(os.path.join(a.splits, "classInd.txt"), "UCF101 class index")
    names = [r[1] for r in sorted(rows, key=lambda r: int(r[0]))]
    index = {n: i for i, n in enumerate(names)}
    train = [(r[0], int(r[1]) - 1) for r in _read(os.path.join(a.splits, "trainlist0{}.txt".format(a.split)), "train")]
    test = []
    for r in _read(os.path.join(a.splits, "testlist0{}.txt".format(a.split)), "test"):
        cls = r[0].replace("\\", "/").split("/")[0]
        if cls not in index:
            raise UserError("testlist0{}.txt: {} is not under a class folder of classInd.txt".format(a.split, r[0]))
        test.append((r[0], index[cls]))
    return _split_videos(a, {"train": train, "test": test}, names)


def cmd_hmdb51(a):
    suffix = "_test_split{}.txt".format(a.split)
    if not os.path.isdir(a.splits):
        raise UserError("--splits {} is not a folder of <class>_test_split<N>.txt files".format(a.splits))
    files = sorted(f for f in os.listdir(a.splits) if f.endswith(suffix))
    if not files:
        raise UserError("no *{} files in {}; check --splits and --split".format(suffix, a.splits))
    names = [f[:-len(suffix)] for f in files]
    pairs = {"train": [], "test": []}
    for label, f in enumerate(files):
        for r in _read(os.path.join(a.splits, f), "HMDB51 split"):
            if len(r) >= 2 and r[1] in ("1", "2"):
                pairs["train" if r[1] == "1" else "test"].append((os.path.join(names[label], r[0]), label))
    return _split_videos(a, pairs, names)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    sub = p.add_subparsers(dest="source", required=True)

    def common(sp):
        sp.add_argument("--root", default=None, help="write paths relative to this folder (the config's data_root)")
        sp.add_argument("--check", action="store_true", help="decode every video; move unreadable ones aside")
        sp.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for --check")
        sp.add_argument("--debug", action="store_true")

    f = sub.add_parser("folder", help="ROOT/<class>/<videos, any depth>")
    f.add_argument("root_dir", metavar="ROOT")
    f.add_argument("--out", required=True, help="folder for labels.txt and train/val/test.list")
    f.add_argument("--val_ratio", type=float, default=0.2)
    f.add_argument("--test_ratio", type=float, default=0.0)
    f.add_argument("--seed", type=int, default=0)
    k = sub.add_parser("kinetics", help="the official Kinetics annotation CSV")
    k.add_argument("--csv", required=True)
    k.add_argument("--videos", required=True, help="folder with the downloaded clips (flat or in class folders)")
    k.add_argument("--out", required=True, help="the list file to write")
    k.add_argument("--labels", default=None, help="where to write labels.txt (default: beside --out)")
    k.add_argument("--label_list", default="kinetics400", help="kinetics400 (ships with the project) or a class list file")
    for name in ("ucf101", "hmdb51"):
        s = sub.add_parser(name, help="the official {} split files".format(name.upper()))
        s.add_argument("--splits", required=True, help="folder of the split files")
        s.add_argument("--videos", required=True, help="folder with the videos (flat or in class folders)")
        s.add_argument("--split", type=int, choices=(1, 2, 3), default=1)
        s.add_argument("--out", required=True, help="folder for labels.txt, train.list and test.list")
    for sp in sub.choices.values():
        common(sp)
    a = p.parse_args(argv)
    if a.root:
        a.root = os.path.abspath(a.root)
    outs = {"folder": cmd_folder, "kinetics": cmd_kinetics, "ucf101": cmd_ucf101, "hmdb51": cmd_hmdb51}[a.source](a)
    if a.check:
        for out in outs:
            check(out, a.root, a.workers)
    return 0


if __name__ == "__main__":
    run_cli(main)
