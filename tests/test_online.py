"""The streaming recognizer: per-frame logits equal the offline online-mode model on every backend."""
import os

import numpy as np
import paddle
import pytest

from conftest import ROOT, free_port
from paddlevideo import UserError, build_model, load_config
from paddlevideo.data import transforms
from paddlevideo.data.transforms import normalize_pack
from paddlevideo.engine.online import OnlineRecognizer

MV2_ONLINE = os.path.join(ROOT, "configs", "pptsm_mv2_online.yaml")
TSM_SMALL = os.path.join(ROOT, "configs", "tsm_small.yaml")
SMALL = ["MODEL.num_classes=7", "INFER.target_size=64", "INFER.short_size=72", "MODEL.label_list=null"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("online")
    out = {}
    for name, config, over in (("mv2", MV2_ONLINE, SMALL),
                               ("r18", TSM_SMALL, SMALL + ["MODEL.shift_mode=online", "MODEL.width=16"])):
        cfg = load_config(config, over)
        paddle.seed(0)
        model = build_model(cfg)
        model.eval()
        w = str(d / (name + ".pdparams"))
        paddle.save(model.state_dict(), w)
        out[name] = (cfg, model, w)
    return d, out


@pytest.mark.parametrize("name,backend", [("mv2", "dygraph"), ("mv2", "onnxruntime"), ("mv2", "paddle-inference"),
                                          ("r18", "dygraph"), ("r18", "onnxruntime")])
def test_streamed_frame_logits_equal_the_offline_online_model(saved, name, backend):
    d, models = saved
    cfg, model, w = models[name]
    # frames already target_size² while short_size is 72: the offline reader resizes them (72²) and crops 64² —
    # the stream must see the same pixels
    frames = (np.random.RandomState(0).rand(6, 64, 64, 3) * 255).astype("uint8")
    m = cfg.mode("infer")
    m["seg_num"] = 6
    x = transforms.test_views(frames, m)                                              # the offline reader
    ref_frames = model.forward_frames(paddle.to_tensor(x)).numpy()[0]
    ref_clip = model(paddle.to_tensor(x)).numpy()[0]
    rec = OnlineRecognizer(cfg, w, backend=backend, cache_dir=str(d), window=3)
    steps = [rec.step(f) for f in frames]
    got = np.stack([s["logits"] for s in steps])
    np.testing.assert_allclose(got, ref_frames, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(got.mean(0), ref_clip, atol=1e-4, rtol=1e-4)
    assert steps[-1]["label"] == int(np.argmax(got[-3:].sum(0)))          # smoothed over the last 3 steps
    rec.reset()                                                            # a new stream starts from zero caches
    np.testing.assert_allclose(rec.step(frames[0])["logits"], got[0], atol=1e-5)


def test_streams_stepped_together_equal_each_stream_stepped_alone(saved):
    """The server's batched tick: per-stream caches, streams joining late, frames of other sizes."""
    d, models = saved
    cfg, _, w = models["mv2"]
    rng = np.random.RandomState(1)
    a = (rng.rand(6, 64, 80, 3) * 255).astype("uint8")
    b = (rng.rand(4, 90, 72, 3) * 255).astype("uint8")
    rec = OnlineRecognizer(cfg, w, backend="onnxruntime", cache_dir=str(d), window=3)
    alone = []
    for frames in (a, b):
        rec.reset()
        alone.append(np.stack([rec.step(f)["logits"] for f in frames]))
    sa, sb = rec.new_state(), rec.new_state()
    got_a, got_b = [], []
    for t in range(6):
        if t < 2:                                                  # b joins at the third tick
            got_a.append(rec.step_batch([sa], [a[t]])[0]["logits"])
        else:
            ra, rb = rec.step_batch([sa, sb], [a[t], b[t - 2]], [rec.transform(a[t]), rec.transform(b[t - 2])])
            got_a.append(ra["logits"])
            got_b.append(rb["logits"])
    np.testing.assert_allclose(np.stack(got_a), alone[0], atol=1e-5)
    np.testing.assert_allclose(np.stack(got_b), alone[1], atol=1e-5)
    assert sb.steps == 4 and len(sb.history) == 3


def test_frames_are_transformed_and_only_online_models_stream(saved):
    d, models = saved
    cfg, model, w = models["mv2"]
    rec = OnlineRecognizer(cfg, w, backend="dygraph")
    frame = (np.random.RandomState(1).rand(64, 64, 3) * 255).astype("uint8")
    m = cfg.mode("infer")
    m["seg_num"] = 1
    np.testing.assert_array_equal(rec.transform(frame), transforms.test_views(frame[None], m)[0])   # resized like offline
    assert not np.array_equal(rec.transform(frame), normalize_pack(frame[None], 1, 1, cfg.MODEL.image_mean,
                                                                    cfg.MODEL.image_std))
    assert rec.transform(np.zeros((90, 160, 3), "uint8")).shape == (1, 3, 64, 64)     # short side 72, centre 64
    with pytest.raises(UserError, match="MODEL.shift_mode: online"):
        OnlineRecognizer(load_config(TSM_SMALL), None, backend="dygraph")
    with pytest.raises(UserError, match="RGB image"):
        rec.step(np.zeros((64, 64), "uint8"))


def _ffmpeg():
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def test_predict_online_on_a_file_writes_one_line_per_step(saved, tmp_path):
    import json
    from conftest import clip, run_cli
    d, models = saved
    cfg, model, w = models["mv2"]
    out, mp4 = tmp_path / "steps.jsonl", tmp_path / "r.mp4"
    p = run_cli("predict.py", "--config", MV2_ONLINE, *sum((["-o", o] for o in SMALL), []), "--weights", w, "--online",
                "--source", clip("mmaction2_test.mp4"), "--every", 5, "--output", out, "--render", mp4,
                "--backend", "onnxruntime", "--cache_dir", d)
    lines = [json.loads(s) for s in out.read_text().splitlines()]
    import cv2
    cap = cv2.VideoCapture(clip("mmaction2_test.mp4"))
    n, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    assert [s["frame"] for s in lines] == list(range(0, n, 5))            # a file: every 5th frame, none dropped
    assert lines[2]["t"] == pytest.approx(10 / fps, abs=1e-3)
    assert set(lines[0]) == {"t", "frame", "top_k", "label", "latency_ms"} and len(lines[0]["top_k"]) == 5
    assert "0 frames dropped" in p.stderr and mp4.stat().st_size > 0


def test_a_network_stream_that_stops_is_retried_then_reported_in_one_line(saved, tmp_path):
    import json
    import subprocess
    import time
    from conftest import clip, run_cli
    d, models = saved
    cfg, model, w = models["mv2"]
    port = free_port()
    url = "http://127.0.0.1:{}".format(port)
    server = subprocess.Popen([_ffmpeg(), "-loglevel", "error", "-re", "-i", clip("arm_wrestling.mp4"), "-t", "2",
                               "-c:v", "mpeg4", "-q:v", "5", "-f", "mpegts", "-listen", "1", url],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        out = tmp_path / "live.jsonl"
        p = run_cli("predict.py", "--config", MV2_ONLINE, *sum((["-o", o] for o in SMALL), []), "--weights", w,
                    "--online", "--source", url, "--output", out, "--reconnect", 1, "--backend", "onnxruntime",
                    "--cache_dir", d, check=False)
    finally:
        server.kill()
    lines = [json.loads(s) for s in out.read_text().splitlines()]
    assert p.returncode == 2 and len(lines) > 3                        # what came before the stop is kept
    assert "reconnect attempt 1/1" in p.stderr and "Traceback" not in p.stderr
    err = [s for s in p.stderr.splitlines() if s.startswith("error:")]
    assert len(err) == 1 and "stopped delivering frames after 1 consecutive failed reconnect attempts" in err[0]
    bad = run_cli("predict.py", "--config", MV2_ONLINE, *sum((["-o", o] for o in SMALL), []), "--weights", w,
                  "--online", "--source", "7", "--backend", "dygraph", check=False)
    assert bad.returncode == 2 and "camera 7 cannot be opened" in bad.stderr and "Traceback" not in bad.stderr


def test_int8_streaming_tracks_fp32(saved, tmp_path):
    from conftest import clip
    d, models = saved
    cfg, model, w = models["mv2"]
    lst = tmp_path / "calib.list"
    lst.write_text("{}\n{}\n".format(clip("arm_wrestling.mp4"), clip("mmaction2_test.mp4")))
    cfg8 = load_config(MV2_ONLINE, SMALL + ["INFER.precision=int8", "INFER.calibration={}".format(lst)])
    fp32 = OnlineRecognizer(cfg, w, backend="onnxruntime", cache_dir=str(d))
    int8 = OnlineRecognizer(cfg8, w, backend="auto", cache_dir=str(d))
    assert int8.backend == "onnxruntime-int8"
    frames = (np.random.RandomState(2).rand(6, 64, 64, 3) * 255).astype("uint8")
    a = np.stack([fp32.step(f)["logits"] for f in frames])
    b = np.stack([int8.step(f)["logits"] for f in frames])
    assert not np.allclose(a, b, atol=1e-6)                               # really the quantized graph
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95
    with pytest.raises(UserError, match="int8 \\(onnxruntime\\)"):
        OnlineRecognizer(cfg8, w, backend="paddle-inference", cache_dir=str(d))


def test_a_stopped_consumer_leaves_no_thread_or_capture(saved):
    """max_steps, an exception in a step: 20 library calls in one process leave no reader thread blocked on a full
    queue and no capture open."""
    import threading
    from conftest import clip
    from paddlevideo.engine.stream import FrameReader, run_stream
    d, models = saved
    cfg, model, w = models["mv2"]
    rec = OnlineRecognizer(cfg, w, backend="dygraph")
    before = threading.active_count()
    step = rec.step
    calls = []

    def failing(frame):
        calls.append(1)
        if len(calls) % 2 == 0:
            raise RuntimeError("a step failed")
        return step(frame)
    for k in range(20):
        if k % 2:
            rec.step = failing
            with pytest.raises(RuntimeError, match="a step failed"):
                run_stream(cfg, clip("mmaction2_test.mp4"), recognizer=rec, output=os.devnull)
            rec.step = step
        else:
            assert run_stream(cfg, clip("mmaction2_test.mp4"), recognizer=rec, max_steps=2,
                              output=os.devnull)["steps"] == 2
    assert threading.active_count() == before and FrameReader.open_captures == 0


def test_reconnects_count_consecutive_failures_with_back_off(tmp_path):
    """A local stream server stopped and restarted 6 times: the reader keeps going (a budget of 2 consecutive
    attempts is never spent while each restart succeeds), counts and reports every reconnect, then ends when the
    server stays down."""
    import subprocess
    import threading
    import time
    from conftest import clip
    from paddlevideo.engine.stream import FrameReader
    port = free_port()
    url = "http://127.0.0.1:{}".format(port)
    restarts, stop = [], threading.Event()

    def serve():
        for _ in range(6):
            if stop.is_set():
                break
            p = subprocess.Popen([_ffmpeg(), "-loglevel", "error", "-re", "-i", clip("mmaction2_test.mp4"), "-t",
                                  "0.7", "-c:v", "mpeg4", "-q:v", "5", "-f", "mpegts", "-listen", "1", url],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
            restarts.append(1)
    server = threading.Thread(target=serve, daemon=True)
    server.start()
    time.sleep(0.5)
    reader = FrameReader(url, reconnect=2, retry_delay=0.3, max_delay=0.6)
    reader.start()
    frames, deadline = 0, time.time() + 90
    try:
        while time.time() < deadline:
            item = reader.get()
            if item is None:
                break
            frames += 1
    finally:
        stop.set()
        reader.close()
        server.join(40)
    assert len(restarts) == 6 and reader.reconnects >= 6 and frames > 6 * 5, (reader.reconnects, frames)
    assert "after 2 consecutive failed reconnect attempts ({} in total)".format(reader.reconnects) in reader.error
    assert FrameReader.open_captures == 0
