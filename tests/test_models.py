import numpy as np
import paddle
import pytest

from conftest import ROOT
from paddlevideo import build_model, load_config
from paddlevideo.models.resnet import BasicBlock, temporal_shift


def shift_reference(x, t, ratio, online=False):
    """Obvious NumPy version: channels [0,c1) of frame t take frame t-1, [c1,c2) take t+1, with Paddle's op's
    channel counts c1 = int(c*r), c2 = int(2*c*r) (float32: the op's attribute is a float); online: [0,c1) from
    t-1 only (c2 = c1)."""
    nt, c, h, w = x.shape
    x5 = x.reshape(nt // t, t, c, h, w)
    out = np.zeros_like(x5)
    c1, c2 = int(np.float32(c) * np.float32(ratio)), int(np.float32(2 * c) * np.float32(ratio))
    c2 = c1 if online else c2
    out[:, 1:, :c1] = x5[:, :-1, :c1]
    out[:, :-1, c1:c2] = x5[:, 1:, c1:c2]
    out[:, :, c2:] = x5[:, :, c2:]
    return out.reshape(nt, c, h, w)


@pytest.mark.parametrize("t,c", [(8, 16), (4, 64), (3, 24)])
def test_shift_matches_numpy(t, c):
    x = np.random.RandomState(0).randn(2 * t, c, 3, 5).astype("float32")
    got = temporal_shift(paddle.to_tensor(x), t, 0.125).numpy()
    np.testing.assert_array_equal(got, shift_reference(x, t, 0.125))


def test_block_shift_is_residual():
    paddle.seed(1)
    block = BasicBlock(16, 16, 1, shift_ratio=0.125)
    block.eval()
    x = np.random.RandomState(1).randn(8, 16, 6, 6).astype("float32")
    got = block(paddle.to_tensor(x), 4).numpy()
    res = block.residual(paddle.to_tensor(shift_reference(x, 4, 0.125))).numpy()
    np.testing.assert_allclose(got, np.maximum(res + x, 0), rtol=1e-5, atol=1e-5)


def count(model):
    return sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)


def test_tsm_r50_parameter_count():
    model = build_model(load_config(ROOT + "/configs/tsm.yaml"))
    assert count(model) == 24327632
    assert len(model.state_dict()) == 267           # as many tensors as the legacy TSM_final


def test_tsn_tsm_logits_shapes_train_and_eval():
    for name in ("TSM", "TSN"):
        cfg = load_config(ROOT + "/configs/tsm_small.yaml", ["MODEL.name=" + name])
        model = build_model(cfg)
        x = paddle.rand([2, 8, 3, 64, 64])
        model.train()
        assert model(x).shape == [2, 5]
        model.eval()
        out = model(x)
        assert out.shape == [2, 5]
        assert model(paddle.rand([1, 3, 3, 64, 64])).shape == [1, 5]   # other seg_num, same weights
        np.testing.assert_array_equal(model(x).numpy(), out.numpy())       # eval: dropout off, deterministic
        model.train()
        assert not np.allclose(model(x).numpy(), out.numpy())             # train: dropout 0.5 is on


def test_tsm_differs_from_tsn_only_by_shift():
    small = ROOT + "/configs/tsm_small.yaml"
    tsm = build_model(load_config(small))
    tsm0 = build_model(load_config(small, ["MODEL.shift_ratio=0"]))
    tsn = build_model(load_config(small, ["MODEL.name=TSN"]))
    for m in (tsm0, tsn):
        m.set_state_dict(tsm.state_dict())
    for m in (tsm, tsm0, tsn):
        m.eval()
    x = paddle.rand([1, 8, 3, 64, 64])
    np.testing.assert_allclose(tsm0(x).numpy(), tsn(x).numpy(), rtol=1e-6, atol=1e-6)
    assert not np.allclose(tsm(x).numpy(), tsn(x).numpy(), atol=1e-4)


def test_unknown_model_is_a_user_error():
    from paddlevideo import UserError
    cfg = load_config(ROOT + "/configs/tsm_small.yaml", ["MODEL.name=FOO"])
    with pytest.raises(UserError, match="available: .*TSM"):
        build_model(cfg)


def test_zero_init_residual_blocks_start_as_identity():
    from paddlevideo.models.resnet import ResNet
    paddle.seed(0)
    net = ResNet(18, zero_init_residual=True)
    net.eval()
    block = net.res2b                                    # no projection: output = relu(0 + x) = x for x >= 0
    x = paddle.rand([2, 64, 8, 8])
    np.testing.assert_allclose(block(x, 1).numpy(), x.numpy(), atol=1e-6)
    assert not np.allclose(ResNet(18).res2b(x, 1).numpy(), x.numpy())


def test_trunk_options_small_stem_width_blocks():
    """MODEL.stem/width/blocks: the small stem keeps 1/8 of the input size, width and blocks set
    the channels and block counts; the names stay legacy-style."""
    cfg = load_config(ROOT + "/configs/demo.yaml")
    model = build_model(cfg)
    trunk = model.backbone
    assert trunk.conv1.conv.weight.shape == [16, 3, 3, 3]
    assert trunk.stage_channels == [16, 32, 64, 128] and model.fc.weight.shape == [128, 8]
    feat = trunk(paddle.rand([2 * 8, 3, 32, 32]), 8)
    assert feat.shape == [16, 128, 4, 4]                         # 32 / 8: no stride-2 stem, no max-pool
    blocks = sorted({k.split(".")[1] for k in model.state_dict() if k.startswith("backbone.res")})
    assert blocks == ["res2a", "res2b", "res3a", "res3b", "res4a", "res4b", "res5a", "res5b"]
    deep = build_model(load_config(ROOT + "/configs/demo.yaml", ["MODEL.blocks=[1,3,1,1]", "MODEL.width=8",
                                                                   "MODEL.num_layers=50"]))
    assert deep.backbone.stage_channels == [32, 64, 128, 256]        # bottleneck: 4 x width x 2^s
    assert "backbone.res3c.branch2c.conv.weight" in deep.state_dict()
    assert "backbone.res3d.branch2a.conv.weight" not in deep.state_dict()
    st = build_model(load_config(ROOT + "/configs/stnet_small.yaml", ["MODEL.width=16", "MODEL.stem=small"]))
    assert st(paddle.rand([1, 3, 9, 32, 32])).shape == [1, 5]


def test_defaults_keep_the_published_trunk():
    model = build_model(load_config(ROOT + "/configs/tsm_small.yaml"))
    assert model.backbone.conv1.conv.weight.shape == [64, 3, 7, 7]
    assert model.backbone(paddle.rand([8, 3, 64, 64]), 8).shape == [8, 512, 2, 2]


@pytest.mark.parametrize("over,match", [("MODEL.stem=cifar", "demo.yaml: MODEL.stem 'cifar'"),
                                        ("MODEL.blocks=[2,2]", "MODEL.blocks must be 4"),
                                        ("MODEL.width=0", "MODEL.width must be")])
def test_bad_trunk_options_are_one_line_errors(over, match):
    from paddlevideo import UserError
    with pytest.raises(UserError, match=match):
        build_model(load_config(ROOT + "/configs/demo.yaml", [over]))


def test_online_tsm_is_causal_and_its_clip_logits_are_the_mean_of_frame_logits():
    x = paddle.to_tensor(np.random.RandomState(3).rand(1, 6, 3, 48, 48).astype("float32"))
    out = {}
    for mode in ("online", "bidirectional"):
        paddle.seed(0)
        model = build_model(load_config(ROOT + "/configs/tsm_small.yaml", ["MODEL.shift_mode=" + mode,
                                                                            "MODEL.width=16"]))
        model.eval()
        frames = model.forward_frames(x).numpy()                            # [1, 6, K]
        np.testing.assert_allclose(frames.mean(1), model(x).numpy(), rtol=1e-5, atol=1e-6)
        prefix = model.forward_frames(x[:, :3]).numpy()                     # frames 0..2 alone
        out[mode] = np.abs(prefix - frames[:, :3]).max()
    assert out["online"] < 1e-5                   # frame t sees frames 0..t only: a prefix changes nothing
    assert out["bidirectional"] > 1e-3            # the offline shift reads frame t+1 (the test can fail)
    with pytest.raises(Exception, match="shift_mode 'sideways' is not supported"):
        load_config(ROOT + "/configs/tsm_small.yaml", ["MODEL.shift_mode=sideways"])
