"""The live demo (``bash run.sh demo --live``): which synthetic actor does what, now — from a file and from a local
network stream.

1. Training data: the detection demo's synthetic AVA clips, half of them with walking actors
   (``make_synthetic_ava.py --walking 0.5``, cached in ``data/dataset/synthetic/ava_live/``).
2. The demo detector (``configs/demo_detection.yaml``) trained on it, or the one an earlier run of this demo left in
   ``--out``/model (same data and settings).
3. A held-out 60-second stream (``make_synthetic_ava.py --stream``, seed ``--seed``): 3 actors walk, pass each other,
   enter and leave, and act in intervals separated by idle spells.
4. ``predict.py --live`` on it (a) from the file at full speed and (b) from a local network stream (ffmpeg serving the
   file in real time over HTTP on 127.0.0.1), with the synthetic actors' person detector; both scored by
   ``scripts/event_eval.py``; and (c) from the file of a stream of another seed (``--other_seed``).
5. ``--out``/results.json ``{"live": {"f1", "precision", "recall", "start_delay_s", "id_switches",
   "dropped_fraction", "realtime_factor"}, "file": {...}, "other_seed": {...}, "weights", "config", "detector",
   "seconds"}``, the events (``events_live.jsonl``, ``events_file.jsonl``), the rendered file run (``live.mp4``) and
   ``live.png`` (a frame with track ids and actions, and every track's events against the ground truth).

    python scripts/demo_live.py                               # what `bash run.sh demo --live` runs
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "data", "dataset", "synthetic"))

import demo_detection  # noqa: E402  (its cached data generation and overrides)
import make_synthetic_ava  # noqa: E402
from event_eval import evaluate, read_events  # noqa: E402
from paddlevideo.errors import UserError, run_cli  # noqa: E402

CONFIG = os.path.join(ROOT, "configs", "demo_detection.yaml")
DETECTOR = "data.dataset.synthetic.make_synthetic_ava:ActorDetector"
DATA = os.path.join(ROOT, "data", "dataset", "synthetic", "ava_live")
TRAINING = ["TRAIN.epoch=16"]       # the detection demo's recipe, a little longer (walking actors are harder)


def model(out, d, extra):
    """The trained detector's weights (trained now unless this demo left them with the same settings)."""
    save = os.path.join(out, "model")
    w = os.path.join(save, "SLOWFAST_AVA_final.pdparams")
    with open(os.path.join(d, "meta.json")) as f:
        want = {"data": json.load(f), "overrides": extra}
    meta = os.path.join(save, "demo_meta.json")
    if os.path.isfile(w) and os.path.isfile(meta) and _read_json(meta) == want:
        print("[demo] reusing the detector trained by an earlier run: {}".format(w), flush=True)
        write_serve_hint(save)
        return w
    t0 = time.time()
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--config", CONFIG, "--save_dir", save,
           "--valid_interval", "0", "--log_interval", "20"]
    for o in demo_detection.overrides(d) + extra:
        cmd += ["-o", o]
    print("[demo] training the demo detector on walking and standing actors ...", flush=True)
    p = subprocess.run(cmd, cwd=ROOT)
    if p.returncode != 0 or not os.path.isfile(w):
        raise UserError("training the demo detector failed (exit {}); see the log above".format(p.returncode))
    with open(meta, "w") as f:
        json.dump(want, f)
    write_serve_hint(save)
    print("[demo] trained in {:.0f} s: {}".format(time.time() - t0, w), flush=True)
    return w


def write_serve_hint(save):
    """``serve.yaml`` beside the model: ``bash run.sh serve`` (no --models) runs it with the actors' detector."""
    with open(os.path.join(save, "serve.yaml"), "w") as f:
        f.write("# read by serve.py's default models (bash run.sh serve without --models)\ndetector: {}\n".format(
            DETECTOR))


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def live(w, d, source, events, summary, extra, render=None, timeout=900, reconnect=None):
    cmd = [sys.executable, os.path.join(ROOT, "predict.py"), "--live", "--config", CONFIG, "--weights", w,
           "--source", source, "--detector", DETECTOR, "--events", events, "--output", summary, "--backend",
           "onnxruntime", "-o", "MODEL.label_map=" + os.path.join(d, "label_map.pbtxt")]
    for o in extra:
        cmd += ["-o", o]
    if render:
        cmd += ["--render", render]
    if reconnect is not None:          # the served file's end is the stream's end: no reconnect attempts
        cmd += ["--reconnect", str(reconnect)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    line = [x for x in p.stderr.splitlines() if x.startswith("[LIVE]") or x.startswith("error:")]
    print("[demo] {}: {}".format(source, line[-1] if line else p.stderr[-500:]), flush=True)
    if not os.path.isfile(summary):
        raise UserError("the live run on {} failed: {}".format(source, (p.stderr.strip().splitlines() or ["?"])[-1]))
    with open(summary) as f:
        return json.load(f)


def scored(gt, events, summary):
    with open(gt) as f:
        res = evaluate(json.load(f), read_events(events))
    keep = {k: res[k] for k in ("f1", "precision", "recall", "start_delay_s", "id_switches", "matched",
                                "ground_truth", "events")}
    keep.update({"dropped_fraction": summary["dropped_fraction"], "realtime_factor": summary["realtime_factor"],
                 "latency_ms_p99": summary["latency_ms_p99"], "tracks": summary["tracks"]})
    return keep


def serve(video):
    """ffmpeg (imageio-ffmpeg's) serving ``video`` in real time as MPEG-TS over HTTP on 127.0.0.1."""
    import imageio_ffmpeg
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = "http://127.0.0.1:{}".format(port)
    proc = subprocess.Popen([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-re", "-i", video, "-c:v",
                             "mpeg4", "-q:v", "2", "-f", "mpegts", "-listen", "1", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.7)
    return proc, url


def figure(out, gt_path, events_path, video, path):
    """A rendered frame (track ids and actions) above every track's events against the ground truth."""
    import cv2
    from paddlevideo.metrics.plots import new_figure
    with open(gt_path) as f:
        gt = json.load(f)
    events = read_events(events_path)
    ends = [ev["end"] for ev in events.values() if "end" in ev and "start" in ev]
    t_show = ends[len(ends) // 2]["t_start"] + 1.0 if ends else 10.0
    cap = cv2.VideoCapture(video)
    cap.set(cv2.CAP_PROP_POS_FRAMES, int(t_show * gt["fps"]))
    ok, img = cap.read()
    cap.release()
    fig, (a0, a1) = new_figure((10, 7.5), 2, 1)
    if ok:
        a0.imshow(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    a0.set_title("rendered live run at t = {:.1f} s: track ids and active actions".format(t_show))
    a0.axis("off")
    names = make_synthetic_ava.ACTIONS
    rows = []
    for a in gt["actors"]:
        for x in a["actions"]:
            rows.append(("actor {} (truth)".format(a["actor_id"]), x["start"], x["end"], x["action_id"], "#999999"))
    for e in ends:
        rows.append(("track #{}".format(e["track_id"]), e["t_start"], e["t_end"], e["action_id"], None))
    labels = sorted({r[0] for r in rows}, key=lambda s: (s.startswith("track"), s))
    for name, t0, t1, action, colour in rows:
        y = labels.index(name)
        c = colour or "C{}".format(action % 10)
        a1.barh(y, t1 - t0, left=t0, color=c, alpha=0.85, height=0.6)
        a1.text(t0 + 0.1, y, names[action - 1], va="center", fontsize=7)
    a1.set_yticks(range(len(labels)), labels, fontsize=8)
    a1.set(xlabel="stream seconds", title="events per track (bottom) against the ground truth per actor (grey)")
    a1.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, "output", "demo_live"))
    p.add_argument("--train", type=int, default=120, help="training clips (3 keyframes each)")
    p.add_argument("--val", type=int, default=10)
    p.add_argument("--seconds", type=float, default=60.0, help="length of the held-out streams")
    p.add_argument("--seed", type=int, default=100, help="the held-out stream's seed")
    p.add_argument("--other_seed", type=int, default=7, help="a second held-out stream (file run only)")
    p.add_argument("--skip_network", action="store_true", help="no network run (tests)")
    p.add_argument("-o", "--override", action="append", default=[], help="training config overrides")
    p.add_argument("--live", action="append", default=[], metavar="LIVE.key=value", help="live config overrides")
    p.add_argument("--debug", action="store_true")
    a = p.parse_args(argv)
    t0 = time.time()
    os.makedirs(a.out, exist_ok=True)
    demo_detection.dataset(DATA, a.train, a.val, 0, 0, walking=0.5)
    d = DATA
    w = model(a.out, d, TRAINING + a.override)
    res = {"weights": w, "config": CONFIG, "detector": DETECTOR}
    streams = {}
    for name, seed in (("held_out", a.seed), ("other_seed", a.other_seed)):
        folder = os.path.join(a.out, "stream_seed{}".format(seed))
        streams[name] = make_synthetic_ava.make_stream(folder, seed, a.seconds, 3)
    video, gt = streams["held_out"]
    ev_file = os.path.join(a.out, "events_file.jsonl")
    s = live(w, d, video, ev_file, os.path.join(a.out, "summary_file.json"), a.live,
             render=os.path.join(a.out, "live.mp4"))
    res["file"] = scored(gt, ev_file, s)
    if not a.skip_network:
        proc, url = serve(video)
        try:
            ev_live = os.path.join(a.out, "events_live.jsonl")
            s = live(w, d, url, ev_live, os.path.join(a.out, "summary_live.json"), a.live + ["LIVE.buffer=60"],
                     reconnect=0)
        finally:
            proc.kill()
        res["live"] = scored(gt, ev_live, s)
    video2, gt2 = streams["other_seed"]
    ev2 = os.path.join(a.out, "events_other_seed.jsonl")
    res["other_seed"] = scored(gt2, ev2, live(w, d, video2, ev2, os.path.join(a.out, "summary_other_seed.json"),
                                              a.live))
    res["png"] = figure(a.out, gt, ev_file, os.path.join(a.out, "live.mp4"), os.path.join(a.out, "live.png"))
    res["seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    for k in ("live", "file", "other_seed"):
        if k in res:
            r = res[k]
            print("[demo] {:<10} F1 {:.3f} (precision {:.3f}, recall {:.3f}), start delay {} s, id switches {}, "
                  "dropped {:.1%}, real-time factor {}".format(k, r["f1"], r["precision"], r["recall"],
                                                                r["start_delay_s"], r["id_switches"],
                                                                r["dropped_fraction"], r["realtime_factor"]))
    print("[demo] {:.0f} s; results in {}".format(res["seconds"], os.path.join(a.out, "results.json")))
    return 0


if __name__ == "__main__":
    run_cli(main)
