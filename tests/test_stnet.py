"""StNet: packing, temporal block, Xception, parameter count, inflation, training through run.sh."""
import json
import os
import subprocess
import sys

import numpy as np
import paddle

from conftest import ROOT, clip
from paddlevideo import build_model, load_config, load_weights
from paddlevideo.data import VideoDataset, segment_indices
from paddlevideo.data.transforms import center_crop, scale_short_side
from paddlevideo.data.video import read_frames
from paddlevideo.models.stnet import TemporalBlock, TemporalXception, inflate_conv1

SMALL = os.path.join(ROOT, "configs", "stnet_small.yaml")


def test_super_image_packing_is_frame_major():
    cfg = load_config(SMALL).mode("test")            # 6 segments x 3 frames, 112 px
    path = clip("mmaction2_test.avi")
    got, _, _ = VideoDataset([(path, 0)], cfg)[0]
    assert got.shape == (6, 9, 112, 112)
    frames = read_frames(path, lambda n: segment_indices(n, 6, 3, False))
    frames = center_crop(scale_short_side(frames, 128), 112).astype(np.float32) / 255.0
    frames = (frames - np.array(cfg.image_mean, np.float32)) / np.array(cfg.image_std, np.float32)
    for seg in range(6):
        for j in range(3):
            np.testing.assert_allclose(got[seg, 3 * j:3 * j + 3], frames[seg * 3 + j].transpose(2, 0, 1),
                                       atol=1e-5)


def conv3d_t_reference(x, w, b):
    """NumPy conv3d with kernel (3,1,1), padding (1,0,0).  x [N,C,T,h,w], w [C,C,3,1,1]."""
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0), (0, 0)))
    t = x.shape[2]
    out = np.zeros((x.shape[0], w.shape[0]) + x.shape[2:], np.float64)
    for k in range(3):
        out += np.einsum("oc,ncthw->nothw", w[:, :, k, 0, 0], xp[:, :, k:k + t])
    return out + b[None, :, None, None, None]


def test_temporal_block_matches_reference_and_is_residual():
    paddle.seed(0)
    blk = TemporalBlock(8)
    blk.bn.weight.set_value(paddle.rand([8]) + 0.5)
    blk.bn.bias.set_value(paddle.rand([8]))
    blk.bn._mean.set_value(paddle.rand([8]))
    blk.bn._variance.set_value(paddle.rand([8]) + 0.5)
    blk.eval()
    n, t = 2, 5
    x = np.random.RandomState(0).randn(n * t, 8, 3, 4).astype("float32")
    got = blk(paddle.to_tensor(x), t).numpy()
    assert got.shape == x.shape
    x5 = x.reshape(n, t, 8, 3, 4).transpose(0, 2, 1, 3, 4)
    y = np.maximum(conv3d_t_reference(x5, blk.conv.weight.numpy(), blk.conv.bias.numpy()), 0)
    g, b, m, v = (p.numpy()[None, :, None, None, None] for p in (blk.bn.weight, blk.bn.bias, blk.bn._mean, blk.bn._variance))
    y = (y - m) / np.sqrt(v + 1e-5) * g + b + x5
    np.testing.assert_allclose(got, y.transpose(0, 2, 1, 3, 4).reshape(x.shape), rtol=1e-4, atol=1e-4)
    # residual: a zero temporal conv and identity BN leave the input unchanged
    blk.conv.weight.set_value(paddle.zeros(blk.conv.weight.shape))
    blk.conv.bias.set_value(paddle.zeros([8]))
    blk.bn.bias.set_value(paddle.zeros([8]))
    blk.bn._mean.set_value(paddle.zeros([8]))
    np.testing.assert_allclose(blk(paddle.to_tensor(x), t).numpy(), x, atol=1e-6)


def test_xception_shapes():
    head = TemporalXception(2048, 1024)
    head.eval()
    for t in (7, 25):
        assert head(paddle.rand([2, 2048, t, 1])).shape == [2, 1024, t, 1]


def test_stnet_r50_parameter_count():
    model = build_model(load_config(os.path.join(ROOT, "configs", "stnet.yaml")))
    n = sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)
    assert n == 33158864
    assert len(model.state_dict()) == 301            # as many tensors as the legacy STNET_final
    assert model.backbone.conv1.conv.weight.shape == [64, 15, 7, 7]


def test_forward_train_and_test_shapes_same_weights():
    cfg = load_config(SMALL)
    model = build_model(cfg)
    model.train()
    assert model(paddle.rand([2, 4, 9, 112, 112])).shape == [2, 5]
    model.eval()
    assert model(paddle.rand([1, 6, 9, 112, 112])).shape == [1, 5]   # TEST.seg_num 6


def test_inflated_conv1_reproduces_2d_response(tmp_path):
    paddle.seed(3)
    tsn = build_model(load_config(ROOT + "/configs/tsn_small.yaml"))     # a 2D ResNet-18 trunk
    path = str(tmp_path / "tsn2d.pdparams")
    paddle.save(tsn.state_dict(), path)
    stnet = build_model(load_config(SMALL))                               # seglen 3
    load_weights(stnet, path, allow_classifier_mismatch=True)
    w2d = tsn.backbone.conv1.conv.weight.numpy()
    np.testing.assert_allclose(stnet.backbone.conv1.conv.weight.numpy(), inflate_conv1(w2d, 3), rtol=1e-6)
    np.testing.assert_array_equal(stnet.backbone.res3a.branch2a.conv.weight.numpy(),
                                  tsn.backbone.res3a.branch2a.conv.weight.numpy())
    rng = np.random.RandomState(0)
    grey = np.repeat(rng.rand(1, 1, 32, 32).astype("float32"), 3, axis=1)          # R = G = B
    colour = rng.rand(1, 3, 32, 32).astype("float32")
    for frame in (grey, colour):
        sup = paddle.to_tensor(np.concatenate([frame] * 3, axis=1))                 # 3 identical frames
        got = stnet.backbone.conv1.conv(sup).numpy()
        if frame is grey:
            want = tsn.backbone.conv1.conv(paddle.to_tensor(frame)).numpy()
        else:  # legacy rule averages RGB: equals the 2D conv with RGB-averaged kernels
            mean_w = np.repeat(w2d.mean(axis=1, keepdims=True), 3, axis=1)
            want = paddle.nn.functional.conv2d(paddle.to_tensor(frame), paddle.to_tensor(mean_w),
                                               stride=2, padding=3).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_train_eval_predict_small_stnet_through_run_sh(tmp_path):
    lst = tmp_path / "train.list"
    clips = [("arm_wrestling.mp4", 0), ("eivideo_example.mp4", 1), ("mmaction2_test.mp4", 0),
             ("paddlevideo_example.avi", 1)]
    lst.write_text("".join("{} {}\n".format(clip(n), y) for n, y in clips))
    env = dict(os.environ)
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix           # run.sh uses the environment running the tests
    opts = ["-o", "MODEL.num_classes=2", "-o", "TRAIN.short_size=72", "-o", "TRAIN.target_size=64",
            "-o", "TEST.short_size=72", "-o", "TEST.target_size=64", "-o", "INFER.short_size=72",
            "-o", "INFER.target_size=64", "-o", "TRAIN.filelist={}".format(lst),
            "-o", "TEST.filelist={}".format(lst)]

    def run(*args):
        p = subprocess.run(["bash", os.path.join(ROOT, "run.sh")] + [str(a) for a in args], env=env,
                           capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
        return p.stdout

    out = run("train", "STNET", SMALL, *opts, "--epoch", 1, "--batch_size", 4, "--valid_interval", 0,
              "--save_dir", tmp_path / "ck", "--fix_random_seed", True)
    assert "[TRAIN] Epoch 0 finished" in out
    w = tmp_path / "ck" / "STNET_final.pdparams"
    assert w.exists()
    run("eval", "STNET", SMALL, *opts, "--weights", w, "--save_dir", tmp_path)
    res = json.loads((tmp_path / "STNET_eval.json").read_text())
    assert res["num_evaluated"] == 4
    out = run("predict", "STNET", SMALL, *opts, "--weights", w, "--video_path", clip("arm_wrestling.mp4"))
    assert out.count("probability:") == 2
