"""Multi-view testing: clip windows and crops against slow NumPy references, view averaging, and
eval/predict with 2 clips × 3 crops through the dynamic graph and ONNX Runtime on real clips."""
import json
import os

import decord
import numpy as np
import paddle
import pytest

from conftest import ROOT, clip, run_cli
from paddlevideo import build_model, load_config
from paddlevideo.data import VideoDataset
from paddlevideo.data.sampling import multiview_indices
from paddlevideo.data.transforms import crop_boxes
from paddlevideo.engine.common import combine_views, per_video

TSM_SMALL = os.path.join(ROOT, "configs", "tsm_small.yaml")


def reference_indices(n, num_clips, sampling, seg_num, seglen, interval):
    """Written out from the definition: window k = frames [k*n/num_clips, (k+1)*n/num_clips); segments:
    the window cut into seg_num parts, seglen frames from the middle of each; dense: a clip of
    seg_num*seglen frames, interval apart, centred on the window, shifted back inside the video."""
    clips = []
    for k in range(num_clips):
        window = np.arange(n)[int(np.floor(k * n / num_clips)):int(np.floor((k + 1) * n / num_clips))]
        if len(window) == 0:
            window = np.array([min(int(np.floor(k * n / num_clips)), n - 1)])
        if sampling == "dense":
            length = seg_num * seglen
            span = (length - 1) * interval + 1
            start = window[0] + int(np.floor((len(window) - span) / 2))
            start = int(np.clip(start, 0, max(n - span, 0)))
            clips.append([(start + i * interval) % n for i in range(length)])
            continue
        parts = np.array_split(np.arange(seg_num * (len(window) // seg_num)), seg_num) if len(window) >= seg_num else None
        idx = []
        for s in range(seg_num):
            if parts is not None and len(parts[s]) >= seglen:
                first = parts[s][0] + (len(parts[s]) - seglen) // 2
            elif parts is not None:
                first = parts[s][0]
            else:
                first = s
            idx += [window[0] + (first + j) % len(window) for j in range(seglen)]
        clips.append(idx)
    return clips


@pytest.mark.parametrize("n", [1, 3, 7, 64, 250, 301])
@pytest.mark.parametrize("num_clips", [1, 2, 10])
@pytest.mark.parametrize("sampling,seg_num,seglen,interval", [("segments", 8, 1, 1), ("segments", 3, 5, 1),
                                                             ("dense", 8, 1, 8), ("dense", 32, 1, 2)])
def test_clip_indices_equal_reference(n, num_clips, sampling, seg_num, seglen, interval):
    got = multiview_indices(n, num_clips, sampling, seg_num, seglen, interval)
    assert got == reference_indices(n, num_clips, sampling, seg_num, seglen, interval)
    assert all(0 <= i < n for c in got for i in c)


def test_clips_spread_over_the_video():
    clips = multiview_indices(300, 10, "segments", 8, 1)
    starts = [c[0] for c in clips]
    assert starts == sorted(starts) and clips[0][0] < 30 and clips[-1][-1] >= 270


def slow_crop(frames, x, y, size, flip):
    out = np.empty((frames.shape[0], size, size, frames.shape[3]), frames.dtype)
    for t in range(frames.shape[0]):
        for r in range(size):
            for c in range(size):
                cc = size - 1 - c if flip else c
                out[t, r, c] = frames[t, y + r, x + cc]
    return out


@pytest.mark.parametrize("h,w", [(40, 60), (60, 40), (32, 32)])
def test_crops_equal_reference(h, w):
    frames = np.random.RandomState(0).randint(0, 255, (2, h, w, 3), dtype=np.uint8)
    size = 32
    three = crop_boxes(h, w, size, 3)
    long_axis = [b[0] for b in three] if w >= h else [b[1] for b in three]
    cx, cy, _ = crop_boxes(h, w, size, 1)[0]          # the single centre crop, as before
    assert long_axis == [0, cx if w >= h else cy, max(h, w) - size]
    assert all((b[1] if w >= h else b[0]) == (cy if w >= h else cx) for b in three)
    ten = crop_boxes(h, w, size, 10)
    assert [b[:2] for b in ten[:4]] == [(0, 0), (w - size, 0), (0, h - size), (w - size, h - size)]
    assert [b[2] for b in ten] == [False] * 5 + [True] * 5 and [b[:2] for b in ten[5:]] == [b[:2] for b in ten[:5]]
    from paddlevideo.data.transforms import crop, hflip
    for x, y, flip in ten + three:
        view = crop(frames, x, y, size, size)
        view = hflip(view, "mp4") if flip else view
        np.testing.assert_array_equal(view, slow_crop(frames, x, y, size, flip))


def test_flow_views_flip_x():
    from paddlevideo.data.transforms import hflip
    flow = np.random.RandomState(1).randint(0, 255, (1, 4, 4, 2), dtype=np.uint8)
    f = hflip(flow, "flow")
    np.testing.assert_array_equal(f[..., 0], 255 - flow[:, :, ::-1, 0])
    np.testing.assert_array_equal(f[..., 1], flow[:, :, ::-1, 1])


def test_views_are_chunked_grouped_per_video_and_averaged():
    rs = np.random.RandomState(0)
    logits = rs.randn(3, 2, 3, 5).astype(np.float32)      # 3 videos × 2 clips × 3 crops × 5 classes
    calls = []

    def runner(x):                                       # a view carries its (video, clip, crop) id in pixel 0
        calls.append(len(x))
        v = x[:, 0, 0, 0, 0].astype(int)
        return logits.reshape(-1, 5)[v]
    ids = np.arange(18, dtype=np.float32).reshape(6, 3, 1, 1, 1, 1)       # samples = (video, clip), each 3 crops
    meta = lambda rows: np.array(rows, np.int64)
    batches = [(ids[0:2], meta([[0, 1, 1], [0, 1, 1]])), (ids[2:3], meta([[1, 0, 1]])),      # 1 sample/batch
               (ids[3:5], meta([[1, 0, 1], [2, 1, 1]])), (np.zeros((1, 1, 1, 1, 1), np.float32), meta([[2, -1, 0]]))]
    got = list(per_video(batches, runner, 4, clips_per_video=2))
    assert max(calls) <= 4 and sum(calls) == 15           # the failed sample runs nothing
    idx = np.concatenate([g[0] for g in got])
    assert idx.tolist() == [0, 1] and [g[3] for g in got] == [[], [], [2]]      # yields when a video completes
    outs = np.concatenate([g[2] for g in got if g[2] is not None])
    np.testing.assert_array_equal(outs, logits[:2].reshape(2, 6, 5))
    e = np.exp(outs - outs.max(-1, keepdims=True))
    np.testing.assert_allclose(np.exp(combine_views(outs, "prob")), (e / e.sum(-1, keepdims=True)).mean(1), rtol=1e-5)
    m = outs.mean(1)
    np.testing.assert_allclose(np.exp(combine_views(outs, "logit")), np.exp(m) / np.exp(m).sum(-1, keepdims=True),
                               rtol=1e-5)
    np.testing.assert_allclose(np.exp(combine_views(outs[:, :1])).sum(1), 1, rtol=1e-5)   # one view: softmax


def test_dataset_views_equal_manual_decode_and_crop():
    cfg = load_config(TSM_SMALL, ["TEST.num_clips=2", "TEST.num_crops=3", "TEST.short_size=72",
                                  "TEST.target_size=64", "MODEL.seg_num=4"])
    m = cfg.mode("test")
    path = clip("arm_wrestling.mp4")
    ds = VideoDataset([(path, 0)], m)
    assert len(ds) == 2 and ds.clips_per_video == 2             # one sample per temporal clip
    views = np.concatenate([ds[k][0] for k in range(2)])
    assert views.shape == (6, 4, 3, 64, 64) and ds[1][2] == 0    # both samples carry the video's index
    vr = decord.VideoReader(path)
    n = len(vr)
    idx = reference_indices(n, 2, "segments", 4, 1, 1)
    import cv2
    for k in range(2):
        frames = vr.get_batch(idx[k]).asnumpy()
        h, w = frames.shape[1:3]
        nh, nw = (72, int(round(w * 72 / h))) if w > h else (int(round(h * 72 / w)), 72)
        frames = np.stack([cv2.resize(f, (nw, nh), interpolation=cv2.INTER_LINEAR) for f in frames])
        for c, (x, y, flip) in enumerate(crop_boxes(nh, nw, 64, 3)):
            want = slow_crop(frames, x, y, 64, flip).astype(np.float32) / 255.0
            want = (want - np.array(m.image_mean, np.float32)) / np.array(m.image_std, np.float32)
            np.testing.assert_allclose(views[3 * k + c], want.transpose(0, 3, 1, 2), atol=1e-5)


def test_multiview_eval_and_predict_through_backends(tmp_path, write_list):
    paddle.seed(3)
    opts = ["-o", "MODEL.num_classes=2", "-o", "MODEL.seg_num=4", "-o", "TEST.short_size=72", "-o",
            "TEST.target_size=64", "-o", "INFER.short_size=72", "-o", "INFER.target_size=64"]
    model = build_model(load_config(TSM_SMALL, [o for o in opts if o != "-o"]))
    w = str(tmp_path / "w.pdparams")
    paddle.save(model.state_dict(), w)
    lst = write_list(["{} {}".format(clip(n), y) for n, y in
                      [("arm_wrestling.mp4", 0), ("eivideo_example.mp4", 1), ("mmaction2_test.avi", 0)]])
    views = ["-o", "TEST.num_clips=2", "-o", "TEST.num_crops=3", "-o", "INFER.num_clips=2", "-o", "INFER.num_crops=3"]
    out = {}
    for backend in ("dygraph", "onnxruntime"):
        run_cli("eval.py", "--model_name", "TSM", "--config", TSM_SMALL, *opts, *views, "--batch_size", 4,
                "--filelist", lst, "--weights", w, "--backend", backend, "--cache_dir", tmp_path / "cache",
                "--save_dir", tmp_path / backend)
        out[backend] = json.loads((tmp_path / backend / "TSM_eval.json").read_text())
    a, b = out["dygraph"], out["onnxruntime"]
    assert a["views"] == {"num_clips": 2, "num_crops": 3, "average": "prob"} and a["num_evaluated"] == 3
    assert a["top1_acc"] == b["top1_acc"] and a["loss"] == pytest.approx(b["loss"], abs=1e-4)
    single = run_cli("eval.py", "--model_name", "TSM", "--config", TSM_SMALL, *opts, "--filelist", lst, "--weights", w,
                     "--backend", "dygraph", "--save_dir", tmp_path / "single")
    assert "[TEST] Finish" in single.stdout
    one = json.loads((tmp_path / "single" / "TSM_eval.json").read_text())
    assert one["views"]["num_clips"] == 1 and one["loss"] != pytest.approx(a["loss"], abs=1e-6)
    # predict: the per-video probability is the mean of the 6 views' softmax, computed here by hand
    run_cli("predict.py", "--model_name", "TSM", "--config", TSM_SMALL, *opts, *views, "--weights", w,
            "--backend", "dygraph", "--video_path", clip("arm_wrestling.mp4"), "--output", tmp_path / "p.json")
    got = {t["label"]: t["score"] for t in json.loads((tmp_path / "p.json").read_text())[0]["top_k"]}
    m = load_config(TSM_SMALL, [o for o in opts + views if o != "-o"]).mode("infer")
    ds = VideoDataset([(clip("arm_wrestling.mp4"), -1)], m)
    x = np.concatenate([ds[k][0] for k in range(len(ds))])
    model.eval()
    with paddle.no_grad():
        p = paddle.nn.functional.softmax(model(paddle.to_tensor(x)), axis=1).numpy().mean(0)
    assert got["0"] == pytest.approx(p[0], abs=1e-4) and got["1"] == pytest.approx(p[1], abs=1e-4)


@pytest.mark.parametrize("config,dim", [("tsm_small.yaml", 512), ("stnet_small.yaml", None),
                                        ("slowfast_small.yaml", None)])
def test_features_equal_the_classifier_input(config, dim):
    """fc(forward_features(x)) is the model's output (SlowFast: its head's pooled input, averaged)."""
    paddle.seed(0)
    cfg = load_config(os.path.join(ROOT, "configs", config))
    model = build_model(cfg)
    model.eval()
    m = cfg.mode("test")
    x = paddle.to_tensor(np.random.RandomState(0).randn(2, m.seg_num, 3 * m.seglen, 64, 64).astype("float32"))
    with paddle.no_grad():
        f = model.forward_features(x)
        out = model(x)
        if config.startswith("slowfast"):
            want = model.head.pooled(*model.pathways(x)).mean(axis=[1, 2, 3])
            np.testing.assert_allclose(f.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
            p = paddle.nn.functional.softmax(model.head.projection(f), axis=1)   # global pool: one position
            np.testing.assert_allclose(np.log(p.numpy()), out.numpy(), rtol=1e-4, atol=1e-5)
        else:
            np.testing.assert_allclose(model.fc(f).numpy(), out.numpy(), rtol=1e-5, atol=1e-5)
    assert f.shape[0] == 2 and (dim is None or f.shape[1] == dim)


def test_predict_features_files_and_index(tmp_path, write_list):
    paddle.seed(4)
    model = build_model(load_config(TSM_SMALL))
    w = str(tmp_path / "w.pdparams")
    paddle.save(model.state_dict(), w)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    lst = write_list([clip("arm_wrestling.mp4"), str(empty), clip("mmaction2_test.avi")])
    out = run_cli("predict.py", "--config", TSM_SMALL, "--weights", w, "--filelist", lst, "--features",
                  tmp_path / "feats", "--cache_dir", tmp_path / "cache", check=False)
    assert out.returncode == 1, out.stderr                     # one video failed
    index = json.loads((tmp_path / "feats" / "features.json").read_text())
    assert index["dim"] == 512 and [v["file"] for v in index["videos"]] == ["arm_wrestling.npy", "mmaction2_test.npy"]
    assert index["failed"] == [{"index": 1, "video": str(empty), "error": "cannot decode this video"}]
    f = np.load(tmp_path / "feats" / "arm_wrestling.npy")
    assert f.shape == (512,) and f.dtype == np.float32
    m = load_config(TSM_SMALL).mode("infer")
    x, _ = VideoDataset([(clip("arm_wrestling.mp4"), -1)], m).load(0)
    model.eval()
    with paddle.no_grad():
        want = model.forward_features(paddle.to_tensor(x[None])).numpy()[0]
    np.testing.assert_allclose(f, want, rtol=1e-3, atol=1e-4)   # onnxruntime (auto) vs the dynamic graph
