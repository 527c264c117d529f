"""``serve``: serve.py under load, all traffic on 127.0.0.1, every loop bounded in time.

* ``serve.clips``: clips/s and p50/p99 latency at 1, 4 and 16 concurrent clients (TSM-R50 at 224 px, random
  weights, ``{"path"}`` requests on the real test clips) against the offline ``eval.py`` pipeline on the same clips
  and backend in the same run (``offline_clips_per_s``, ``ratio_at_16``).
* ``serve.overload``: 3x the measured capacity for 30 s (open loop): every request answered 200 or 503, each 200
  compared with ``predict.py --output`` on that clip (``mismatches``), the server's RSS idle and at its peak.
* ``serve.streams``: the largest number of simultaneous 25-fps local network streams (served by ffmpeg, stream
  copy) an online TSM-MobileNetV2 at 224 px keeps in real time with every frame stepped: <= 1 % dropped and p99
  frame-to-label latency <= 250 ms on every stream.
* ``serve.restart``: a stream writing events (read live over SSE) while clips load the server; ``kill -9``;
  restart on the same database: every event acknowledged before the kill is there; ``PRAGMA integrity_check``.
* ``serve.bad_requests``: 1,000 bad requests (wrong types, traversal paths, truncated uploads, huge headers,
  unknown routes, unknown models) and whether the server is healthy and answering after them.
"""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import numpy as np

from .common import ROOT

CLIPS = ("arm_wrestling.mp4", "eivideo_example.mp4", "mmaction2_test.mp4", "mmaction2_test.avi",
         "paddlevideo_example.avi")


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _call(base, method, path, body=None, headers=None, timeout=120):
    """``(status, parsed body or bytes, seconds)``; status 0 = a connection error or timeout."""
    h = dict(headers or {})
    data = body
    if isinstance(body, dict):
        data, h["Content-Type"] = json.dumps(body).encode(), "application/json"
    t0 = time.perf_counter()
    try:
        req = urllib.request.Request(base + path, data=data, method=method, headers=h)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, payload = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, payload = e.code, e.read()
    except (OSError, ValueError):
        return 0, None, time.perf_counter() - t0
    dt = time.perf_counter() - t0
    try:
        return status, json.loads(payload), dt
    except ValueError:
        return status, payload, dt


def _rss_mb(pid):
    try:
        with open("/proc/{}/status".format(pid)) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Served:
    """serve.py as a child process on a free port."""

    def __init__(self, work, models_yaml, db, env=None):
        self.work, self.models_yaml, self.db, self.env = work, models_yaml, db, env or {}
        self.start()

    def start(self):
        self.port = _free_port()
        self.base = "http://127.0.0.1:{}".format(self.port)
        self.log = open(os.path.join(self.work, "serve.log"), "a")
        self.p = subprocess.Popen([sys.executable, os.path.join(ROOT, "serve.py"), "--models", self.models_yaml,
                                   "--port", str(self.port), "--data_root", os.path.join(self.work, "data"), "--db",
                                   self.db, "--cache_dir", os.path.join(self.work, "cache")],
                                  cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, env=dict(os.environ, **self.env))
        end = time.time() + 600
        while time.time() < end and self.p.poll() is None:
            if _call(self.base, "GET", "/readyz", timeout=2)[0] == 200:
                return
            time.sleep(0.5)
        raise RuntimeError("serve.py did not start (see {})".format(os.path.join(self.work, "serve.log")))

    def stop(self, kill=False):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL if kill else signal.SIGINT)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


def _clip_list(work):
    path = os.path.join(work, "calibration.list")
    with open(path, "w") as f:
        f.write("".join("{} 0\n".format(os.path.join(work, "data", c)) for c in CLIPS))
    return path


def _prepare(work):
    """Random-weight TSM-R50 and online TSM-MobileNetV2 checkpoints with their configs; the clips; the models file."""
    os.makedirs(os.path.join(work, "data"), exist_ok=True)
    import shutil
    for c in CLIPS:
        shutil.copy(os.path.join(ROOT, "tests", "data", c), os.path.join(work, "data", c))
    code = ("import sys, os; sys.path.insert(0, {root!r})\n"
            "from paddlevideo.cli import configure_process; configure_process()\n"
            "import paddle\nfrom paddlevideo import build_model, load_config\nfrom paddlevideo.config import save_config\n"
            "for name, config, over in [('tsm', 'tsm.yaml', ['INFER.num_reader_threads=1']),\n"
            "                           ('mv2', 'pptsm_mv2_online.yaml', [])]:\n"
            "    cfg = load_config(os.path.join({root!r}, 'configs', config), over)\n"
            "    paddle.seed(0); m = build_model(cfg); m.eval()\n"
            "    paddle.save(m.state_dict(), os.path.join({work!r}, name + '.pdparams'))\n"
            "    save_config(cfg, os.path.join({work!r}, name + '.yaml'))\n").format(root=ROOT, work=work)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    path = os.path.join(work, "models.yaml")
    with open(path, "w") as f:
        f.write("tsm: {weights: tsm.pdparams, backend: onnxruntime, max_batch: 8, max_wait_ms: 20, max_queue: 24}\n"
                "mv2: {weights: mv2.pdparams, backend: onnxruntime}\n"
                "mv2_events: {weights: mv2.pdparams, backend: onnxruntime, overrides: [LIVE.threshold=0.02, "
                "LIVE.min_duration=0, LIVE.hold=0.1, LIVE.hysteresis=0.0]}\n")
        f.write("mv2_int8: {{weights: mv2.pdparams, backend: onnxruntime, precision: int8, overrides: "
                "[INFER.calibration={}, INFER.calibration_size=5]}}\n".format(_clip_list(work)))
    return path


def _offline(work, threads):
    """eval.py on the clips (4 rounds of the 5), same backend: clips/s of its evaluation loop; and predict.py's
    records per clip (the reference of every 200 answer)."""
    lst = os.path.join(work, "clips.list")
    with open(lst, "w") as f:
        f.write("".join("{} 0\n".format(os.path.join(work, "data", c)) for _ in range(4) for c in CLIPS))
    env = dict(os.environ, PADDLEVIDEO_WEIGHTS_HOME=os.path.join(work, "cache"))
    w = os.path.join(work, "tsm.pdparams")
    subprocess.run([sys.executable, os.path.join(ROOT, "eval.py"), "--weights", w, "--backend", "onnxruntime",
                    "-o", "TEST.filelist=" + lst, "-o", "TEST.num_clips=1", "-o", "TEST.num_crops=1",
                    "--save_dir", os.path.join(work, "eval")],
                   check=True, cwd=ROOT, env=env, capture_output=True)
    with open(os.path.join(work, "eval", "TSM_eval.json")) as f:
        res = json.load(f)
    ref_list = os.path.join(work, "ref.list")
    with open(ref_list, "w") as f:
        f.write("".join("{}\n".format(os.path.join(work, "data", c)) for c in CLIPS))
    subprocess.run([sys.executable, os.path.join(ROOT, "predict.py"), "--weights", w, "--backend", "onnxruntime",
                    "--filelist", ref_list, "--output", os.path.join(work, "ref.json")],
                   check=True, cwd=ROOT, env=env, capture_output=True)
    with open(os.path.join(work, "ref.json")) as f:
        refs = {os.path.basename(r["video"]): r for r in json.load(f)}
    return round(res["num_evaluated"] / res["seconds"], 3), refs


def _matches(got, ref):
    return ([t["class"] for t in got["top_k"]] == [t["class"] for t in ref["top_k"]] and
            np.allclose([t["score"] for t in got["top_k"]], [t["score"] for t in ref["top_k"]], atol=1e-4))


def _clients(base, n, seconds, refs=None):
    """``n`` closed-loop clients for ``seconds``: clips/s and latency percentiles of the 200s."""
    lat, statuses, bad, lock = [], {}, [0], threading.Lock()
    end = time.time() + seconds

    def client(k):
        j = k
        while time.time() < end:
            clip = CLIPS[j % len(CLIPS)]
            j += 1
            s, body, dt = _call(base, "POST", "/v1/models/tsm/predict", {"path": clip})
            with lock:
                statuses[s] = statuses.get(s, 0) + 1
                if s == 200:
                    lat.append(dt)
                    if refs is not None and not _matches(body, refs[clip]):
                        bad[0] += 1
    t0 = time.time()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 300)
    wall = time.time() - t0
    a = np.array(lat) * 1000 if lat else np.zeros(1)
    return {"clients": n, "clips_per_s": round(len(lat) / wall, 3), "p50_ms": round(float(np.percentile(a, 50)), 1),
            "p99_ms": round(float(np.percentile(a, 99)), 1), "statuses": statuses, "mismatches": bad[0]}


def _overload(srv, rate, seconds, refs):
    """Open loop at ``rate`` requests/s for ``seconds``: counts by outcome, mismatches, RSS idle and peak."""
    idle = _rss_mb(srv.p.pid)
    counts = {"requests": 0, "ok": 0, "rejected_503": 0, "other": 0, "mismatches": 0}
    peak, lock, stop = [idle], threading.Lock(), [False]

    def sample():
        while not stop[0]:
            peak[0] = max(peak[0], _rss_mb(srv.p.pid))
            time.sleep(0.2)

    def one(clip):
        s, body, _ = _call(srv.base, "POST", "/v1/models/tsm/predict", {"path": clip}, timeout=120)
        with lock:
            counts["requests"] += 1
            if s == 200:
                counts["ok"] += 1
                counts["mismatches"] += not _matches(body, refs[clip])
            elif s == 503:
                counts["rejected_503"] += 1
            else:
                counts["other"] += 1
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    threads, t0, k = [], time.time(), 0
    while time.time() - t0 < seconds:
        due = t0 + k / rate
        if time.time() < due:
            time.sleep(min(0.05, due - time.time()))
            continue
        t = threading.Thread(target=one, args=(CLIPS[k % len(CLIPS)],))
        t.start()
        threads.append(t)
        k += 1
    for t in threads:
        t.join(180)
    stop[0] = True
    counts.update(idle_rss_mb=round(idle, 1), peak_rss_mb=round(peak[0], 1), rate_per_s=round(rate, 2),
                  seconds=seconds)
    return counts


def _bad_requests(base, n=1000):
    kinds = [
        lambda k: _call(base, "POST", "/v1/models/tsm/predict", {"path": k}),
        lambda k: _call(base, "POST", "/v1/models/tsm/predict", {"path": "../" * (k % 7 + 1) + "etc/passwd"}),
        lambda k: _call(base, "POST", "/v1/models/tsm/predict?timeline=yes&window=x", {"path": "a.mp4"}),
        lambda k: _call(base, "POST", "/v1/models/tsm/predict", b"--b\r\nContent-Disposition: form-data; "
                        b"name=\"video\"; filename=\"t.mp4\"\r\n\r\n" + os.urandom(k % 300),
                        {"Content-Type": "multipart/form-data; boundary=b"}),
        lambda k: _call(base, "GET", "/v1/models", headers={"X-Huge": "a" * (64 << 10)}),
        lambda k: _call(base, "GET", "/nope/{}".format(k)),
        lambda k: _call(base, "POST", "/v1/models/nope{}/predict".format(k), {"path": "x"}),
        lambda k: _call(base, "POST", "/v1/streams", {"source": ["x"], "model": 3}),
        lambda k: _call(base, "GET", "/v1/events?since=yesterday&limit=-{}".format(k)),
        lambda k: _call(base, "DELETE", "/v1/streams/{}".format(k)),
    ]
    statuses = {}
    for k in range(n):
        s = kinds[k % len(kinds)](k)[0]
        statuses[s] = statuses.get(s, 0) + 1
    healthy = (_call(base, "GET", "/healthz")[0] == 200 and
               _call(base, "POST", "/v1/models/tsm/predict", {"path": CLIPS[0]})[0] == 200)
    return {"sent": n, "healthy_after": healthy, "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "server_errors_5xx": sum(v for k, v in statuses.items() if k >= 500), "connection_errors":
                statuses.get(0, 0)}


def _ts_file(work):
    """The stream source: a clip at 25 fps as MPEG-TS (served with stream copy: ffmpeg spends ~no CPU)."""
    import imageio_ffmpeg
    out = os.path.join(work, "stream25.ts")
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-i",
                    os.path.join(ROOT, "tests", "data", "mmaction2_test.mp4"), "-r", "25", "-c:v", "mpeg4", "-q:v", "4",
                    "-g", "25", "-f", "mpegts", out], check=True)
    return out


def _network_streams(ts, n):
    import imageio_ffmpeg
    ports, procs = [], []
    for _ in range(n):
        port = _free_port()
        procs.append(subprocess.Popen([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-re", "-stream_loop",
                                       "-1", "-i", ts, "-c", "copy", "-f", "mpegts", "-listen", "1",
                                       "http://127.0.0.1:{}".format(port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ports.append(port)
    time.sleep(1.0)
    return ["http://127.0.0.1:{}".format(p) for p in ports], procs


def _stream_trial(srv, ts, n, model, warm=6.0, measure=12.0):
    urls, procs = _network_streams(ts, n)
    ids = []
    try:
        for u in urls:
            s, body, _ = _call(srv.base, "POST", "/v1/streams", {"source": u, "model": model, "every": 1})
            if s == 201:
                ids.append(body["id"])
        time.sleep(warm)
        before = {s["id"]: s for s in _call(srv.base, "GET", "/v1/streams")[1]["streams"]}
        time.sleep(measure)
        after = {s["id"]: s for s in _call(srv.base, "GET", "/v1/streams")[1]["streams"]}
    finally:
        for i in ids:
            _call(srv.base, "DELETE", "/v1/streams/" + i)
        for p in procs:
            p.kill()
            p.wait()
    rows = []
    for i in ids:
        a, b = before.get(i), after.get(i)
        if not a or not b:
            continue
        fin, drop = b["frames_in"] - a["frames_in"], b["dropped"] - a["dropped"]
        rows.append({"fps_out": b["fps_out"], "dropped_fraction": drop / max(fin, 1), "p99_ms": b["latency_ms_p99"],
                     "state": b["state"]})
    ok = (len(rows) == n and all(r["state"] == "running" and r["dropped_fraction"] <= 0.01 and r["p99_ms"] is not None
                                 and r["p99_ms"] <= 250 and r["fps_out"] >= 23 for r in rows))
    return {"streams": n, "realtime": ok,
            "dropped_fraction": round(max((r["dropped_fraction"] for r in rows), default=1.0), 4),
            "p99_latency_ms": max((r["p99_ms"] or 1e9 for r in rows), default=None),
            "min_fps_out": min((r["fps_out"] for r in rows), default=0)}


def _restart(srv, ts, seconds=15.0):
    """Events read over SSE while clips load the server; kill -9; restart; which acknowledged ids are there."""
    urls, procs = _network_streams(ts, 1)
    acked, stop = [], [False]
    s, body, _ = _call(srv.base, "POST", "/v1/streams", {"source": urls[0], "model": "mv2_events"})
    newest = _call(srv.base, "GET", "/v1/events?order=desc&limit=1")[1]["events"]
    after = newest[0]["id"] if newest else 0

    def reader():
        req = urllib.request.Request(srv.base + "/v1/events/stream?after={}".format(after))
        try:
            with urllib.request.urlopen(req, timeout=seconds + 30) as r:
                while not stop[0]:
                    line = r.readline().decode()
                    if not line:
                        return
                    if line.startswith("id: "):
                        acked.append(int(line[4:]))
        except OSError:
            return

    def load():
        while not stop[0]:
            _call(srv.base, "POST", "/v1/models/tsm/predict", {"path": CLIPS[2]}, timeout=30)
    threads = [threading.Thread(target=reader, daemon=True)] + [threading.Thread(target=load, daemon=True)
                                                                 for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    srv.stop(kill=True)
    stop[0] = True
    for p in procs:
        p.kill()
        p.wait()
    seen = list(acked)
    with sqlite3.connect(srv.db) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    srv.start()
    have = set()
    cursor = after
    while True:
        page = _call(srv.base, "GET", "/v1/events?after={}&limit=1000".format(cursor))[1]
        have.update(e["id"] for e in page["events"])
        if page["next"] is None:
            break
        cursor = page["next"]
    for st in _call(srv.base, "GET", "/v1/streams")[1]["streams"]:
        _call(srv.base, "DELETE", "/v1/streams/" + st["id"])
    lost = len(set(seen) - have)
    return {"events_acknowledged": len(seen), "events_after_restart": len(set(seen) & have), "lost": lost,
            "integrity_check": integrity, "stream_started": s == 201}


def _max_streams(srv, ts, model, n):
    """The largest n whose trial is real time, searched from ``n`` up by 2 (or down by 1)."""
    best, trials = 0, []
    for _ in range(6):
        r = _stream_trial(srv, ts, n, model)
        trials.append(r)
        print("serve / {} streams of {}: {}".format(n, model, r), flush=True)
        if r["realtime"]:
            best = max(best, n)
            if any(t["streams"] == n + 1 for t in trials) or n >= 16:
                break
            n += 1 if any(t["streams"] == n + 2 for t in trials) else 2
        else:
            if n <= 1 or any(t["streams"] == n - 1 for t in trials):
                break
            n -= 1
    good = [t for t in trials if t["streams"] == best and t["realtime"]]
    return {"model": model, "max_realtime_streams": best,
            "dropped_fraction": good[0]["dropped_fraction"] if good else None,
            "p99_latency_ms": good[0]["p99_latency_ms"] if good else None, "trials": trials}


CHILDREN = {}


def run(a, results):
    out = results.setdefault("serve", {})
    work = tempfile.mkdtemp(prefix="pv_bench_serve_")
    models = _prepare(work)
    offline, refs = _offline(work, a.threads)
    srv = Served(work, models, os.path.join(work, "events.db"))
    try:
        _clients(srv.base, 2, 4)                                                   # warm-up
        seconds = 10 if a.quick else 20
        clips = {"offline_clips_per_s": offline}
        for n in (1, 4, 16):
            r = _clients(srv.base, n, seconds, refs)
            clips["c{}".format(n)] = r
            print("serve / clips, {} clients: {}".format(n, r), flush=True)
        clips["ratio_at_16"] = round(clips["c16"]["clips_per_s"] / offline, 3)
        print("serve / offline eval.py: {} clips/s; ratio at 16 clients {}".format(offline, clips["ratio_at_16"]),
              flush=True)
        out["clips"] = clips
        cap = max(clips["c16"]["clips_per_s"], clips["c4"]["clips_per_s"])
        out["overload"] = _overload(srv, 3 * cap, 15 if a.quick else 30, refs)
        print("serve / overload: {}".format(out["overload"]), flush=True)
        out["bad_requests"] = _bad_requests(srv.base)
        print("serve / bad requests: {}".format(out["bad_requests"]), flush=True)
        ts = _ts_file(work)
        out["streams"] = _max_streams(srv, ts, "mv2_int8", 8)
        out["streams_fp32"] = _max_streams(srv, ts, "mv2", 5)
        out["restart"] = _restart(srv, ts)
        print("serve / restart: {}".format(out["restart"]), flush=True)
    finally:
        srv.stop()
        import shutil
        shutil.rmtree(work, ignore_errors=True)
