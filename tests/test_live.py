"""The live pipeline: tracker and event rules on hand-made cases, the synthetic stream and its actor detector, the
pipeline on a file and on a local network stream, event scoring, bad input, and PaddleDetection exported detectors
(a tiny model of the same signature, exported here and served as a zip from a local HTTP server)."""
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import zipfile

import numpy as np
import pytest

from conftest import ROOT, run_cli
from paddlevideo import UserError, load_config
from paddlevideo.apps.live import Events, in_zones, read_zones
from paddlevideo.apps.track import Tracker

sys.path.insert(0, os.path.join(ROOT, "data", "dataset", "synthetic"))
import make_synthetic_ava  # noqa: E402

DEMO = os.path.join(ROOT, "configs", "demo_detection.yaml")
DETECTOR = "data.dataset.synthetic.make_synthetic_ava:ActorDetector"


def box(x, y=10, w=40, h=50, s=0.9):
    return [x, y, x + w, y + h, s]


def test_tracker_births_keeps_ids_through_a_crossing_and_ends_tracks():
    tr = Tracker(track_thresh=0.5, new_track_thresh=0.6, match_iou=0.2, min_hits=2, max_misses=2)
    assert tr.update([box(10), box(150, 60)]) == []                      # tentative: no id yet
    out = tr.update([box(14), box(146, 60)])
    assert sorted(t.track_id for t in out) == [1, 2]                      # born after 2 hits
    ids = {}
    for k in range(2, 30):                                                # they cross: a walks right, b left
        out = tr.update([box(10 + 4 * k), box(150 - 4 * k, 40)])
        for t in out:
            ids.setdefault(t.track_id, []).append(t.box[0])
    assert set(ids) == {1, 2}
    assert ids[1] == sorted(ids[1]) and ids[2] == sorted(ids[2], reverse=True)   # no swap at the crossing
    low = tr.update([box(10 + 4 * 30, s=0.3), box(150 - 4 * 30, 40)])     # a low-score box keeps its track
    assert sorted(t.track_id for t in low) == [1, 2]
    for _ in range(2):
        tr.update([box(150 - 4 * 31, 40)])
        assert tr.ended == []                                             # missed twice: lost, not ended
    tr.update([box(150 - 4 * 32, 40)])
    assert [t.track_id for t in tr.ended] == [1]                          # the third miss ends it
    assert [t.track_id for t in tr.finish()] == [2]


def live_cfg(**over):
    cfg = load_config(DEMO, ["LIVE.{}={}".format(k, v) for k, v in over.items()])
    return cfg.live()


def test_event_rules_on_a_hand_computed_score_sequence():
    """Smoothing 1 (none), threshold 0.5, hysteresis 0.2, min_duration 1 s, hold 1 s, updates every 1 s."""
    ev = Events(live_cfg(smooth=1.0, threshold=0.5, hysteresis=0.2, min_duration=1.0, hold=1.0,
                         update_interval=1.0), {3: "move up"}, "cam")
    seq = [(0.0, 0.2), (0.5, 0.6), (1.0, 0.7), (1.5, 0.9), (2.0, 0.4), (2.5, 0.35), (3.0, 0.8), (3.5, 0.2),
           (4.0, 0.25), (4.5, 0.1), (5.0, 0.1)]
    msgs = []
    for t, p in seq:
        probs = np.zeros(9)
        probs[3] = p
        msgs += ev.observe(7, [1, 2, 3, 4], probs, t)
    assert [(m["type"], m["t"]) for m in msgs] == [("start", 1.5), ("update", 2.5), ("update", 3.5), ("end", 4.5)]
    start, end = msgs[0], msgs[-1]
    assert start["t_start"] == 0.5 and start["t_end"] is None           # above since 0.5, 1 s later it starts
    assert end["t_start"] == 0.5 and end["t_end"] == 3.5                 # below 0.3 since 3.5 (0.4/0.35 were not)
    assert set(start) == {"type", "event_id", "source", "track_id", "action_id", "action", "score", "box", "t",
                          "t_start", "t_end"}
    assert start["event_id"] == end["event_id"] and start["action"] == "move up" and start["track_id"] == 7
    probs = np.zeros(9)
    probs[3] = 0.9
    for t in (6.0, 6.5, 7.0):
        msgs = ev.observe(7, [1, 2, 3, 4], probs, t)
    assert msgs[0]["type"] == "start"
    ended = ev.end_track(7, 7.2)                                          # the track ends: its event ends now
    assert [(m["type"], m["t"], m["t_end"]) for m in ended] == [("end", 7.2, 7.2)]
    assert ev.end_all(8.0) == []


def test_zones(tmp_path):
    z = tmp_path / "z.json"
    z.write_text(json.dumps([[[0, 0], [100, 0], [100, 100], [0, 100]]]))
    zones = read_zones(str(z))
    assert in_zones([10, 10, 50, 90], zones) and not in_zones([110, 10, 150, 90], zones)
    bad = tmp_path / "bad.yaml"
    bad.write_text("zones: [[1, 2], [3, 4]]\n")
    with pytest.raises(UserError, match="zone 0 is not a polygon"):
        read_zones(str(bad))


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    """An 8-second stream with 3 actors, its ground truth, and random weights of the demo detector."""
    import paddle
    from paddlevideo import build_model
    d = tmp_path_factory.mktemp("live")
    video, gt = make_synthetic_ava.make_stream(str(d), seed=5, seconds=8, n_actors=3)
    paddle.seed(0)
    cfg = load_config(DEMO, ["MODEL.label_map={}".format(d / "label_map.pbtxt")])
    paddle.save(build_model(cfg).state_dict(), str(d / "w.pdparams"))
    return d


def test_the_stream_ground_truth_and_the_actor_detector(stream):
    import cv2
    gt = json.loads((stream / "stream_gt.json").read_text())
    assert gt["fps"] == 30 and gt["width"] == 240 and gt["height"] == 128 and len(gt["actors"]) == 3
    for a in gt["actors"]:
        assert set(a) == {"actor_id", "boxes", "actions"} and a["boxes"]
        frames = [b[0] for b in a["boxes"]]
        assert frames == sorted(frames) and all(len(b) == 5 for b in a["boxes"])
        for x in a["actions"]:
            assert 0 <= x["start"] < x["end"] <= 8 and 1 <= x["action_id"] <= 8
    det = make_synthetic_ava.ActorDetector()
    cap = cv2.VideoCapture(str(stream / "stream.mp4"))
    hits = total = 0
    from paddlevideo.apps.track import iou_matrix
    for i in range(240):
        ok, img = cap.read()
        if i % 10:
            continue
        found = det(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        for a in gt["actors"]:
            b = [x[1:] for x in a["boxes"] if x[0] == i]
            if b:
                total += 1
                hits += len(found) > 0 and iou_matrix([b[0]], found[:, :4]).max() >= 0.5
    cap.release()
    assert total > 40 and hits / total > 0.85


def live_args(stream, *extra):
    return ["predict.py", "--live", "--config", DEMO, "-o", "MODEL.label_map={}".format(stream / "label_map.pbtxt"),
            "--weights", stream / "w.pdparams", "--detector", DETECTOR, "--backend", "onnxruntime", *extra]


def check_events(path):
    lines = [json.loads(x) for x in open(path)]
    by_id = {}
    for e in lines:
        assert set(e) == {"type", "event_id", "source", "track_id", "action_id", "action", "score", "box", "t",
                          "t_start", "t_end"}
        by_id.setdefault(e["event_id"], []).append(e)
    for eid, es in by_id.items():
        kinds = [e["type"] for e in es]
        assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("end") == 1, (eid, kinds)
        ts = [e["t"] for e in es]
        assert ts == sorted(ts) and all(b - a <= 1.0 + 0.51 for a, b in zip(ts, ts[1:]))   # an update each second
        assert es[-1]["t_end"] is not None and es[-1]["t_start"] <= es[-1]["t_end"]
    return lines


def test_pipeline_on_a_file_tracks_each_actor_and_closes_every_event(stream, tmp_path):
    ev, summ, mp4 = tmp_path / "ev.jsonl", tmp_path / "s.json", tmp_path / "r.mp4"
    p = run_cli(*live_args(stream, "--source", stream / "stream.mp4", "--events", ev, "--output", summ, "--render",
                           mp4, "-o", "LIVE.threshold=0.45"))
    lines = check_events(ev)
    s = json.loads(summ.read_text())
    assert s["frames_processed"] == 240 and s["frames_dropped"] == 0 and s["keyframes"] == 16
    assert s["tracks"] == 3 and s["events"] == sum(e["type"] == "start" for e in lines) > 0
    for k in ("realtime_factor", "processing_fps", "latency_ms_p50", "latency_ms_p99", "window_latency_s"):
        assert s[k] > 0
    assert "[LIVE] 240 frames (0 dropped), 16 keyframes, 3 tracks" in p.stderr
    assert mp4.stat().st_size > 10000
    r = run_cli("scripts/event_eval.py", "--gt", stream / "stream_gt.json", "--events", ev, "--output",
                tmp_path / "r.json")
    res = json.loads((tmp_path / "r.json").read_text())
    assert {"precision", "recall", "f1", "per_action", "start_delay_s", "id_switches"} <= set(res)
    assert res["tracks"] == 3 and res["unassigned_tracks"] == 0 and "F1" in r.stdout     # every track is an actor


def test_event_scoring_on_a_hand_made_case(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from event_eval import evaluate
    gt = {"fps": 10, "actors": [{"actor_id": 0, "boxes": [[f, 0, 0, 10, 10] for f in range(100)],
                                 "actions": [{"action_id": 2, "start": 1.0, "end": 5.0},
                                             {"action_id": 3, "start": 6.0, "end": 8.0}]},
                                {"actor_id": 1, "boxes": [[f, 50, 0, 60, 10] for f in range(100)],
                                 "actions": [{"action_id": 2, "start": 2.0, "end": 4.0}]}]}

    def event(eid, tid, action, start, end, x):
        b = [x, 0, x + 10, 10]
        return [{"type": "start", "event_id": eid, "track_id": tid, "action_id": action, "box": b, "t": start + 0.5,
                 "t_start": start, "t_end": None},
                {"type": "end", "event_id": eid, "track_id": tid, "action_id": action, "box": b, "t": end + 1,
                 "t_start": start, "t_end": end}]
    lines = (event("a", 1, 2, 1.5, 5.0, 0) + event("b", 2, 3, 6.5, 9.0, 0)       # b: tIoU 1.5/3 = 0.5 -> match
             + event("c", 3, 2, 2.0, 2.5, 50) + event("d", 3, 5, 0, 1, 50))      # c: tIoU 0.25; d: no such action
    events = {}
    for e in lines:
        events.setdefault(e["event_id"], {"lines": []})["lines"].append(e)
        events[e["event_id"]][e["type"]] = e
    res = evaluate(gt, events)
    assert (res["matched"], res["events"], res["ground_truth"]) == (2, 4, 3)
    assert res["precision"] == 0.5 and res["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert res["start_delay_s"] == pytest.approx(1.0)        # median of 2.0-1.0 and 7.0-6.0
    assert res["id_switches"] == 1                           # actor 0: track 1, then track 2
    assert res["per_action"]["2"]["matched"] == 1 and res["per_action"]["5"]["precision"] == 0.0


def test_network_stream_keeps_up_in_real_time(stream, tmp_path):
    import imageio_ffmpeg
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = "http://127.0.0.1:{}".format(port)
    server = subprocess.Popen([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-re", "-i",
                               str(stream / "stream.mp4"), "-c:v", "mpeg4", "-q:v", "3", "-f", "mpegts", "-listen",
                               "1", url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import time
        time.sleep(0.7)
        ev, summ = tmp_path / "ev.jsonl", tmp_path / "s.json"
        p = run_cli(*live_args(stream, "--source", url, "--events", ev, "--output", summ, "--reconnect", 0),
                    check=False, timeout=120)
    finally:
        server.kill()
    s = json.loads(summ.read_text())
    check_events(ev)
    assert s["frames_processed"] > 200 and s["dropped_fraction"] <= 0.05 and s["tracks"] >= 3, s
    assert p.returncode in (0, 2) and "Traceback" not in p.stderr       # the stream's end may read as a stop


def test_bad_input_is_one_line_and_events_are_ended(stream, tmp_path):
    env = {"PYTHONPATH": os.path.join(ROOT, "tests")}          # tests/live_plugins.py: two broken detectors
    ok = run_cli(*live_args(stream, "--source", stream / "stream.mp4", "--events", tmp_path / "g.jsonl", "--output",
                            tmp_path / "g.json", "-o", "LIVE.threshold=0.3"), "--detector", "live_plugins:Garbage",
                 env=env)
    assert json.loads((tmp_path / "g.json").read_text())["bad_detections"] == 2 * 16 and "Traceback" not in ok.stderr
    bad = run_cli(*live_args(stream, "--source", stream / "stream.mp4", "--events", tmp_path / "b.jsonl",
                             "-o", "LIVE.threshold=0.3", "-o", "LIVE.min_duration=0"), "--detector", "live_plugins:Boom",
                  env=env, check=False)
    err = [x for x in bad.stderr.splitlines() if x.startswith("error:")]
    assert bad.returncode == 2 and len(err) == 1 and "live_plugins:Boom raised RuntimeError: the plugin broke" in err[0]
    assert "Traceback" not in bad.stderr
    check_events(tmp_path / "b.jsonl")                                    # what started has ended
    from paddlevideo.apps.live import LivePipeline
    with pytest.raises(UserError, match="--live needs a detection model"):        # checked before anything loads
        LivePipeline(load_config(os.path.join(ROOT, "configs", "tsm_small.yaml")))
    dead = run_cli(*live_args(stream, "--source", "http://127.0.0.1:9/none", "--reconnect", 0), check=False)
    assert dead.returncode == 2 and "cannot be opened" in dead.stderr and "Traceback" not in dead.stderr


def tiny_ppdet(folder):
    """A PaddleDetection-style export: inputs image/im_shape/scale_factor, output bbox [M, 6] + bbox_num, one
    'person' box at (10, 20)-(50, 60) in the resized image, returned in original pixels (divided by the scale)."""
    import paddle

    class Tiny(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.conv = paddle.nn.Conv2D(3, 1, 1)

        def forward(self, image, im_shape, scale_factor):
            score = (paddle.nn.functional.sigmoid(self.conv(image).mean()) + im_shape.sum()) * 0 + 0.9
            b = paddle.to_tensor([10.0, 20.0, 50.0, 60.0]).reshape([1, 4])
            sy, sx = scale_factor[:, 0:1], scale_factor[:, 1:2]
            b = b / paddle.concat([sx, sy, sx, sy], axis=1)
            row = paddle.concat([paddle.zeros([1, 1]), score.reshape([1, 1]), b], axis=1)
            junk = paddle.to_tensor([[1.0, 0.99, 0.0, 0.0, 5.0, 5.0]])          # class 1 (not a person)
            return paddle.concat([row, junk], axis=0), paddle.to_tensor([2], "int32")
    os.makedirs(folder, exist_ok=True)
    model = Tiny()
    model.eval()
    specs = [paddle.static.InputSpec([None, 3, 64, 64], "float32", "image"),
             paddle.static.InputSpec([None, 2], "float32", "im_shape"),
             paddle.static.InputSpec([None, 2], "float32", "scale_factor")]
    paddle.jit.save(paddle.jit.to_static(model, input_spec=specs, full_graph=True), os.path.join(folder, "model"),
                    input_spec=specs)
    with open(os.path.join(folder, "infer_cfg.yml"), "w") as f:
        f.write("mode: paddle\ndraw_threshold: 0.5\narch: PPYOLOE\nlabel_list:\n- person\n- car\nPreprocess:\n"
                "- type: Resize\n  target_size: [64, 64]\n  keep_ratio: false\n  interp: 1\n"
                "- type: NormalizeImage\n  mean: [0.485, 0.456, 0.406]\n  std: [0.229, 0.224, 0.225]\n"
                "  is_scale: true\n- type: Permute\n")


def test_a_paddledetection_export_downloaded_as_a_zip_finds_persons(tmp_path):
    from paddlevideo.apps.persons import load_detector
    tiny_ppdet(str(tmp_path / "tiny_det" / "tiny_det"))
    archive = tmp_path / "serve" / "tiny_det.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as z:
        for name in os.listdir(tmp_path / "tiny_det" / "tiny_det"):
            z.write(tmp_path / "tiny_det" / "tiny_det" / name, "tiny_det/" + name)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(archive.parent), **k)

        def log_message(self, *a):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:{}/tiny_det.zip".format(server.server_address[1])
        with pytest.raises(UserError, match="corrupt"):
            load_detector("ppdet:{}#md5={}".format(url, "0" * 32), str(tmp_path / "cache_bad"))
        det = load_detector("ppdet:{}#md5={}".format(url, md5), str(tmp_path / "cache"))
    finally:
        server.shutdown()
        server.server_close()
    frame = np.zeros((128, 256, 3), np.uint8)
    out = det(frame)                      # resized 256x128 -> 64x64: sx = 0.25, sy = 0.5
    np.testing.assert_allclose(out, [[40, 40, 200, 120, 0.9]], atol=1e-3)
    assert os.path.isfile(tmp_path / "cache" / "tiny_det" / "infer_cfg.yml")
    with pytest.raises(UserError, match="not a PaddleDetection export"):
        load_detector("ppdet:{}".format(tmp_path))
