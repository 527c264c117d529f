"""TSM on PaddleVideo's PP-TSM MobileNetV2 trunk: the released layout, the shift placement, online mode, export."""
import json
import os

import numpy as np
import paddle
import pytest

from conftest import DATA, ROOT
from paddlevideo import build_model, load_config, load_weights
from paddlevideo.engine.backends import InferenceRunner, OnnxRunner, dygraph_runner, export_model, to_onnx
from paddlevideo.models.mobilenet_v2 import InvertedResidual

MV2 = os.path.join(ROOT, "configs", "pptsm_mv2.yaml")


def test_released_layout_loads_key_for_key_and_the_shift_sits_on_the_ten_residual_blocks(tmp_path):
    model = build_model(load_config(MV2))
    with open(os.path.join(DATA, "layouts", "ppTSM_mv2_k400.json")) as f:
        layout = json.load(f)["params"]
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == dict((n, s) for n, s in layout)
    assert sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient) == 2737360
    rng = np.random.RandomState(0)
    state = {n: (np.abs(rng.standard_normal(s)) + 1 if n.endswith("_variance") else rng.standard_normal(s) * 0.05)
             .astype("float32") for n, s in layout}
    path = str(tmp_path / "ppTSM_mv2_k400.pdparams")
    paddle.save(state, path)
    load_weights(model, path)
    assert all(np.array_equal(model.state_dict()[n].numpy(), a) for n, a in state.items())
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
