"""TSM on PaddleVideo's PP-TSM MobileNetV2 trunk: the released layout, the shift placement, online mode, export."""
import os

import numpy as np
import paddle
import pytest

from conftest import ROOT, released_layout_file
from paddlevideo import build_model, load_config, load_weights
from paddlevideo.engine.backends import InferenceRunner, OnnxRunner, dygraph_runner, export_model, to_onnx
from paddlevideo.models.mobilenet_v2 import InvertedResidual

MV2 = os.path.join(ROOT, "configs", "pptsm_mv2.yaml")


def test_released_layout_loads_key_for_key_and_the_shift_sits_on_the_ten_residual_blocks(tmp_path):
    model = build_model(load_config(MV2))
    path = str(tmp_path / "ppTSM_mv2_k400.pdparams")
    released_layout_file(model, "ppTSM_mv2_k400", path, scale=0.05)
    assert sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient) == 2737360
    shifted = [name for name, layer in model.named_sublayers() if isinstance(layer, InvertedResidual) and layer.shortcut]
    assert [n.split(".")[-1] for n in shifted] == ["conv3_2", "conv4_2", "conv4_3", "conv5_2", "conv5_3", "conv5_4",
                                                   "conv6_2", "conv6_3", "conv7_2", "conv7_3"]
    # fine-tuning to another class count keeps the trunk and re-initialises backbone.out
    small = build_model(load_config(MV2, ["MODEL.num_classes=5"]))
    assert load_weights(small, path, allow_classifier_mismatch=True) == ["backbone.out.weight", "backbone.out.bias"]


def test_online_mobilenet_is_causal_and_exports_equal_dygraph(tmp_path):
    paddle.seed(0)
    cfg = load_config(MV2, ["MODEL.shift_mode=online", "MODEL.num_classes=7"])
    model = build_model(cfg)
    model.eval()
    x = np.random.RandomState(1).rand(1, 4, 3, 64, 64).astype("float32")
    frames = model.forward_frames(paddle.to_tensor(x)).numpy()
    np.testing.assert_allclose(frames.mean(1), model(paddle.to_tensor(x)).numpy(), rtol=1e-5, atol=1e-6)
    prefix = model.forward_frames(paddle.to_tensor(x[:, :2])).numpy()
    np.testing.assert_allclose(prefix, frames[:, :2], rtol=1e-5, atol=1e-5)             # past-only
    ref = dygraph_runner(model)(x)
    for impl, make in (("slice", lambda p: InferenceRunner(p, threads=2)), ("gather", lambda p: OnnxRunner(to_onnx(p)))):
        prefix_path = export_model(model, str(tmp_path / impl), [4, 3, 64, 64], impl)
        np.testing.assert_allclose(make(prefix_path)(x), ref, atol=1e-4, rtol=1e-4)


def test_backbone_key_is_for_tsm_only():
    with pytest.raises(Exception, match="MODEL.backbone mobilenet_v2 is a TSM trunk"):
        build_model(load_config(MV2, ["MODEL.name=TSN"]))


def test_fixed_ratio_scale_is_paddlevideos():
    from paddlevideo.data.transforms import scale_short_side
    shape = lambda h, w, fixed: scale_short_side(np.zeros((1, h, w, 3), "uint8"), 256, fixed).shape[1:3]  # noqa: E731
    assert shape(360, 640, True) == (256, 341) and shape(360, 640, False) == (256, 455)
    assert shape(640, 360, True) == (341, 256) and shape(300, 300, True) == (341, 256)     # w <= h: width short
    assert shape(256, 500, True) == (256, 500)                                              # already at 256: kept
    cfg = load_config(MV2)
    assert cfg.mode("test").fixed_ratio and cfg.mode("infer").fixed_ratio and not cfg.mode("train").fixed_ratio


def _np_conv(x, w, stride=1, groups=1):
    """NumPy conv2d, 'same' padding (k-1)//2, no bias: x [N, C, H, W], w [O, C/groups, k, k]."""
    k = w.shape[-1]
    p = (k - 1) // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    n, c, h, wd = x.shape
    oh, ow = (h + 2 * p - k) // stride + 1, (wd + 2 * p - k) // stride + 1
    out = np.zeros((n, w.shape[0], oh, ow))
    cg, og = c // groups, w.shape[0] // groups
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        for i in range(k):
            for j in range(k):
                patch = xs[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]      # [N, cg, oh, ow]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, w[g * og:(g + 1) * og, :, i, j])
    return out


def numpy_pptsm_mv2(state, x, t, online):
    """PaddleVideo's PP-TSM MobileNetV2 forward written out in float64 from its documented structure: conv-BN-ReLU6
    units, inverted residuals with Paddle's shift (channels [0, C/8) from t-1, [C/8, C/4) from t+1; online: the
    first part only) on the input of the shortcut blocks, the unshifted input added back, mean over frames, fc."""
    def unit(name, y, stride=1, groups=1, act=True):
        w = state[name + "._conv.weight"].astype(np.float64)
        y = _np_conv(y, w, stride, groups)
        g, b, mu, var = (state[name + "._batch_norm." + k].astype(np.float64)[None, :, None, None]
                         for k in ("weight", "bias", "_mean", "_variance"))
        y = (y - mu) / np.sqrt(var + 1e-5) * g + b
        return np.clip(y, 0, 6) if act else y

    def shift(y):
        n, c = y.shape[0] // t, y.shape[1]
        y5, out = y.reshape((n, t) + y.shape[1:]), np.zeros((n, t) + y.shape[1:])
        f = c // 8
        out[:, 1:, :f] = y5[:, :-1, :f]
        if online:
            out[:, :, f:] = y5[:, :, f:]
        else:
            out[:, :-1, f:2 * f] = y5[:, 1:, f:2 * f]
            out[:, :, 2 * f:] = y5[:, :, 2 * f:]
        return out.reshape(y.shape)

    y = unit("backbone.conv1", x.astype(np.float64), 2)
    settings = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
    for s, (_, _, n, stride) in enumerate(settings):
        for i in range(n):
            name = "backbone.conv{}.".format(s + 2) + ("_first_block" if i == 0 else "conv{}_{}".format(s + 2, i + 1))
            z = shift(y) if i else y
            mid = state[name + "._expand_conv._conv.weight"].shape[0]
            z = unit(name + "._expand_conv", z)
            z = unit(name + "._bottleneck_conv", z, stride if i == 0 else 1, mid)
            z = unit(name + "._linear_conv", z, act=False)
            y = y + z if i else z
    y = unit("backbone.conv9", y).mean(axis=(2, 3))
    y = y.reshape(-1, t, y.shape[-1]).mean(axis=1)
    return y @ state["backbone.out.weight"].astype(np.float64) + state["backbone.out.bias"]


@pytest.mark.parametrize("mode", ["bidirectional", "online"])
def test_logits_equal_a_numpy_pptsm_mv2(mode):
    paddle.seed(3)
    model = build_model(load_config(MV2, ["MODEL.num_classes=6", "MODEL.shift_mode=" + mode]))
    model.eval()
    rng = np.random.RandomState(4)
    state = {}
    for k, v in model.state_dict().items():                 # non-trivial BN statistics
        a = v.numpy()
        if k.endswith(("_mean", "bias")):
            a = rng.standard_normal(a.shape).astype("float32") * 0.1
        elif k.endswith(("_variance", "_batch_norm.weight")):
            a = rng.uniform(0.5, 1.5, a.shape).astype("float32")
        state[k] = a
    model.set_state_dict(state)
    x = rng.rand(1, 3, 3, 32, 32).astype("float32")
    got = model(paddle.to_tensor(x)).numpy()
    ref = numpy_pptsm_mv2(state, x.reshape(3, 3, 32, 32), 3, mode == "online")
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-4)
