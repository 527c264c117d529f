"""``live``: the live pipeline per keyframe — person detector, tracker, action model (the demo detector on a 240x128
stream with 3 persons; the full SlowFast-R50 AVA model at 256 px with 8 persons) and end to end — and the largest
number of simultaneous 30-fps streams the demo model keeps in real time on this machine."""
import json
import os
import subprocess
import sys
import time

from .common import ROOT, run_child

DEMO = os.path.join(ROOT, "configs", "demo_detection.yaml")
DETECTOR = "data.dataset.synthetic.make_synthetic_ava:ActorDetector"


def _stream(seconds=20, seed=11):
    import tempfile
    sys.path.insert(0, os.path.join(ROOT, "data", "dataset", "synthetic"))
    import make_synthetic_ava
    return make_synthetic_ava.make_stream(tempfile.mkdtemp(), seed, seconds, 3)


def _weights(label_map):
    """Random weights of the demo detector (speed does not depend on them)."""
    import tempfile
    import paddle
    from paddlevideo import build_model, load_config
    cfg = load_config(DEMO, ["MODEL.label_map=" + label_map])
    paddle.seed(0)
    w = os.path.join(tempfile.mkdtemp(), "w.pdparams")
    paddle.save(build_model(cfg).state_dict(), w)
    return cfg, w


def child_parts(backend, repeat):
    """Seconds per keyframe of each stage on one backend (median of ``repeat``)."""
    import numpy as np
    from paddlevideo.cli import configure_process
    configure_process()
    import cv2
    from paddlevideo.apps.live import LivePipeline
    from paddlevideo.apps.persons import HOGPersonDetector
    from paddlevideo.apps.track import Tracker
    video, gt = _stream(6)
    cfg, w = _weights(os.path.join(os.path.dirname(gt), "label_map.pbtxt"))
    cap = cv2.VideoCapture(video)
    frames = []
    while len(frames) < 180:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    cap.release()
    pipe = LivePipeline(cfg, w, backend, DETECTOR, source="bench")
    med = lambda f: float(np.median([_timed(f) for _ in range(repeat)]))  # noqa: E731
    key = frames[90]
    dets = pipe.detector(key)
    out = {"detector_s": med(lambda: pipe.detector(key)), "hog_detector_s": med(lambda: HOGPersonDetector()(key))}

    def track():
        tr = Tracker()
        for k in range(10):
            tr.update(dets)
    out["tracker_s"] = med(track) / 10
    clip = np.stack([frames[90 + int(o)] for o in pipe.offsets])
    from paddlevideo.apps.detect import score_boxes
    boxes = dets[:, :4] if len(dets) else np.array([[10, 10, 60, 70]], np.float32)
    score_boxes(pipe.runner, clip, boxes, pipe.m)
    out["action_model_s"] = med(lambda: score_boxes(pipe.runner, clip, boxes, pipe.m))
    out["persons"] = int(len(boxes))
    t = time.perf_counter()
    for i, f in enumerate(frames):
        pipe.feed(f, index=i)
    wall = time.perf_counter() - t
    out["end_to_end_s_per_keyframe"] = round(wall / max(pipe.stats["keyframes"], 1), 4)
    out["end_to_end_fps"] = round(len(frames) / wall, 1)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def _timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def child_streams(n, seconds):
    """``n`` live pipelines at once (processes), each reading a stream file at its own fps (``--realtime``): whether
    all keep up (wall time within 2 % of the stream's length) and their worst latency."""
    from paddlevideo.cli import configure_process
    configure_process()
    video, gt = _stream(seconds)
    label_map = os.path.join(os.path.dirname(gt), "label_map.pbtxt")
    _, w = _weights(label_map)
    env = dict(os.environ, PADDLEVIDEO_THREADS="1")
    procs = []
    for k in range(int(n)):
        out = os.path.join(os.path.dirname(gt), "s{}.json".format(k))
        procs.append((out, subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "predict.py"), "--live", "--config", DEMO, "--weights", w, "--source",
             video, "--realtime", "--detector", DETECTOR, "--events", os.devnull, "--output", out, "--backend",
             "onnxruntime", "--cpu_threads", "1", "-o", "MODEL.label_map=" + label_map],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    sums = []
    for out, p in procs:
        p.wait(timeout=seconds * 4 + 120)
        if os.path.isfile(out):
            with open(out) as f:
                sums.append(json.load(f))
    ok = len(sums) == int(n) and all(s["realtime_factor"] >= 0.98 for s in sums)
    return {"streams": int(n), "keeps_up": ok, "min_realtime_factor": min((s["realtime_factor"] for s in sums),
                                                                          default=0),
            "p99_latency_ms": max((s["latency_ms_p99"] for s in sums), default=None)}


CHILDREN = {"live_parts": lambda backend, repeat: child_parts(backend, int(repeat)),
            "live_streams": lambda n, seconds: child_streams(int(n), float(seconds))}


def run(a, results):
    """``live.<backend>``: seconds per keyframe per stage; ``live.slowfast_r50_ava_256``: the full AVA model with 8
    persons (the ``ava`` section's measurement); ``live.max_realtime_streams``."""
    out = results.setdefault("live", {})
    for backend in ("onnxruntime", "paddle-inference"):
        out[backend] = run_child(["live_parts", backend, max(a.repeat, 5)])
        print("live / {:<17} {}".format(backend, out[backend]), flush=True)
    out["slowfast_r50_ava_256_8_persons"] = run_child(["ava", "onnxruntime", a.repeat, a.threads])
    print("live / SlowFast-R50 AVA 256 px, 8 persons: {}".format(out["slowfast_r50_ava_256_8_persons"]), flush=True)
    fps = out["onnxruntime"].get("end_to_end_fps") or 30
    n = max(1, int(fps // 30))
    seconds = 10 if a.quick else 20
    best, tried = 0, []
    for _ in range(8):                                      # from the single-pipeline estimate down (or up)
        r = run_child(["live_streams", n, seconds])
        tried.append(r)
        print("live / {} streams at once: {}".format(n, r), flush=True)
        if r.get("keeps_up"):
            best = max(best, n)
            if any(t.get("streams") == n + 1 for t in tried):
                break
            n += 1
        else:
            if n == 1 or any(t.get("streams") == n - 1 for t in tried):
                break
            n -= 1
    out["max_realtime_streams"] = best
    out["stream_trials"] = tried
