"""I3D: parameter counts, TensorFlow 'SAME' padding against a NumPy reference, the DeepMind
checkpoint converter, 2-D → 3-D inflation ("boring video"), and training through the engine."""
import itertools
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from conftest import ROOT, clip, run_cli
from paddlevideo import UserError, build_model, load_config, load_weights
from paddlevideo.models.i3d import I3D, inflate_2d, max_pool_same, pad_same, same_padding, tf_variable_names

I3D_RGB = os.path.join(ROOT, "configs", "i3d_rgb.yaml")


def count(model):
    return sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)


def test_parameter_counts_rgb_and_flow():
    assert count(I3D(400, 3)) == 12689984
    assert count(I3D(400, 2)) == 12668032
    assert count(build_model(load_config(I3D_RGB))) == 12689984


def tf_same_reference(x, kernel, stride, op):
    """TensorFlow 'SAME' by its definition, in NumPy loops: out = ceil(in/s), pad_total =
    max((out-1)s + k - in, 0), pad_before = pad_total // 2; cells outside the input are skipped
    (max) or zero (conv).  x [C, T, H, W]; op(window [C, kT, kH, kW] with None for outside)."""
    c = x.shape[0]
    outs = [-(-x.shape[1 + i] // stride[i]) for i in range(3)]
    before = [max((outs[i] - 1) * stride[i] + kernel[i] - x.shape[1 + i], 0) // 2 for i in range(3)]
    res = []
    for o in itertools.product(*[range(n) for n in outs]):
        start = [o[i] * stride[i] - before[i] for i in range(3)]
        window = np.full((c,) + tuple(kernel), np.nan)
        for k in itertools.product(*[range(n) for n in kernel]):
            pos = [start[i] + k[i] for i in range(3)]
            if all(0 <= pos[i] < x.shape[1 + i] for i in range(3)):
                window[(slice(None),) + k] = x[(slice(None),) + tuple(pos)]
        res.append(op(window))
    return np.stack(res, -1).reshape((-1,) + tuple(outs))


@pytest.mark.parametrize("shape,kernel,stride", [((5, 7, 6), (3, 3, 3), (2, 2, 2)), ((4, 9, 8), (7, 7, 7), (2, 2, 2)),
                                                 ((3, 8, 7), (1, 3, 3), (1, 2, 2)), ((6, 5, 5), (2, 2, 2), (2, 2, 2)),
                                                 ((5, 6, 6), (3, 3, 3), (1, 1, 1))])
def test_same_padding_conv_and_pool_match_numpy_reference(shape, kernel, stride):
    rng = np.random.RandomState(0)
    x = rng.randn(2, *shape).astype("float32")
    w = rng.randn(3, 2, *kernel).astype("float32")
    t = paddle.to_tensor(x[None])
    conv = F.conv3d(pad_same(t, kernel, stride), paddle.to_tensor(w), stride=stride).numpy()[0]
    ref = tf_same_reference(x, kernel, stride, lambda win: np.einsum("cijk,ocijk->o", np.nan_to_num(win), w))
    np.testing.assert_allclose(conv, ref, rtol=1e-4, atol=1e-4)
    pool = max_pool_same(t, kernel, stride).numpy()[0]
    np.testing.assert_allclose(pool, tf_same_reference(x, kernel, stride, lambda win: np.nanmax(win, axis=(1, 2, 3))),
                               rtol=1e-6)


def test_same_padding_splits_of_the_reference():
    """The splits REFERENCE.md lists for DeepMind's graph (odd cell after)."""
    assert same_padding(16, 7, 2) == (2, 3) and same_padding(224, 7, 2) == (2, 3)     # Conv3d_1a on 16x224x224
    assert same_padding(79, 7, 2) == (3, 3)                                            # a 79-frame clip
    assert same_padding(112, 3, 2) == (0, 1)                                           # MaxPool3d_2a, 3a (H/W)
    assert same_padding(8, 3, 2) == (0, 1) and same_padding(28, 3, 2) == (0, 1)        # MaxPool3d_4a
    assert same_padding(4, 2, 2) == (0, 0) and same_padding(14, 2, 2) == (0, 0)        # MaxPool3d_5a
    assert same_padding(28, 3, 1) == (1, 1)                                            # stride-1 3x3x3


def deepmind_checkpoint(model, scope, seed=0, bn_5d=False):
    """Seeded variables in DeepMind's naming and TF layouts, as a checkpoint would hold them."""
    rng = np.random.RandomState(seed)
    out = {}
    for ours, tf in tf_variable_names(model, scope).items():
        shape = list(model.state_dict()[ours].shape)
        if tf.endswith("conv_3d/w"):
            a = rng.randn(*shape).astype("float32") * 0.05
            out[tf] = a.transpose(2, 3, 4, 1, 0)                                  # [kT, kH, kW, Cin, Cout]
        else:
            a = (rng.uniform(0.5, 1.5, shape) if tf.endswith("moving_variance") else rng.randn(*shape) * 0.1)
            out[tf] = a.astype("float32").reshape([1, 1, 1, 1, -1] if bn_5d and len(shape) == 1 and "Logits" not in tf
                                                   else shape)
    return out


def test_converter_round_trip_and_name_map(tmp_path):
    flow = I3D(400, 2)
    names = tf_variable_names(flow, "Flow")
    assert len(names) == 230
    assert names["Mixed_5b.Branch_2_b.conv.weight"] == "Flow/inception_i3d/Mixed_5b/Branch_2/Conv3d_0a_3x3/conv_3d/w"
    assert names["Mixed_4d.Branch_2_b.conv.weight"] == "Flow/inception_i3d/Mixed_4d/Branch_2/Conv3d_0b_3x3/conv_3d/w"
    assert names["Mixed_3b.Branch_3_b.bn._mean"] == "Flow/inception_i3d/Mixed_3b/Branch_3/Conv3d_0b_1x1/batch_norm/moving_mean"
    assert names["Logits.bias"] == "Flow/inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/b"
    ckpt = deepmind_checkpoint(flow, "Flow", bn_5d=True)
    ckpt["Flow/inception_i3d/Mixed_3b/Branch_0/Conv3d_0a_1x1/conv_3d/w/Momentum"] = np.zeros(3, "float32")  # ignored
    np.savez(tmp_path / "flow.npz", **ckpt)
    out = tmp_path / "i3d_flow.pdparams"
    p = run_cli("scripts/convert_i3d.py", "--src", tmp_path / "flow.npz", "--stream", "flow", "--out", out)
    assert "from 230 DeepMind variables" in p.stdout
    model = I3D(400, 2)
    load_weights(model, str(out))
    sd = model.state_dict()
    np.testing.assert_array_equal(sd["Conv3d_1a_7x7.conv.weight"].numpy(),
                                  ckpt["Flow/inception_i3d/Conv3d_1a_7x7/conv_3d/w"].transpose(4, 3, 0, 1, 2))
    np.testing.assert_array_equal(sd["Mixed_5c.Branch_1_b.bn._variance"].numpy(),
                                  ckpt["Flow/inception_i3d/Mixed_5c/Branch_1/Conv3d_0b_3x3/batch_norm/moving_variance"].reshape(-1))
    # without the scope prefix, and with a missing and an extra variable
    bare = {k[len("Flow/"):]: v for k, v in ckpt.items()}
    del bare["inception_i3d/Mixed_4c/Branch_1/Conv3d_0a_1x1/batch_norm/beta"]
    bare["inception_i3d/Mixed_9z/conv_3d/w"] = np.zeros(1, "float32")
    np.savez(tmp_path / "bad.npz", **bare)
    p = run_cli("scripts/convert_i3d.py", "--src", tmp_path / "bad.npz", "--stream", "flow", "--out",
                tmp_path / "bad.pdparams", check=False)
    assert p.returncode == 2 and "missing inception_i3d/Mixed_4c/Branch_1/Conv3d_0a_1x1/batch_norm/beta" in p.stderr
    assert "unexpected inception_i3d/Mixed_9z/conv_3d/w" in p.stderr and not (tmp_path / "bad.pdparams").exists()
    p = run_cli("scripts/convert_i3d.py", "--src", tmp_path / "flow.npz", "--stream", "rgb", "--out",
                tmp_path / "x.pdparams", check=False)
    assert p.returncode == 2 and "check --stream" in p.stderr


def test_inflated_network_reproduces_2d_network_on_a_boring_video():
    """A video of one repeated image through the inflated 3-D network gives the 2-D network's
    activations on that image at every time step away from the temporal borders."""
    paddle.seed(0)
    net2d = I3D(10, 3, dropout_ratio=0.0, temporal=False)
    rng = np.random.RandomState(1)
    sd = {k: v.numpy() for k, v in net2d.state_dict().items()}
    for k in sd:                                                           # non-trivial BN statistics
        if k.endswith("_variance"):
            sd[k] = rng.uniform(0.5, 1.5, sd[k].shape).astype("float32")
        elif k.endswith(("_mean", "bn.bias")):
            sd[k] = rng.uniform(-0.2, 0.2, sd[k].shape).astype("float32")
    net2d.set_state_dict(sd)
    net3d = I3D(10, 3, dropout_ratio=0.0)
    net3d.set_state_dict(inflate_2d(sd, net3d))
    assert net3d.Conv3d_1a_7x7.conv.weight.shape == [64, 3, 7, 7, 7]
    net2d.eval()
    net3d.eval()
    image = rng.rand(1, 3, 1, 64, 64).astype("float32") * 2 - 1
    video = np.repeat(image, 48, axis=2)
    with paddle.no_grad():
        a2 = net2d.features(paddle.to_tensor(image), "Mixed_3c").numpy()[:, :, 0]       # [1, 480, 8, 8]
        a3 = net3d.features(paddle.to_tensor(video), "Mixed_3c").numpy()                # [1, 480, 24, 8, 8]
    assert a3.shape[2] == 24
    for t in range(8, 16):                                                             # away from the borders
        np.testing.assert_allclose(a3[:, :, t], a2, rtol=1e-4, atol=1e-4)
    assert np.abs(a3[:, :, 0] - a2).max() > 1e-3                                       # borders do differ


def test_reduced_i3d_trains_and_predicts_on_real_clips(tmp_path):
    lst = tmp_path / "train.list"
    lst.write_text("{} 0\n{} 1\n".format(clip("arm_wrestling.mp4"), clip("paddlevideo_example.avi")))
    common = ["--model_name", "I3D", "--config", I3D_RGB, "-o", "MODEL.num_classes=2", "-o", "MODEL.seg_num=8",
              "-o", "MODEL.pool_size=[1,2,2]", "-o", "MODEL.label_list=null", "-o", "TRAIN.short_size=72",
              "-o", "TRAIN.target_size=64", "-o", "INFER.short_size=72", "-o", "INFER.target_size=64",
              "-o", "TRAIN.filelist={}".format(lst)]
    run_cli("train.py", *common, "--save_dir", tmp_path / "ck", "--valid_interval", "0", "--epoch", "1",
            "--batch_size", "2", "--pretrain", "none", "--fix_random_seed", "True")
    log = [json.loads(line) for line in (tmp_path / "ck" / "I3D_log.jsonl").read_text().splitlines()]
    assert log[-1]["type"] == "epoch" and np.isfinite(log[-1]["loss"])
    p = run_cli("predict.py", *common, "--weights", tmp_path / "ck" / "I3D_final.pdparams",
                "--video_path", clip("arm_wrestling.mp4"), "--backend", "onnxruntime")
    assert p.stdout.count("class: ") == 2


def test_tvl1_flow_sign_and_quantization():
    from paddlevideo.data.flow import flow_fn, quantize
    rng = np.random.RandomState(0)
    import cv2
    texture = cv2.GaussianBlur((rng.rand(64, 80) * 255).astype("float32"), (7, 7), 2).astype("uint8")
    a, b = texture[:, 10:74], texture[:, 8:72]                  # b is a shifted 2 px to the right
    f = flow_fn("tvl1")(a, b)[16:48, 16:48]
    assert abs(float(np.median(f[..., 0])) - 2.0) < 0.3 and abs(float(np.median(f[..., 1]))) < 0.3
    q = quantize(np.array([[[-30.0, 0.0], [20.0, 2.0]]], "float32"))
    assert q.tolist() == [[[0, 128], [255, 140]]]                  # ±20 px → 0..255


@pytest.fixture(scope="module")
def flow_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("flow")
    lst = d / "videos.list"
    lst.write_text("{} 1\n".format(clip("paddlevideo_example.avi")))
    p = subprocess.run([sys.executable, os.path.join(ROOT, "data", "dataset", "extract_frames.py"), str(lst),
                        "--out", str(d / "flow"), "--flow", "farneback", "--workers", "1"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return d / "flow"


def test_extracted_flow_reads_back_like_flow_computed_now(flow_dir):
    from paddlevideo.data.flow import flow_from_video, read_flow_dir
    assert (flow_dir / "flow.list").read_text() == "paddlevideo_example 130 1\n"      # 131 frames → 130 fields
    idx = [0, 64, 129]
    stored = read_flow_dir(str(flow_dir / "paddlevideo_example"), lambda n: idx).astype(float)
    now = flow_from_video(clip("paddlevideo_example.avi"), lambda n: idx, "farneback").astype(float)
    assert stored.shape == now.shape == (3, 240, 320, 2)
    assert np.abs(stored - now).mean() < 1.5                                            # JPEG tolerance


def test_reduced_flow_and_two_stream_i3d_train_join_and_predict(tmp_path, flow_dir):
    small = ["-o", "MODEL.num_classes=2", "-o", "MODEL.seg_num=8", "-o", "MODEL.pool_size=[1,2,2]",
             "-o", "MODEL.label_list=null", "-o", "TRAIN.short_size=72", "-o", "TRAIN.target_size=64",
             "-o", "INFER.short_size=72", "-o", "INFER.target_size=64", "--fix_random_seed", "True"]
    flow_cfg = os.path.join(ROOT, "configs", "i3d_flow.yaml")
    lst = tmp_path / "flow.list"
    lst.write_text("{} 1\n{} 0\n".format(flow_dir / "paddlevideo_example", flow_dir / "paddlevideo_example"))
    run_cli("train.py", "--model_name", "I3D", "--config", flow_cfg, *small, "-o", "TRAIN.filelist={}".format(lst),
            "--save_dir", tmp_path / "flow_ck", "--valid_interval", "0", "--epoch", "1", "--batch_size", "2",
            "--pretrain", "none")
    rgb_lst = tmp_path / "rgb.list"
    rgb_lst.write_text("{} 1\n{} 0\n".format(clip("paddlevideo_example.avi"), clip("arm_wrestling.mp4")))
    run_cli("train.py", "--model_name", "I3D", "--config", I3D_RGB, *small, "-o", "TRAIN.filelist={}".format(rgb_lst),
            "--save_dir", tmp_path / "rgb_ck", "--valid_interval", "0", "--epoch", "1", "--batch_size", "2",
            "--pretrain", "none")
    both = tmp_path / "both.pdparams"
    run_cli("scripts/convert_i3d.py", "--two_stream", tmp_path / "rgb_ck" / "I3D_final.pdparams",
            tmp_path / "flow_ck" / "I3D_final.pdparams", "--out", both)
    two_cfg = os.path.join(ROOT, "configs", "i3d_two_stream.yaml")
    over = ["MODEL.num_classes=2", "MODEL.seg_num=8", "MODEL.pool_size=[1,2,2]", "MODEL.flow_root={}".format(flow_dir)]
    two = build_model(load_config(two_cfg, over))
    load_weights(two, str(both))
    rgb = build_model(load_config(I3D_RGB, over[:3]))
    load_weights(rgb, str(tmp_path / "rgb_ck" / "I3D_final.pdparams"))
    flow = build_model(load_config(flow_cfg, over[:3]))
    load_weights(flow, str(tmp_path / "flow_ck" / "I3D_final.pdparams"))
    for m in (two, rgb, flow):
        m.eval()
    x = paddle.rand([1, 8, 5, 64, 64]) * 2 - 1
    with paddle.no_grad():                                   # fusion: logits summed (softmax afterwards)
        np.testing.assert_allclose(two(x).numpy(), (rgb(x[:, :, :3]) + flow(x[:, :, 3:])).numpy(), rtol=1e-5, atol=1e-5)
    p = run_cli("predict.py", "--model_name", "I3D", "--config", two_cfg, *small[:-2],
                "-o", "MODEL.flow_root={}".format(flow_dir), "--weights", both,
                "--video_path", clip("paddlevideo_example.avi"), "--backend", "onnxruntime")   # exported: 5 channels
    assert p.stdout.count("class: ") == 2
    p = run_cli("predict.py", "--model_name", "I3D", "--config", two_cfg, *small[:-2], "-o", "MODEL.flow_method=farneback",
                "--weights", both, "--video_path", clip("arm_wrestling.mp4"), "--backend", "dygraph")   # flow computed now
    assert p.stdout.count("class: ") == 2


def test_equally_named_videos_get_their_own_flow_folders(tmp_path):
    from paddlevideo.data.flow import read_flow_dir, read_rgb_flow
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    os.symlink(clip("mmaction2_test.mp4"), a / "x.mp4")
    os.symlink(clip("arm_wrestling.mp4"), b / "x.mp4")
    lst = tmp_path / "videos.list"
    lst.write_text("{} 0\n{} 1\n".format(a / "x.mp4", b / "x.mp4"))
    p = subprocess.run([sys.executable, os.path.join(ROOT, "data", "dataset", "extract_frames.py"), str(lst),
                        "--out", str(tmp_path / "flow"), "--flow", "farneback", "--short_side", "48", "--workers", "1"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert sorted(n for n in os.listdir(tmp_path / "flow") if not n.endswith((".list", ".json"))) == ["x", "x_2"]
    for video, folder in ((a / "x.mp4", "x"), (b / "x.mp4", "x_2")):
        got = read_rgb_flow(str(video), lambda n: [0, 5], str(tmp_path / "flow"))[..., 3:]
        own = read_flow_dir(str(tmp_path / "flow" / folder), lambda n: [0, 5])
        assert np.array_equal(got, np.stack([cv2.resize(f, (got.shape[2], got.shape[1])) for f in own]))
