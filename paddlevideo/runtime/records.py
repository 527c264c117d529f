"""Streaming, resumable, shardable per-video outputs of eval, predict and feature extraction.

Every rank appends one JSON line per finished video (``{"index": list position, "video": path, ...}``) to a part
file of its own in ``<output>.parts/``, flushed line by line, so a run killed at any point loses only the videos
in flight.  ``resume`` reads the part files back, skips the list positions that already have a complete line
(:meth:`Parts.start`) and shares the rest between the ranks; the final outputs are built on rank 0 by merging the
part files in list order (:meth:`Parts.merged`, a streaming k-way merge: nothing is held in memory per video).
With several machines the output folder must be on a filesystem all of them see (like mmaction2's
``collect_results_cpu``); otherwise rank 0 finds videos without a line and says so.
"""
import glob
import hashlib
import heapq
import json
import os
import shutil
import time

import numpy as np

from ..errors import UserError
from . import parallel


def _read(path):
    """The complete lines of one part file, in file order (a line cut short by a kill ends the file)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                return
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("index"), int):
                yield rec


IDENTITY_FILE = "identity.json"
# the reader keys that change what a video's line holds (besides the network keys and the weights)
VIEW_KEYS = ("num_clips", "num_crops", "average", "seg_num", "format", "short_size", "target_size", "fixed_ratio",
             "frame_interval", "sampling", "image_mean", "image_std")


def file_digest(paths):
    """sha256 over the contents of ``paths`` (in the given order; missing ones skipped)."""
    h = hashlib.sha256()
    for path in paths:
        if path and os.path.isfile(path):
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def run_identity(cfg, mode, weights, exported, backend, output="logits", **extra):
    """What produced a part folder's lines: ``{"weights": sha256 of the weights (or the exported files),
    "MODEL.<network key>": value, "<MODE>.<view key>": value, "backend", "precision", "output", extra...}``.
    A ``--resume`` with anything different is refused (:meth:`Parts.start`)."""
    from ..config import NETWORK_KEYS
    m, section = cfg.mode(mode), mode.upper()
    files = [weights] if weights else [exported + e for e in (".pdiparams", ".pdmodel", ".json", ".onnx")]
    ident = {"weights": file_digest(files)[:16]}
    ident.update({"MODEL." + k: cfg.MODEL.get(k) for k in NETWORK_KEYS})
    ident.update({"{}.{}".format(section, k): m[k] for k in VIEW_KEYS})
    ident.update({"backend": backend, "precision": m.precision, "output": output})
    ident.update(extra)
    return json.loads(json.dumps(ident))         # the types a JSON file gives back (tuples -> lists)


class Parts:
    """The part files of one output (``folder``), for rank ``rank`` of ``world``.

    ``complete(rec)``: whether a line's output is whole (features: its ``.npy`` exists); a line that is not is
    redone on resume.  A line only counts for the list position it names when it also names that position's
    video (a changed list redoes what moved).  ``identity`` (:func:`run_identity`), written to the folder by a
    fresh run: a resume whose identity differs stops with one line naming every differing key."""

    def __init__(self, folder, world=1, rank=0, resume=False, complete=None):
        self.folder, self.world, self.rank, self.resume = folder, world, rank, resume
        self.complete = complete or (lambda rec: True)
        self.num_done = 0
        self._f = None
        self._last = -1

    def _valid(self, rec, items):
        i = rec["index"]
        return 0 <= i < len(items) and rec.get("video") == items[i][0] and self.complete(rec)

    def start(self, items, identity=None):
        """Clear the folder (a fresh run) or read what is finished (resume); return this rank's share of the
        list positions still to do, in increasing order."""
        if self.rank == 0 and not self.resume:
            shutil.rmtree(self.folder, ignore_errors=True)
        parallel.barrier(self.world, "start of the outputs")             # cleared before anyone reads
        done = set()
        if self.resume:
            self._check_identity(identity)
            for path in glob.glob(os.path.join(self.folder, "*.jsonl")):
                done.update(rec["index"] for rec in _read(path) if self._valid(rec, items))
        parallel.barrier(self.world, "reading of the finished outputs")  # everyone read before anyone writes
        self.num_done = len(done)
        os.makedirs(self.folder, exist_ok=True)
        ident_path = os.path.join(self.folder, IDENTITY_FILE)
        if self.rank == 0 and identity is not None and not os.path.isfile(ident_path):
            tmp = "{}.tmp{}".format(ident_path, os.getpid())
            with open(tmp, "w") as f:
                json.dump(identity, f, indent=1)
            os.replace(tmp, ident_path)
        path = os.path.join(self.folder, "part-{:05d}-{}-{}.jsonl".format(self.rank, time.time_ns(), os.getpid()))
        self._f = open(path, "a", encoding="utf-8")
        todo = [i for i in range(len(items)) if i not in done]
        return todo[self.rank::self.world]

    def _check_identity(self, identity):
        """A resume continues only the run that wrote the folder: same weights, network, views, backend."""
        if identity is None or not os.path.isdir(self.folder):
            return
        path = os.path.join(self.folder, IDENTITY_FILE)
        how = "rerun without --resume to start over (its outputs are then cleared)"
        if not os.path.isfile(path):
            if glob.glob(os.path.join(self.folder, "*.jsonl")):
                raise UserError("--resume: {} has no record of what wrote it ({} is missing), so it cannot be "
                                "continued safely; {}".format(self.folder, IDENTITY_FILE, how))
            return
        try:
            with open(path) as f:
                old = json.load(f)
        except (OSError, ValueError) as e:
            raise UserError("--resume: {} is unreadable ({}); {}".format(path, e, how))
        diff = ["{} {} there, {} now".format(k, json.dumps(old.get(k)), json.dumps(identity.get(k)))
                for k in sorted(set(old) | set(identity)) if old.get(k) != identity.get(k)]
        if diff:
            raise UserError("--resume: {} holds the outputs of another run ({}); {}".format(
                self.folder, "; ".join(diff), how))

    def report_resume(self, tag, verb, total):
        """Log how much an earlier run already did, e.g. ``[TEST] resuming: 9 of 14 videos already evaluated``."""
        if self.num_done:
            print("[{}] resuming: {} of {} videos already {}, {} to go".format(
                tag, self.num_done, total, verb, total - self.num_done), flush=True)

    def write(self, rec):
        """Append one video's line and flush it (positions must come in increasing order)."""
        if rec["index"] <= self._last:
            raise RuntimeError("records out of order: {} after {}".format(rec["index"], self._last))
        self._last = rec["index"]
        self._f.write(json.dumps(rec) + "\n")
        self._f.flush()

    def finish(self):
        """Close this rank's part file and wait for every rank; True on rank 0 (which builds the outputs)."""
        if self._f is not None:
            self._f.close()
            self._f = None
        parallel.barrier(self.world, "end of inference")
        return self.rank == 0

    def merged(self, items):
        """Every list position's line, in list order (one per position), from all part files."""
        streams = [_read(p) for p in sorted(glob.glob(os.path.join(self.folder, "*.jsonl")))]
        last, count = -1, 0
        for rec in heapq.merge(*streams, key=lambda r: r["index"]):
            if rec["index"] == last or not self._valid(rec, items):
                continue
            last, count = rec["index"], count + 1
            yield rec
        if count != len(items):
            raise UserError("{} of {} videos have no output line in {}{}; rerun with --resume to finish them".format(
                len(items) - count, len(items), self.folder,
                " (with several machines this folder must be on a filesystem every machine shares)"
                if self.world > 1 else ""))


def tap(records, fn):
    """``records`` unchanged, calling ``fn(rec)`` on each as it passes (one merge pass feeds a file and a sum)."""
    for rec in records:
        fn(rec)
        yield rec


def write_array(path, records, head=None, key=None):
    """Write ``records`` (an iterable of dicts) to ``path`` without holding them: a JSON array, one element per
    line, or JSON lines when ``path`` ends with ``.jsonl``; with ``head`` (a dict), a JSON object of ``head``'s
    keys (each written by ``json.dumps``) plus ``key``: the array.  Atomic (written beside, then renamed); when
    ``records`` raises, the temporary file is removed and nothing is left under either name."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = "{}.tmp{}".format(path, os.getpid())
    lines = path.endswith(".jsonl") and head is None
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            if head is not None:
                f.write("{\n")
                for k, v in head.items():
                    f.write(" {}: {},\n".format(json.dumps(k), json.dumps(v)))
                f.write(" {}: ".format(json.dumps(key)))
            f.write("" if lines else "[")
            for k, rec in enumerate(records):
                f.write(json.dumps(rec) + "\n" if lines else (",\n" if k else "\n") + json.dumps(rec))
            f.write("" if lines else "\n]" + ("\n}\n" if head is not None else "\n"))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def save_npy(path, array):
    """``np.save`` to ``path`` atomically: a killed run leaves no half-written ``.npy`` under the final name."""
    tmp = "{}.tmp{}".format(path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def open_runner(cfg, mode, weights, opts, world=1, rank=0, output="logits"):
    """``(runner, backend used, weights path)`` for :class:`~.backends.RunOptions` ``opts``; rank 0 first (a
    download or an export lands in the shared cache once, the other ranks find it there)."""
    from .backends import make_runner
    from .batches import resolve_weights

    def make():
        w = None if opts.exported and not weights and output == "logits" else resolve_weights(cfg, weights,
                                                                                              opts.cache_dir)
        runner, used = make_runner(cfg, mode, w, opts.backend, opts.cpu_threads, opts.cache_dir, opts.exported,
                                   output, spin=False)
        return runner, used, w
    return parallel.rank0_first(world, rank, make)


def run_shard(items, todo, m, runner, parts, to_records, desc):
    """Decode (``paddle.io.DataLoader`` workers: ``num_reader_threads`` of the mode ``m``) and run the list
    positions ``todo`` of ``items``; ``to_records(videos, sub_items, positions)`` turns
    :func:`~.common.per_video` output into records, each written to ``parts`` (when given) and yielded."""
    from tqdm import tqdm
    from ..runtime.batches import per_video
    sub = [items[i] for i in todo]
    if not sub:
        return
    loader = shard_loader(sub, m)
    videos = per_video(tqdm(loader, desc=desc, leave=False, mininterval=2), runner, m.batch_size,
                       loader.dataset.clips_per_video)
    for rec in to_records(videos, sub, todo):
        if parts is not None:
            parts.write(rec)
        yield rec


READER_NICE = 10


def shard_loader(items, m):
    """The inference loader over ``items``: ``num_reader_threads`` worker processes (capped at the cores) decode
    ahead while the model runs, at a lower CPU priority (``READER_NICE``) so that on a CPU-only machine they use
    the cycles the model's threads leave idle instead of preempting them."""
    from ..data import VideoDataset, build_loader
    from ..runtime.batches import samples_per_batch
    return build_loader(VideoDataset(items, m), samples_per_batch(m), num_workers=m.num_reader_threads,
                        nice=READER_NICE)
