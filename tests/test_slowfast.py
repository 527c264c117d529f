"""SlowFast: the released layout, the slow index rule, shapes, the eval-mode head, dense sampling, training."""
import json
import os

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from conftest import DATA, ROOT, clip, run_cli
from paddlevideo import UserError, build_model, load_config, load_weights
from paddlevideo.data.sampling import dense_indices
from paddlevideo.models.slowfast import slow_indices

SLOWFAST = os.path.join(ROOT, "configs", "slowfast.yaml")
SLOWFAST_8X8 = os.path.join(ROOT, "configs", "slowfast_8x8.yaml")
SMALL = os.path.join(ROOT, "configs", "slowfast_small.yaml")


def released_layout():
    with open(os.path.join(DATA, "layouts", "SlowFast.json")) as f:
        return json.load(f)["params"]


def count(model):
    return sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)


@pytest.fixture(scope="module")
def sf416():
    return build_model(load_config(SLOWFAST))


def test_parameter_count_and_released_layout(sf416):
    assert count(sf416) == 34480216
    ours = {k: list(v.shape) for k, v in sf416.state_dict().items()}
    assert ours == dict((n, s) for n, s in released_layout())          # 552 tensors, same names and shapes


def test_slow_index_rule():
    assert slow_indices(32, 8).tolist() == [0, 10, 20, 31]
    assert slow_indices(32, 4).tolist() == [0, 4, 8, 13, 17, 22, 26, 31]


def test_seeded_released_weights_load_every_key_and_mismatches_are_errors(tmp_path, sf416):
    rng = np.random.RandomState(0)
    state = {n: rng.standard_normal(s).astype("float32") * 0.01 for n, s in released_layout()}
    for n in state:
        if n.endswith("_variance"):
            state[n] = np.abs(state[n]) + 1.0
    path = str(tmp_path / "SlowFast.pdparams")
    table = {n: "param_{}".format(i) for i, n in enumerate(state)}         # what paddle.save adds
    paddle.save(dict(state, **{"StructuredToParameterName@@": table}), path)
    load_weights(sf416, path)
    got = sf416.state_dict()
    for n, a in state.items():                                          # every released tensor was used
        np.testing.assert_array_equal(got[n].numpy(), a, err_msg=n)
    extra = dict(state, **{"backbone.s6.weight": np.zeros(3, "float32")})
    paddle.save(extra, str(tmp_path / "extra.pdparams"))
    with pytest.raises(UserError, match="unexpected backbone.s6.weight"):
        load_weights(sf416, str(tmp_path / "extra.pdparams"))
    other = build_model(load_config(SLOWFAST, ["MODEL.num_classes=7"]))     # fine-tuning on own classes
    assert load_weights(other, path, allow_classifier_mismatch=True) == ["head.projection.weight",
                                                                         "head.projection.bias"]
    np.testing.assert_array_equal(other.state_dict()["backbone.s5.pathway1_res2.branch2.c.weight"].numpy(),
                                  state["backbone.s5.pathway1_res2.branch2.c.weight"])
    with pytest.raises(UserError, match="implies num_classes=400"):
        load_weights(other, path)
    missing = {k: v for k, v in state.items() if not k.startswith("backbone.s3_fuse")}
    paddle.save(missing, str(tmp_path / "missing.pdparams"))
    with pytest.raises(UserError, match="missing backbone.s3_fuse"):
        load_weights(sf416, str(tmp_path / "missing.pdparams"))


def test_output_shapes_4x16_and_8x8(sf416):
    sf416.eval()
    with paddle.no_grad():
        out = sf416(paddle.rand([1, 32, 3, 224, 224]))
    assert out.shape == [1, 400]
    np.testing.assert_allclose(np.exp(out.numpy()).sum(), 1.0, rtol=1e-5)   # eval: log of probabilities
    m8 = build_model(load_config(SLOWFAST_8X8))
    assert m8.backbone.s1_fuse._conv_f2s.weight.shape == [16, 8, 7, 1, 1]
    m8.eval()
    with paddle.no_grad():
        assert m8(paddle.rand([1, 32, 3, 96, 96])).shape == [1, 400]


def test_eval_head_averages_softmax_over_pooled_positions():
    """A crop larger than the pool gives several positions: eval returns log(mean softmax) of their
    logits, as PaddleVideo's SlowFastHead; training returns the mean logits."""
    paddle.seed(3)
    cfg = load_config(SMALL, ["MODEL.pool_size=[16,1,1]", "MODEL.dropout_ratio=0.0"])
    m = build_model(cfg)
    x = paddle.rand([2, 16, 3, 64, 64])
    m.eval()
    with paddle.no_grad():
        slow, fast = m.backbone(paddle.gather(x.transpose([0, 2, 1, 3, 4]), paddle.to_tensor([0, 5, 10, 15]), axis=2),
                                x.transpose([0, 2, 1, 3, 4]))
        feat = paddle.concat([slow.mean(2, keepdim=True), fast.mean(2, keepdim=True)], 1).transpose([0, 2, 3, 4, 1])
        per_pos = F.softmax(m.head.projection(feat), -1).numpy()           # [2, 1, 2, 2, classes]
        got = m(x).numpy()
    assert per_pos.shape[2:4] == (2, 2)
    np.testing.assert_allclose(np.exp(got), per_pos.mean(axis=(1, 2, 3)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n,train", [(300, False), (300, True), (20, False)])
def test_dense_sampling(n, train):
    idx = dense_indices(n, 16, 2, train, np.random.default_rng(0))
    assert len(idx) == 16 and all(b - a in (2, 2 - n) for a, b in zip(idx, idx[1:]))
    if n >= 31 and not train:
        assert idx[0] == (n - 31) // 2
    if n < 31:
        assert idx == [(2 * i) % n for i in range(16)]


def test_reduced_slowfast_trains_evaluates_predicts_on_real_clips(tmp_path):
    lst = tmp_path / "train.list"
    lst.write_text("".join("{} {}\n".format(clip(n), y) for n, y in
                           (("arm_wrestling.mp4", 0), ("mmaction2_test.mp4", 1), ("paddlevideo_example.avi", 2),
                            ("eivideo_example.mp4", 3))))
    common = ["--model_name", "SLOWFAST", "--config", SMALL, "-o", "TRAIN.filelist={}".format(lst),
              "-o", "TEST.filelist={}".format(lst)]
    run_cli("train.py", *common, "--save_dir", tmp_path / "ck", "--valid_interval", "0", "--fix_random_seed", "True",
            "--log_interval", "1", "--pretrain", "none")
    log = [json.loads(line) for line in (tmp_path / "ck" / "SLOWFAST_log.jsonl").read_text().splitlines()]
    assert [r["type"] for r in log][-1] == "epoch" and np.isfinite(log[-1]["loss"]) and log[-1]["step"] == 2
    w = tmp_path / "ck" / "SLOWFAST_final.pdparams"
    p = run_cli("eval.py", *common, "--weights", w, "--save_dir", tmp_path, "--backend", "dygraph")
    res = json.loads((tmp_path / "SLOWFAST_eval.json").read_text())
    assert res["num_evaluated"] == 4, p.stdout
    p = run_cli("predict.py", *common, "--weights", w, "--video_path", clip("arm_wrestling.mp4"),
                "--backend", "onnxruntime")
    assert p.stdout.count("class: ") == 5
