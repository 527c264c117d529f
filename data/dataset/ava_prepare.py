"""Prepare AVA frames from the movies: seconds 900–1800 of each, at 30 fps, as ``OUT/<video_id>/%05d.jpg``.

    python data/dataset/ava_prepare.py MOVIES_DIR_OR_LIST --out data/dataset/ava/rawframes
        [--start 900] [--end 1800] [--fps 30] [--short_side 256] [--workers N]

The same result as the official ``cut_videos.sh`` (``ffmpeg -ss 900 -t 901 -r 30``) +
``extract_rgb_frames.sh``, in one streaming OpenCV pass per movie (nothing held in memory): output frame k
(from ``00001.jpg``) is the last decoded frame at or before second ``start + (k − 1)/fps``, so the keyframe of
timestamp ts is ``30·(ts − 900) + 1`` as the reader expects.  The video id is the movie's file name without
extension (AVA's ids).  Resumable: a folder with a complete ``.done`` marker is skipped, an unfinished one
is redone; parallel over movies (``--workers``, default all cores); a summary names the movies that failed
(exit status 1).  ``MOVIES`` is a folder (every .mp4/.mkv/.webm/.avi in it) or a list file (one path a line).
"""
import argparse
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from paddlevideo.data.convert import run_jobs  # noqa: E402
from paddlevideo.data.video import VideoError  # noqa: E402
from paddlevideo.errors import UserError, run_cli  # noqa: E402

DONE = ".done"
EXTS = (".mp4", ".mkv", ".webm", ".avi")


def cut_and_extract(job):
    """One movie → ``folder/%05d.jpg`` for seconds [start, end) at ``fps``, written under ``.partial`` first."""
    import cv2
    movie, folder, start, end, fps, short_side, quality = job
    cap = cv2.VideoCapture(movie)
    if not cap.isOpened():
        raise VideoError("OpenCV cannot open it")
    tmp = folder + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    cap.set(cv2.CAP_PROP_POS_MSEC, start * 1000.0)
    k, last, size = 0, None, None
    total = int(round((end - start) * fps))
    try:
        while k < total:
            ok = cap.grab()
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 if ok else float("inf")
            while k < total and start + k / fps < t and last is not None:   # output frames before this one
                cv2.imwrite(os.path.join(tmp, "{:05d}.jpg".format(k + 1)), last, [cv2.IMWRITE_JPEG_QUALITY, quality])
                k += 1
            if not ok:
                break
            ok, img = cap.retrieve()
            if not ok:
                continue
            if short_side:
                h, w = img.shape[:2]
                if size is None:
                    s = short_side / min(h, w)
                    size = (int(round(w * s)), int(round(h * s)))
                img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            if t >= start - 1e-3 or last is None:
                last = img
    finally:
        cap.release()
    if k == 0:
        raise VideoError("no frames between second {} and {}".format(start, end))
    with open(os.path.join(tmp, DONE), "w") as f:
        f.write(str(k))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def movies_of(src):
    if os.path.isdir(src):
        return sorted(os.path.join(src, n) for n in os.listdir(src) if n.lower().endswith(EXTS))
    if os.path.isfile(src):
        with open(src) as f:
            return [line.strip() for line in f if line.strip() and not line.startswith("#")]
    raise UserError("{} is neither a folder of movies nor a list file".format(src))


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("movies", help="a folder of movies or a list of movie paths")
    p.add_argument("--out", required=True)
    p.add_argument("--start", type=float, default=900.0)
    p.add_argument("--end", type=float, default=1800.0)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--short_side", type=int, default=None, help="scale the short side (default: keep)")
    p.add_argument("--quality", type=int, default=95)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--debug", action="store_true")
    a = p.parse_args(argv)
    movies = movies_of(a.movies)
    if not movies:
        raise UserError("no movies (.mp4/.mkv/.webm/.avi) in {}".format(a.movies))
    os.makedirs(a.out, exist_ok=True)
    jobs = [(m, os.path.join(a.out, os.path.splitext(os.path.basename(m))[0]), a.start, a.end, a.fps,
             a.short_side, a.quality) for m in movies]
    todo = [j for j in jobs if not os.path.exists(os.path.join(j[1], DONE))]
    print("{} movies, {} already extracted, {} to do".format(len(jobs), len(jobs) - len(todo), len(todo)))
    failures = run_jobs(todo, cut_and_extract, a.workers, "movies")
    for job, err in failures:
        print("FAILED  {}: {}".format(job[0], err), file=sys.stderr)
    print("{} frame folders in {} ({} movies failed)".format(len(jobs) - len(failures), a.out, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    run_cli(main)
