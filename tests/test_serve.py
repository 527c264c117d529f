"""The HTTP service (serve.py): one server with tiny models (recognition, online recognition, detection), loaded once
per module; clips equal predict.py, batching, back-pressure, errors, token, streams with events (SQLite, SSE,
MJPEG), and the web page in headless Chromium.  The batcher, the event store and the models file are tested
in-process (fast lane)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from conftest import DATA, ROOT, free_port, run_cli
from paddlevideo import UserError, load_config
from paddlevideo.serving.batcher import Batcher, DeadlineExceeded
from paddlevideo.serving.errors import ApiError, data_path
from paddlevideo.serving.events import EventStore
from paddlevideo.serving.models import check_spec, read_models

TOKEN = "s3cret-token"
SMALL_TSM = ["MODEL.width=16", "INFER.target_size=64", "INFER.short_size=72", "INFER.num_reader_threads=0"]
SMALL_MV2 = ["MODEL.num_classes=7", "INFER.target_size=64", "INFER.short_size=72", "MODEL.label_list=null",
             "LIVE.threshold=0.3", "LIVE.min_duration=0.2", "LIVE.hold=0.2"]
SMALL_DET = ["MODEL.label_map=null", "LIVE.threshold=0.05", "LIVE.min_duration=0", "LIVE.min_hits=1"]


# -- in-process: the batcher, the models file, data roots, the event store ------------------------------------

def test_batcher_coalesces_rows_in_order_and_skips_cancelled_and_late_jobs():
    calls, gate = [], threading.Event()

    def runner(x):
        gate.wait(5)
        calls.append(x.shape[0])
        return x.reshape(len(x), -1).sum(axis=1, keepdims=True) + 0.5
    b = Batcher(runner, max_batch=8, max_wait_ms=0)         # 0: only what is already queued joins a batch
    first = b.submit(np.ones((1, 2), np.float32))          # runs alone: the runner is held by the gate
    time.sleep(0.1)
    rows = [2, 3, 1, 4, 2]
    futs = [b.submit(np.full((n, 2), k, np.float32)) for k, n in enumerate(rows)]
    late = b.submit(np.ones((1, 2), np.float32), deadline=time.monotonic() - 1)
    gone = b.submit(np.ones((1, 2), np.float32))
    gone.cancel()
    gate.set()
    outs = [f.result(5) for f in futs]
    assert first.result(5).tolist() == [[2.5]]
    for k, (n, out) in enumerate(zip(rows, outs)):
        assert out.shape == (n, 1) and np.all(out == 2 * k + 0.5)       # each job gets its own rows back
    assert calls == [1, 6, 6]                 # 2+3+1 = 6 (4 more would exceed 8), then 4+2; late/cancelled not run
    with pytest.raises(DeadlineExceeded):
        late.result(5)
    assert gone.cancelled()
    multi = b.submit(np.ones((3, 2), np.float32), np.ones(3))      # two inputs: run as is, never coalesced
    with pytest.raises(TypeError):
        multi.result(5)
    b.close()


def test_models_file_errors_name_the_file_model_and_key(tmp_path):
    w = tmp_path / "m.pdparams"
    w.write_bytes(b"x")
    f = tmp_path / "models.yaml"
    for text, words in (("a: {weights: m.pdparams, max_batch: 0}", ["max_batch", "at least 1", "'a'"]),
                        ("a: {weights: m.pdparams, batch: 4}", ["unknown key batch", "'a'"]),
                        ("a: {weights: nope.pdparams}", ["does not exist"]),
                        ("a: {config: x.yaml}", ["needs weights"]),
                        ("a: {weights: m.pdparams, backend: tpu}", ["backend 'tpu'"]),
                        ("a: [1, 2", ["line", "not valid YAML"]),
                        ("[]", ["mapping"])):
        f.write_text(text)
        with pytest.raises(UserError) as e:
            read_models(str(f))
        assert all(w_ in str(e.value) for w_ in words) and str(f) in str(e.value) and "\n" not in str(e.value), text
    f.write_text("a: {weights: m.pdparams, max_wait_ms: 3}")
    spec = read_models(str(f))["a"]
    assert spec["weights"] == str(w) and spec["max_wait_ms"] == 3.0 and spec["max_queue"] == 16
    with pytest.raises(UserError):
        check_spec("b", {"weights": str(w), "max_batch": True}, "x")


def test_default_models_are_the_demos_checkpoints_or_one_line(tmp_path):
    from paddlevideo.serving.models import default_models
    with pytest.raises(UserError) as e:
        default_models(str(tmp_path))
    assert "run a demo first" in str(e.value)
    for rel in ("demo/tsm/TSM_final", "demo/tsn/TSN_final", "demo_live/model/SLOWFAST_AVA_final",
                "quick_demo/checkpoints/TSM_epoch3"):
        os.makedirs(tmp_path / os.path.dirname(rel), exist_ok=True)
        (tmp_path / (rel + ".pdparams")).write_bytes(b"x")
        (tmp_path / (rel + ".yaml")).write_text("MODEL: {}\n")
    (tmp_path / "demo_live" / "model" / "serve.yaml").write_text("detector: pkg.mod:Detector\nmax_batch: 2\n")
    specs = default_models(str(tmp_path))
    assert sorted(specs) == ["demo", "demo-tsn", "demo_live"]          # epoch checkpoints are not served
    assert specs["demo_live"]["detector"] == "pkg.mod:Detector" and specs["demo_live"]["max_batch"] == 2
    assert specs["demo-tsn"]["weights"] == str(tmp_path / "demo/tsn/TSN_final.pdparams")


def test_paths_must_lie_under_a_data_root_even_through_symlinks(tmp_path):
    root, other = tmp_path / "root", tmp_path / "other"
    root.mkdir()
    other.mkdir()
    (root / "a.mp4").write_bytes(b"x")
    (other / "b.mp4").write_bytes(b"x")
    os.symlink(other / "b.mp4", root / "link.mp4")
    assert data_path("a.mp4", [str(root)]) == os.path.realpath(root / "a.mp4")
    for p, status in (("../other/b.mp4", 403), (str(other / "b.mp4"), 403), ("link.mp4", 403), ("nope.mp4", 404),
                      ("", 400), ("a\x00.mp4", 400)):
        with pytest.raises(ApiError) as e:
            data_path(p, [str(root)])
        assert e.value.status == status, p
    with pytest.raises(ApiError) as e:
        data_path("a.mp4", [])
    assert e.value.status == 403


def test_event_store_filters_pages_and_retention(tmp_path):
    s = EventStore(str(tmp_path / "ev.db"), max_count=30)
    for k in range(40):
        e = {"type": "start" if k % 2 == 0 else "end", "event_id": "e{}".format(k // 2), "track_id": k % 3,
             "action": "wave" if k < 20 else "run", "action_id": 1, "t": float(k), "box": [0, 0, 1, 1]}
        s.add(e, "s1" if k % 4 < 2 else "s2", b"\xff\xd8jpeg" if k % 5 == 0 else None)
    s.prune()
    assert s.count() == 30                                    # the newest 30 kept
    rows = s.query(limit=1000)
    assert [r["id"] for r in rows] == list(range(11, 41))
    assert all(r["track_id"] == 1 and r["stream"] == "s2" and r["action"] == "run"
               for r in s.query(stream="s2", action="run", track=1))
    page1 = s.query(limit=7)
    page2 = s.query(after=page1[-1]["id"], limit=7)
    assert [r["id"] for r in page1 + page2] == list(range(11, 25))
    assert s.snapshot(16) == b"\xff\xd8jpeg" and s.snapshot(15) is None     # id k+1 has one when k % 5 == 0
    assert s.query(since=time.time() + 10) == [] and len(s.query(until=time.time() + 10, limit=100)) == 30
    s.db.execute("UPDATE events SET wall = wall - 7200 WHERE id <= 20")      # ten of them two hours old
    s.max_age_s = 3600
    s.prune()
    assert s.count() == 20 and min(r["id"] for r in s.query(limit=100)) == 21
    assert s.check() == "ok"


def test_acknowledged_events_survive_a_killed_writer(tmp_path):
    db = tmp_path / "ev.db"
    code = ("import sys, time; sys.path.insert(0, {root!r})\n"
            "from paddlevideo.serving.events import EventStore\n"
            "s = EventStore({db!r})\n"
            "for k in range(100000):\n"
            "    i = s.add({{'type': 'start', 'event_id': str(k), 't': 0.0, 'box': [0, 0, 1, 1]}}, 's', b'x' * 2000)\n"
            "    print(i, flush=True)\n").format(root=ROOT, db=str(db))
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    acked = []
    for line in p.stdout:
        acked.append(int(line))
        if len(acked) == 300:
            p.send_signal(signal.SIGKILL)
            break
    p.wait(10)
    acked += [int(x) for x in p.stdout.read().split()]
    s = EventStore(str(db))
    assert s.check() == "ok"
    have = {r["id"] for r in s.query(limit=100000)}
    assert set(acked) <= have and len(acked) >= 300


# -- one server for the rest ----------------------------------------------------------------------------------

class Client:
    def __init__(self, base, token=TOKEN):
        self.base, self.token = base, token

    def call(self, method, path, body=None, headers=None, token=True, timeout=60, raw=False):
        h = dict(headers or {})
        if token and self.token:
            h["Authorization"] = "Bearer " + self.token
        data = body
        if isinstance(body, (dict, list)):
            data, h["Content-Type"] = json.dumps(body).encode(), "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                payload, status, hdrs = r.read(), r.status, r.headers
        except urllib.error.HTTPError as e:
            payload, status, hdrs = e.read(), e.code, e.headers
        if raw:
            return status, payload, hdrs
        return status, (json.loads(payload) if payload[:1] in (b"{", b"[") else payload)

    def raw_head(self, method, path, headers):
        """Send only the request head (say, a Content-Length over the limit) and read the answer: the server must
        answer without waiting for the body."""
        import socket
        host, port = self.base[len("http://"):].split(":")
        head = "{} {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n{}\r\n".format(
            method, path, host, self.token, "".join("{}: {}\r\n".format(k, v) for k, v in headers.items()))
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(head.encode())
            data = b""
            while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + int(
                    next((ln.split(b":")[1] for ln in data.split(b"\r\n") if ln.lower().startswith(b"content-length")),
                         b"0")):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        status = int(data.split(b" ", 2)[1])
        return status, json.loads(data.split(b"\r\n\r\n", 1)[1])

    def upload(self, path, model, query="", name=None, token=True):
        boundary = "pvboundary123"
        with open(path, "rb") as f:
            data = f.read()
        body = ("--{b}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"{n}\"\r\nContent-Type: "
                "application/octet-stream\r\n\r\n").format(b=boundary, n=name or os.path.basename(path)).encode() \
            + data + "\r\n--{}--\r\n".format(boundary).encode()
        return self.call("POST", "/v1/models/{}/predict{}".format(model, query), body,
                         {"Content-Type": "multipart/form-data; boundary=" + boundary}, token=token)


def same_top_k(a, b):
    """Equal classes and labels; scores equal up to the float noise of another batch composition."""
    assert [(t["class"], t["label"]) for t in a["top_k"]] == [(t["class"], t["label"]) for t in b["top_k"]]
    np.testing.assert_allclose([t["score"] for t in a["top_k"]], [t["score"] for t in b["top_k"]], atol=1e-5)


def make_models(d):
    """Tiny random-weight checkpoints with their configs beside them (as train.py writes them)."""
    import paddle
    from paddlevideo import build_model
    from paddlevideo.config import save_config
    for name, config, over in (("tsm", "tsm_small.yaml", SMALL_TSM), ("mv2", "pptsm_mv2_online.yaml", SMALL_MV2),
                               ("det", "demo_detection.yaml", SMALL_DET)):
        cfg = load_config(os.path.join(ROOT, "configs", config), over)
        paddle.seed(0)
        m = build_model(cfg)
        m.eval()
        paddle.save(m.state_dict(), str(d / (name + ".pdparams")))
        save_config(cfg, str(d / (name + ".yaml")))


def start_server(tmp, port, models_yaml, extra=()):
    log = open(tmp / "serve-{}.log".format(port), "w")
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, "serve.py"), "--models", str(models_yaml), "--port",
                          str(port), "--token", TOKEN, "--data_root", str(tmp / "data"), "--db", str(tmp / "ev.db"),
                          "--max_upload_mb", "2"] + list(extra), stdout=log, stderr=subprocess.STDOUT,
                         env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "tests")))
    c = Client("http://127.0.0.1:{}".format(port))
    deadline = time.time() + 240
    while time.time() < deadline:
        if p.poll() is not None:
            raise AssertionError("serve.py exited: " + (tmp / "serve-{}.log".format(port)).read_text()[-2000:])
        try:
            if c.call("GET", "/readyz", timeout=2)[0] == 200:
                return p, c
        except OSError:
            pass
        time.sleep(0.5)
    p.kill()
    raise AssertionError("serve.py did not become ready")


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    (tmp / "models").mkdir()
    (tmp / "data").mkdir()
    make_models(tmp / "models")
    for name in ("mmaction2_test.mp4", "eivideo_example.mp4", "mmaction2_test.avi"):
        shutil.copy(os.path.join(DATA, name), tmp / "data" / name)
    (tmp / "data" / "notes.mp4").write_text("not a video\n")
    (tmp / "models.yaml").write_text(
        "tsm: {weights: models/tsm.pdparams, max_batch: 8, max_wait_ms: 30}\n"
        "mv2: {weights: models/mv2.pdparams}\n"
        "det: {weights: models/det.pdparams, detector: 'live_plugins:Fixed'}\n"
        "tight: {weights: models/tsm.pdparams, max_batch: 1, max_wait_ms: 0, max_queue: 1}\n"
        "hurried: {weights: models/tsm.pdparams, timeout_s: 0.001}\n")
    port = free_port()
    p, c = start_server(tmp, port, tmp / "models.yaml")
    yield c, tmp, p
    stop(p)


def test_health_models_and_the_token(server):
    c, tmp, _ = server
    assert c.call("GET", "/healthz", token=False) == (200, {"status": "ok"})
    status, body = c.call("GET", "/v1/models", token=False)
    assert status == 401 and "token" in body["error"]
    assert c.call("GET", "/v1/models?access_token=" + TOKEN, token=False)[0] == 200
    assert c.call("GET", "/v1/models", headers={"Authorization": "Bearer wrong"}, token=False)[0] == 401
    status, body = c.call("GET", "/v1/models")
    by = {m["name"]: m for m in body["models"]}
    assert by["tsm"]["task"] == "classification" and by["tsm"]["stream_mode"] == "window"
    assert by["mv2"]["stream_mode"] == "online" and by["det"]["task"] == "detection"
    assert by["det"]["stream_mode"] == "live" and by["tsm"]["batch"]["max_batch"] == 8
    assert by["tsm"]["backend"] == "onnxruntime" and by["tsm"]["num_classes"] == 5
    assert c.call("GET", "/readyz")[1]["ready"] is True
    status, page = c.call("GET", "/")
    assert status == 200 and b"<title>PaddleVideo serving</title>" in page
    assert c.call("GET", "/openapi.json")[1]["paths"]["/v1/models/{name}/predict"]


@pytest.fixture(scope="module")
def cli_record(server):
    """predict.py's record for mmaction2_test.mp4 with the served tsm model (run once)."""
    c, tmp, _ = server
    out = tmp / "cli.json"
    run_cli("predict.py", "--weights", tmp / "models" / "tsm.pdparams", "--video_path",
            tmp / "data" / "mmaction2_test.mp4", "--output", out)
    return json.loads(out.read_text())[0]


def test_clips_equal_predict_py_and_requests_are_batched(server, cli_record):
    c, tmp, _ = server
    want = cli_record
    status, got = c.upload(tmp / "data" / "mmaction2_test.mp4", "tsm")
    assert status == 200 and got["video"] == "mmaction2_test.mp4"
    same_top_k(got, want)
    status, by_path = c.call("POST", "/v1/models/tsm/predict", {"path": "mmaction2_test.mp4"})
    assert status == 200
    same_top_k(by_path, got)
    results = [None] * 12

    def one(k):
        name = ("mmaction2_test.mp4", "eivideo_example.mp4", "mmaction2_test.avi")[k % 3]
        results[k] = c.call("POST", "/v1/models/tsm/predict", {"path": name})
    threads = [threading.Thread(target=one, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r[0] == 200 for r in results)
    for k in range(3, 12):
        same_top_k(results[k][1], results[k % 3][1])       # the same clip, the same answer (batched differently)
    metrics = c.call("GET", "/metrics")[1].decode()
    calls = float(next(ln.split()[-1] for ln in metrics.splitlines()
                       if ln.startswith('pv_batch_requests_count{model="tsm"}')))
    assert calls < 14, "12 concurrent requests (+2) took {} model calls: not batched".format(calls)
    assert 'pv_requests_total{method="POST",route="/v1/models/{name}/predict",status="200"}' in metrics
    status, tl = c.call("POST", "/v1/models/tsm/predict?timeline=1&window=2&stride=1", {"path": "mmaction2_test.mp4"})
    assert status == 200 and len(tl["windows"]) == 9 and tl["segments"]


def test_detection_clip_equals_predict_py(server):
    c, tmp, _ = server
    out = tmp / "det.json"
    run_cli("predict.py", "--weights", tmp / "models" / "det.pdparams", "--video_path", tmp / "data" / "mmaction2_test.mp4",
            "--detector", "live_plugins:Fixed", "--stride", 2, "--threshold", 0.0, "--output", out,
            env={"PYTHONPATH": os.path.join(ROOT, "tests")})
    want = json.loads(out.read_text())
    status, got = c.upload(tmp / "data" / "mmaction2_test.mp4", "det", "?stride=2&threshold=0")
    assert status == 200 and len(got["keyframes"]) == len(want["keyframes"]) == 5
    for a, b in zip(got["keyframes"], want["keyframes"]):
        assert a["time"] == b["time"] and len(a["persons"]) == len(b["persons"]) == 1
        np.testing.assert_allclose([x["score"] for x in a["persons"][0]["actions"]],
                                   [x["score"] for x in b["persons"][0]["actions"]], atol=1e-5)


def test_bad_requests_get_the_right_status_and_one_line(server):
    c, tmp, _ = server
    cases = [
        (c.call("POST", "/v1/models/nope/predict", {"path": "mmaction2_test.mp4"}), 404, "no model named"),
        (c.call("POST", "/v1/models/tsm/predict", {"path": "../../etc/passwd"}), 403, "outside"),
        (c.call("POST", "/v1/models/tsm/predict", {"path": "/etc/hostname"}), 403, "outside"),
        (c.call("POST", "/v1/models/tsm/predict", {"path": "missing.mp4"}), 404, "not a file"),
        (c.call("POST", "/v1/models/tsm/predict", {"path": "notes.mp4"}), 422, "not a decodable video"),
        (c.upload(tmp / "data" / "notes.mp4", "tsm"), 422, "notes.mp4"),
        (c.call("POST", "/v1/models/tsm/predict", {"path": 3}), 400, "path"),
        (c.call("POST", "/v1/models/tsm/predict", b"{bad json", {"Content-Type": "application/json"}), 400, "JSON"),
        (c.call("POST", "/v1/models/tsm/predict", b"x", {"Content-Type": "text/plain"}), 415, "multipart"),
        (c.call("POST", "/v1/models/tsm/predict?window=abc", {"path": "a"}), 400, "window"),
        (c.call("POST", "/v1/models/tsm/predict?timeline=1", {"path": "mmaction2_test.mp4"}), 400, "window"),
        (c.call("POST", "/v1/models/det/predict?timeline=1&window=2", {"path": "mmaction2_test.mp4"}), 400, "detect"),
        (c.call("POST", "/v1/models/tsm/predict", b"--x\r\nContent-Disposition: form-data; name=\"video\"; "
                b"filename=\"a.mp4\"\r\n\r\nabc", {"Content-Type": "multipart/form-data; boundary=x"}), 400, "video"),
        (c.raw_head("POST", "/v1/models/tsm/predict", {"Content-Type": "application/json",
                                                        "Content-Length": str(3 << 20)}), 413, "limit"),
        (c.call("GET", "/v1/nothing"), 404, "no such route"),
        (c.call("GET", "/v1/models", headers={"X-Big": "a" * (40 << 10)}), 431, "headers"),
        (c.call("DELETE", "/v1/models"), 405, "not allowed"),
        (c.call("POST", "/v1/models/hurried/predict", {"path": "mmaction2_test.mp4"}), 504, "timeout"),
        (c.call("GET", "/v1/events?limit=0"), 400, "limit"),
        (c.call("GET", "/v1/streams/nope"), 404, "no stream"),
        (c.call("POST", "/v1/streams", {"source": "../x.mp4", "model": "tsm"}), 403, "outside"),
        (c.call("POST", "/v1/streams", {"source": "mmaction2_test.mp4", "model": "nope"}), 404, "no model"),
        (c.call("POST", "/v1/streams", {"source": "ftp://h/x", "model": "tsm"}), 400, "scheme"),
        (c.call("POST", "/v1/streams", {"source": "mmaction2_test.mp4", "model": "tsm", "every": 0}), 400, "every"),
        (c.call("POST", "/v1/streams", {"source": "notes.mp4", "model": "tsm"}), 422, "cannot be opened"),
        (c.call("POST", "/v1/streams", {"source": "x", "model": "tsm", "colour": 1}), 400, "unknown field"),
    ]
    for (status, body), want, words in cases:
        assert status == want, (want, body)
        assert isinstance(body, dict) and "\n" not in body["error"] and "Traceback" not in body["error"], body
        assert words is None or words in body["error"], (words, body)
    assert "/tmp" not in cases[5][0][1]["error"]                # the upload's name, not the server's temp path
    assert c.call("GET", "/healthz")[0] == 200


def test_a_full_queue_answers_503_at_once_with_retry_after(server):
    c, tmp, _ = server
    results = []

    def one():
        t0 = time.time()
        status, body, hdrs = c.call("POST", "/v1/models/tight/predict", json.dumps({"path": "eivideo_example.mp4"})
                                    .encode(), {"Content-Type": "application/json"}, raw=True)
        results.append((status, time.time() - t0, hdrs.get("Retry-After")))
    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = sorted(r[0] for r in results)
    assert statuses.count(200) >= 1 and statuses.count(503) >= 1 and set(statuses) <= {200, 503}, statuses
    assert all(r[2] == "1" for r in results if r[0] == 503)
    fastest_ok = min(r[1] for r in results if r[0] == 200)
    assert all(r[1] < fastest_ok for r in results if r[0] == 503)     # rejected before any work


def _network_stream(path, port, loops=1):
    import imageio_ffmpeg
    return subprocess.Popen([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-re", "-stream_loop", str(loops),
                             "-i", str(path), "-c:v", "mpeg4", "-q:v", "3", "-f", "mpegts", "-listen", "1",
                             "http://127.0.0.1:{}".format(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait(fn, timeout=60, every=0.2):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(every)
    raise AssertionError("timed out waiting")


class Hook:
    """A local webhook receiver (127.0.0.1): the JSON bodies POSTed to it."""

    def __enter__(self):
        import http.server
        got = self.got = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:{}/hook".format(self.httpd.server_address[1])
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_streams_step_together_write_events_and_serve_views(server):
    c, tmp, _ = server
    port = free_port()
    ff = _network_stream(tmp / "data" / "mmaction2_test.mp4", port)
    hook = Hook().__enter__()
    try:
        time.sleep(0.7)
        status, net = c.call("POST", "/v1/streams", {"source": "http://127.0.0.1:{}".format(port), "model": "mv2",
                                                     "webhook": hook.url})
        assert status == 201 and net["mode"] == "online"
        status, f = c.call("POST", "/v1/streams", {"source": "eivideo_example.mp4", "model": "mv2"})
        status2, det = c.call("POST", "/v1/streams", {"source": "mmaction2_test.mp4", "model": "det"})
        assert status == status2 == 201 and det["mode"] == "live"
        st = _wait(lambda: [s for s in c.call("GET", "/v1/streams")[1]["streams"]
                            if s["id"] == net["id"] and s["frames_out"] >= 60])[0]
        assert st["state"] == "running" and st["label"] is not None and st["fps_in"] > 10
        status, jpg, hdrs = c.call("GET", "/v1/streams/{}/frame.jpg".format(net["id"]), raw=True)
        assert status == 200 and jpg[:2] == b"\xff\xd8" and hdrs["Content-Type"] == "image/jpeg"
        req = urllib.request.Request(c.base + "/v1/streams/{}/mjpeg".format(net["id"]),
                                     headers={"Authorization": "Bearer " + TOKEN})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            head = r.read(200)
        assert head.startswith(b"--frame\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8")
        first = _wait(lambda: c.call("GET", "/v1/events?stream={}&limit=1".format(net["id"]))[1]["events"])[0]
        assert first["type"] == "start" and first["track_id"] is None and first["has_snapshot"]
        assert c.call("GET", "/v1/events/{}/snapshot.jpg".format(first["id"]), raw=True)[1][:2] == b"\xff\xd8"
        # server-sent events from Last-Event-ID: every later event, in order, no gap
        req = urllib.request.Request(c.base + "/v1/events/stream?stream={}".format(net["id"]),
                                     headers={"Authorization": "Bearer " + TOKEN, "Last-Event-ID": str(first["id"])})
        ids = []
        with urllib.request.urlopen(req, timeout=20) as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            while len(ids) < 2:
                line = r.readline().decode()
                if line.startswith("id: "):
                    ids.append(int(line[4:]))
        stored = [e["id"] for e in c.call("GET", "/v1/events?stream={}&after={}&limit=2".format(
            net["id"], first["id"]))[1]["events"]]
        assert ids == stored and ids[0] > first["id"]
        _wait(lambda: c.call("GET", "/v1/streams/" + det["id"])[1]["frames_out"] >= 60)
        metrics = c.call("GET", "/metrics")[1].decode()
        assert 'pv_stream_fps_out{model="mv2",stream="%s"}' % net["id"] in metrics
        for sid in (net["id"], f["id"], det["id"]):
            status, final = c.call("DELETE", "/v1/streams/" + sid)
            assert status == 200 and final["state"] in ("stopped", "ended"), final
        assert c.call("GET", "/v1/streams")[1]["streams"] == []
        assert final is not None
    finally:
        ff.kill()
        ff.wait()
        hook.__exit__()
    stored = c.call("GET", "/v1/events?stream={}&limit=1000".format(net["id"]))[1]["events"]
    posted = [(e["event_id"], e["type"], e["stream"]) for e in hook.got]
    assert posted and posted == [(e["event_id"], e["type"], net["id"]) for e in stored][:len(posted)]
    for sid in (net["id"], f["id"], det["id"]):                   # every start got exactly one end
        evs = c.call("GET", "/v1/events?stream={}&limit=1000".format(sid))[1]["events"]
        starts = {e["event_id"] for e in evs if e["type"] == "start"}
        ends = [e["event_id"] for e in evs if e["type"] == "end"]
        assert sorted(ends) == sorted(starts), sid
    det_events = c.call("GET", "/v1/events?stream={}&limit=1000".format(det["id"]))[1]["events"]
    assert det_events and all(e["track_id"] == 1 for e in det_events)          # the Fixed detector's person


def test_the_web_page_in_headless_chromium(server, cli_record):
    """A real browser uploads a clip and sees predict.py's top label; adds a network stream, sees its picture change
    and an event row appear."""
    if not shutil.which("chromedriver"):
        pytest.fail("chromedriver is missing: bash run.sh test installs Debian's chromium + chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
    c, tmp, _ = server
    want = cli_record["top_k"][0]["label"]
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", "--window-size=1200,1400", "--user-data-dir=" + str(tmp / "chrome")):
        opts.add_argument(a)
    from selenium.webdriver.chrome.service import Service
    drv = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    port = free_port()
    ff = _network_stream(tmp / "data" / "mmaction2_test.mp4", port)
    try:
        drv.get(c.base + "/?access_token=" + TOKEN)
        wait = WebDriverWait(drv, 60)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#predict-model option")) == 5)
        Select(drv.find_element(By.ID, "predict-model")).select_by_value("tsm")
        drv.find_element(By.ID, "predict-file").send_keys(str(tmp / "data" / "mmaction2_test.mp4"))
        drv.find_element(By.ID, "predict-button").click()
        top = wait.until(lambda d: d.find_elements(By.ID, "top1"))[0]
        assert top.text == want
        assert len(drv.find_elements(By.CSS_SELECTOR, "#top5 .bar")) == 5
        drv.find_element(By.ID, "stream-source").send_keys("http://127.0.0.1:{}".format(port))
        Select(drv.find_element(By.ID, "stream-model")).select_by_value("mv2")
        drv.find_element(By.ID, "stream-add").click()
        img = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".stream img.live"))[0]
        wait.until(lambda d: d.execute_script("return arguments[0].naturalWidth", img) > 0)
        shots = [img.screenshot_as_png]
        wait.until(lambda d: img.screenshot_as_png != shots[0])                   # the picture changes
        row = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#events tbody tr.event"))[0]
        assert row.text
        if os.environ.get("PV_SCREENSHOT"):
            drv.save_screenshot(os.environ["PV_SCREENSHOT"])
    finally:
        drv.quit()
        ff.kill()
        ff.wait()
        for s in c.call("GET", "/v1/streams")[1]["streams"]:
            c.call("DELETE", "/v1/streams/" + s["id"])
