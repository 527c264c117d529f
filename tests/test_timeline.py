"""Long-video timeline: window plan and segment merging against written-out references; a video of
several minutes made from the real test clips runs through predict.py --window with streaming decode
(peak RSS measured against a short video), window scores equal the model on the same frames, render."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import paddle
import pytest

from conftest import DATA, ROOT
from paddlevideo import build_model, load_config
from paddlevideo.data.transforms import scale_short_side, transform_clip
from paddlevideo.engine.timeline import merge_segments, plan_windows, window_indices

TSM_SMALL = os.path.join(ROOT, "configs", "tsm_small.yaml")
OPTS = ["MODEL.num_classes=2", "MODEL.seg_num=4", "INFER.short_size=72", "INFER.target_size=64", "INFER.batch_size=8"]


@pytest.mark.parametrize("n,fps,window,stride", [(300, 30, 2, 1), (301, 30, 2, 2), (10, 25, 4, 2), (1000, 29.97, 3.3, 1.7)])
def test_plan_covers_the_video(n, fps, window, stride):
    plan = plan_windows(n, fps, window, stride)
    w, s = int(round(window * fps)), int(round(stride * fps))
    if n <= w:
        assert plan == [(0, n)]
        return
    regular = [(k * s, w) for k in range(n) if k * s + w <= n]
    assert plan[:len(regular)] == regular
    assert plan[-1][0] + plan[-1][1] == n                      # the tail is covered
    assert len(plan) - len(regular) in (0, 1)


def test_merge_segments_equals_reference():
    rs = np.random.RandomState(0)
    labels = rs.choice(["a", "b"], 40)
    scores = rs.uniform(0.2, 1.0, 40)
    windows = [{"start": i * 1.0, "end": i * 1.0 + 2, "top_k": [{"label": str(l), "score": float(p)}]}
               for i, (l, p) in enumerate(zip(labels, scores))]
    got = merge_segments(windows, 0.5)
    # reference: label each window (None below the threshold), cut runs of equal labels
    tags = [l if p >= 0.5 else None for l, p in zip(labels, scores)]
    want, i = [], 0
    while i < len(tags):
        j = i
        while j + 1 < len(tags) and tags[j + 1] == tags[i]:
            j += 1
        if tags[i] is not None:
            want.append({"start": float(i), "end": float(j + 2), "label": str(tags[i]),
                         "score": float(np.mean(scores[i:j + 1]))})
        i = j + 1
    assert len(got) == len(want) > 3
    for g, w in zip(got, want):
        assert (g["start"], g["end"], g["label"]) == (w["start"], w["end"], w["label"])
        assert g["score"] == pytest.approx(w["score"])


def make_long_video(path, seconds):
    """The real test clips, resized to 320×240, one after another until ``seconds`` at 30 fps (MPEG-4 AVI)."""
    clips = []
    for name in ("arm_wrestling.mp4", "eivideo_example.mp4", "mmaction2_test.mp4", "paddlevideo_example.avi"):
        cap = cv2.VideoCapture(os.path.join(DATA, name))
        frames = []
        while True:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(cv2.resize(f, (320, 240)))
        clips.append(frames)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (320, 240))
    n = k = 0
    while n < seconds * 30:
        for f in clips[k % len(clips)]:
            w.write(f)
            n += 1
        k += 1
    w.release()
    return n


def run_measured(args):
    """Run predict.py in a fresh process and return its peak RSS in MB (ru_maxrss of the child)."""
    code = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "sys.stderr.write(p.stderr); print(p.stdout); print('RC', p.returncode); "
            "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    cmd = [sys.executable, "-c", code, sys.executable, os.path.join(ROOT, "predict.py")] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert "RC 0" in p.stdout, p.stdout[-2000:] + p.stderr[-2000:]
    return int(p.stdout.split("MAXRSS")[-1]) / 1024.0, p.stdout


def test_long_video_timeline_streams(tmp_path):
    paddle.seed(5)
    cfg = load_config(TSM_SMALL, OPTS)
    model = build_model(cfg)
    w = tmp_path / "w.pdparams"
    paddle.save(model.state_dict(), str(w))
    short, long_ = tmp_path / "short.avi", tmp_path / "long.avi"
    make_long_video(short, 20)
    n = make_long_video(long_, 120)                                  # 2 minutes, 3,600 frames (~0.8 GB decoded)
    common = ["--config", TSM_SMALL, "--weights", w, "--window", 4, "--stride", 2, "--cache_dir", tmp_path / "c"]
    for o in OPTS:
        common += ["-o", o]
    rss_short, _ = run_measured(common + ["--video_path", short, "--output", tmp_path / "s.json"])
    rss_long, out = run_measured(common + ["--video_path", long_, "--output", tmp_path / "t.json",
                                           "--render", tmp_path / "r.mp4"])
    assert rss_long < rss_short + 80, (rss_short, rss_long)          # memory does not grow with the length
    t = json.loads((tmp_path / "t.json").read_text())
    assert set(t) >= {"video", "fps", "duration", "windows", "segments"} and t["fps"] == 30.0
    assert t["num_frames"] == n and t["duration"] == pytest.approx(n / 30.0, abs=1e-3)
    plan = plan_windows(n, 30.0, 4, 2)
    assert len(t["windows"]) == len(plan) and t["windows"][-1]["end"] == pytest.approx(n / 30.0, abs=1e-3)
    for win, (s, length) in zip(t["windows"], plan):
        assert win["start"] == pytest.approx(s / 30.0, abs=1e-3) and win["end"] == pytest.approx((s + length) / 30.0, abs=1e-3)
        assert len(win["top_k"]) == 2
    assert t["segments"] == merge_segments(t["windows"], 0.5)
    assert "[TIMELINE]" in out
    # two windows scored again here from frames read by a separate decoder pass: the same probabilities
    m = cfg.mode("infer")
    model.eval()
    cap = cv2.VideoCapture(str(long_))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f if len(frames) < 1300 else None)
    cap.release()
    for j in (3, 15):
        idx = window_indices(m, *plan[j])
        clip = np.stack([scale_short_side(cv2.cvtColor(frames[i], cv2.COLOR_BGR2RGB)[None], 72)[0] for i in idx])
        with paddle.no_grad():
            p = paddle.nn.functional.softmax(model(paddle.to_tensor(transform_clip(clip, m, False)[None])), 1).numpy()[0]
        got = {d["label"]: d["score"] for d in t["windows"][j]["top_k"]}
        assert got["0"] == pytest.approx(p[0], abs=1e-4) and got["1"] == pytest.approx(p[1], abs=1e-4)
    # the rendered copy: same length and size, readable
    cap = cv2.VideoCapture(str(tmp_path / "r.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 320
    cap.release()
