"""Dataset conversion shared by data/dataset/extract_frames.py and video2pkl.py: decode whole videos
with the reader's decoders, and run per-video jobs in parallel, resumably, with a progress bar."""
import json
import os
import sys
from multiprocessing import Pool

import cv2
import numpy as np
from tqdm import tqdm

from .transforms import scale_short_side
from .. import quiet
from .video import VideoError, read_frames


def video_fps(path):
    """Frames per second from the container (decord, else OpenCV); None when unknown."""
    with quiet.hidden():
        try:
            import decord
            return float(decord.VideoReader(path, num_threads=1).get_avg_fps())
        except Exception:
            cap = cv2.VideoCapture(path)
            fps = cap.get(cv2.CAP_PROP_FPS)
            cap.release()
            return float(fps) if fps and fps > 0 else None


def decode_video(path, fps=None, short_side=None):
    """All frames of ``path`` (or ``fps`` frames per second of it) as ``[K, H, W, 3]`` uint8 RGB,
    the short side scaled to ``short_side`` when given.  Raises :class:`VideoError`."""
    step = 1.0
    if fps:
        src = video_fps(path)
        step = max(src / fps, 1.0) if src else 1.0

    def choose(n):
        return sorted({min(int(round(k * step)), n - 1) for k in range(int(np.ceil(n / step)))})

    frames = read_frames(path, choose)
    return scale_short_side(frames, short_side) if short_side else frames


def encode_jpeg(frame, quality=95):
    """RGB uint8 frame → JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise VideoError("JPEG encoding failed")
    return buf.tobytes()


def _call(args):
    fn, job = args
    try:
        fn(job)
        return job, None
    except VideoError as e:
        return job, str(e)
    except Exception as e:  # one bad video must not stop a dataset conversion
        return job, "{}: {}".format(type(e).__name__, e)


def run_jobs(jobs, fn, workers, desc):
    """Run ``fn(job)`` for every job (a picklable tuple) in ``workers`` processes with a progress
    bar; return ``[(job, error)]`` for the failures.  ``fn`` must be a module-level function."""
    failures = []
    args = [(fn, j) for j in jobs]
    if workers > 1 and len(jobs) > 1:
        pool = Pool(min(workers, len(jobs)))
        try:
            results = pool.imap_unordered(_call, args)
            for job, err in tqdm(results, total=len(jobs), desc=desc, file=sys.stderr):
                if err:
                    failures.append((job, err))
        finally:
            pool.close()     # not terminate(): SIGTERM makes Paddle's handler in the workers print a C++ trace
            pool.join()
    else:
        for a in tqdm(args, desc=desc, file=sys.stderr):
            job, err = _call(a)
            if err:
                failures.append((job, err))
    return failures


def unique_names(paths):
    """A file-system-safe name per video (its file name without extension; ``_2``, ``_3`` ... when names repeat),
    never the same for two list lines — ``a/x.mp4``, ``b/x.mp4``, ``c/x_2.mp4`` → ``x``, ``x_2``, ``x_2_2`` — and
    the same for the same list (names depend on the whole list, not on which process handles a line)."""
    seen, used, out = {}, set(), []
    for p in paths:
        stem = os.path.splitext(os.path.basename(p))[0]
        name = stem
        while name in used:
            seen[stem] = seen.get(stem, 1) + 1
            name = "{}_{}".format(stem, seen[stem])
        used.add(name)
        out.append(name)
    return out


FOLDER_INDEX = "index.json"


def write_folder_index(out_dir, videos, names):
    """Record which folder holds which video (absolute path → folder name) in ``out_dir/index.json``, merged with
    what an earlier run recorded: frame and flow folders of equally named videos (``a/x.mp4``, ``b/x.mp4`` →
    ``x``, ``x_2``) are then found by the video's path, not by its file name."""
    path = os.path.join(out_dir, FOLDER_INDEX)
    index = read_folder_index(out_dir)
    index.update({os.path.abspath(v): n for v, n in zip(videos, names)})
    tmp = "{}.tmp{}".format(path, os.getpid())
    with open(tmp, "w") as f:
        json.dump(index, f, indent=0, sort_keys=True)
    os.replace(tmp, path)


def read_folder_index(out_dir):
    try:
        with open(os.path.join(out_dir, FOLDER_INDEX)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


_INDEX_CACHE = {}


def folder_of(root, video):
    """The folder under ``root`` extracted from ``video``: by ``root/index.json`` (extract_frames.py writes it;
    read once per change of the file), else — folders written before the index existed — the video's file name
    without extension."""
    try:
        stamp = os.stat(os.path.join(root, FOLDER_INDEX)).st_mtime_ns
    except OSError:
        stamp = None
    if _INDEX_CACHE.get(root, (None,))[0] != stamp:
        _INDEX_CACHE[root] = (stamp, read_folder_index(root) if stamp is not None else {})
    name = _INDEX_CACHE[root][1].get(os.path.abspath(video))
    return os.path.join(root, name or os.path.splitext(os.path.basename(video))[0])


def write_summary(out_list, lines, failures, what):
    """Write the list of what was converted, name every failed video; return the exit status."""
    with open(out_list, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    for job, err in failures:
        print("FAILED  {}: {}".format(job[0], err), file=sys.stderr)
    print("{} {} listed in {} ({} videos failed)".format(len(lines), what, out_list, len(failures)))
    return 1 if failures else 0


def add_common_arguments(parser):
    """The options every conversion script shares."""
    parser.add_argument("--out", required=True)
    parser.add_argument("--short_side", type=int, default=None, help="scale the short side to this (default: keep)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--root", default=None, help="folder the list's relative paths are relative to")
    parser.add_argument("--debug", action="store_true")
