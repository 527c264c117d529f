"""Fast inference: the slice shift, export, Paddle Inference outputs equal the dynamic graph."""
import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

from conftest import ROOT, clip, run_cli
from paddlevideo import build_model, load_config
from paddlevideo.engine.backends import InferenceRunner, OnnxRunner, dygraph_runner, export_model, to_onnx
from paddlevideo.models.resnet import temporal_shift
from test_models import shift_reference

TSM_SMALL = os.path.join(ROOT, "configs", "tsm_small.yaml")
STNET_SMALL = os.path.join(ROOT, "configs", "stnet_small.yaml")
SLOWFAST_SMALL = os.path.join(ROOT, "configs", "slowfast_small.yaml")


@pytest.mark.parametrize("t", [1, 3, 8])
@pytest.mark.parametrize("impl", ["op", "slice", "gather"])
@pytest.mark.parametrize("ratio", [0.125, 0.2, 0.25, 1 / 3])
@pytest.mark.parametrize("c", [16, 21, 64])
@pytest.mark.parametrize("online", [False, True])
def test_shift_formulations_equal_numpy(t, impl, ratio, c, online):
    """One channel rule (Paddle's op's) in every formulation: r = 0.2, C = 64 shifts 12 back and 13 forward;
    online: the 12 from the past only."""
    x = np.random.RandomState(t).randn(2 * t, c, 3, 3).astype("float32")
    a = temporal_shift(paddle.to_tensor(x), t, ratio, impl, online).numpy()
    np.testing.assert_array_equal(a, shift_reference(x, t, ratio, online))


@pytest.mark.parametrize("mode", ["bidirectional", "online"])
def test_exported_tsm_with_an_uneven_shift_ratio_equals_dygraph(tmp_path, mode):
    """r = 0.2 on ResNet-18's 64 and 128 channels: 2*int(C*r) = 24, 50 but int(2*C*r) = 25, 51; and the online
    (past-only) shift through both exported formulations."""
    cfg = load_config(TSM_SMALL, ["MODEL.shift_ratio=0.2", "MODEL.shift_mode=" + mode])
    paddle.seed(0)
    model = build_model(cfg)
    model.eval()
    x = np.random.RandomState(0).randn(2, 8, 3, 64, 64).astype("float32")
    ref = dygraph_runner(model)(x)
    for impl, make in (("slice", lambda p: InferenceRunner(p, threads=2)), ("gather", lambda p: OnnxRunner(to_onnx(p)))):
        prefix = export_model(model, str(tmp_path / impl), [8, 3, 64, 64], impl)
        np.testing.assert_allclose(make(prefix)(x), ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("config,shape", [(TSM_SMALL, [8, 3, 64, 64]), (STNET_SMALL, [6, 9, 64, 64]),
                                          (SLOWFAST_SMALL, [16, 3, 64, 64])])
def test_exported_model_matches_dygraph(tmp_path, config, shape):
    paddle.seed(0)
    model = build_model(load_config(config))
    model.eval()
    x = np.random.RandomState(0).randn(*([2] + shape)).astype("float32")
    ref = dygraph_runner(model)(x)
    prefix = export_model(model, str(tmp_path / "m"), shape)
    got = InferenceRunner(prefix, threads=2)(x)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(InferenceRunner(prefix)(x[:1]), ref[:1], atol=1e-4, rtol=1e-4)   # any batch
    gprefix = export_model(model, str(tmp_path / "g"), shape, shift_impl="gather")
    onnx = OnnxRunner(to_onnx(gprefix), threads=2)
    np.testing.assert_allclose(onnx(x), ref, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(onnx(x[:1]), ref[:1], atol=1e-4, rtol=1e-4)


def test_predict_backends_agree_and_export_cli(tmp_path):
    paddle.seed(1)
    model = build_model(load_config(TSM_SMALL))
    w = str(tmp_path / "w.pdparams")
    paddle.save(model.state_dict(), w)
    outs = {}
    for backend in ("dygraph", "paddle-inference", "onnxruntime", "auto"):
        run_cli("predict.py", "--config", TSM_SMALL, "--weights", w, "--backend", backend, "--cache_dir",
                tmp_path / "cache", "--video_path", clip("arm_wrestling.mp4"), "--output", tmp_path / (backend + ".json"))
        outs[backend] = json.loads((tmp_path / (backend + ".json")).read_text())[0]["top_k"]
    for b in ("paddle-inference", "onnxruntime", "auto"):
        assert [t["label"] for t in outs["dygraph"]] == [t["label"] for t in outs[b]]
        np.testing.assert_allclose([t["score"] for t in outs["dygraph"]], [t["score"] for t in outs[b]], atol=1e-4)
    assert os.listdir(tmp_path / "cache" / "exported")          # exported once, cached by weights hash
    env = dict(os.environ)
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    p = subprocess.run(["bash", os.path.join(ROOT, "run.sh"), "export", "TSM", TSM_SMALL, "--weights", w,
                        "--save_dir", str(tmp_path / "exp")], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert os.path.exists(tmp_path / "exp" / "TSM.pdiparams")
    run_cli("predict.py", "--config", TSM_SMALL, "--exported", tmp_path / "exp" / "TSM",
                  "--video_path", clip("arm_wrestling.mp4"), "--output", tmp_path / "exp.json")
    got = json.loads((tmp_path / "exp.json").read_text())[0]["top_k"]
    np.testing.assert_allclose([t["score"] for t in got], [t["score"] for t in outs["dygraph"]], atol=1e-4)


def test_int8_and_bf16_agree_with_fp32_on_real_clips(tmp_path, write_list):
    """int8 (ONNX Runtime QDQ, calibrated on the real clips) and bf16 (Paddle Inference oneDNN) of a small
    trained-from-init TSM: the same top-1 as fp32 on every real clip, probabilities within 0.1 / 0.05."""
    paddle.seed(2)
    opts = ["-o", "MODEL.num_classes=5", "-o", "MODEL.seg_num=4", "-o", "INFER.short_size=72",
            "-o", "INFER.target_size=64"]
    model = build_model(load_config(TSM_SMALL, [o for o in opts if o != "-o"]))
    w = str(tmp_path / "w.pdparams")
    paddle.save(model.state_dict(), w)
    clips = [clip(n) for n in ("arm_wrestling.mp4", "eivideo_example.mp4", "mmaction2_test.mp4",
                               "mmaction2_test.avi", "paddlevideo_example.avi")]
    lst = write_list(clips)
    out = {}
    for precision in ("fp32", "int8", "bf16"):
        run_cli("predict.py", "--config", TSM_SMALL, *opts, "--weights", w, "--filelist", lst, "--precision",
                precision, "--calibration", lst, "--cache_dir", tmp_path / "cache", "--infer_topk", 5,
                "--output", tmp_path / (precision + ".json"))
        out[precision] = {r["video"]: {t["label"]: t["score"] for t in r["top_k"]}
                          for r in json.loads((tmp_path / (precision + ".json")).read_text())}
    assert len(out["fp32"]) == 5
    for precision, tol in (("int8", 0.1), ("bf16", 0.05)):
        for v, probs in out["fp32"].items():
            low = out[precision][v]
            assert max(low, key=low.get) == max(probs, key=probs.get), (precision, v)
            assert max(abs(low[k] - probs[k]) for k in probs) < tol, (precision, v, low, probs)
    # the quantized model is cached beside the export, keyed by the calibration list
    assert any(".int8-" in f for _, _, fs in os.walk(tmp_path / "cache") for f in fs)
    from paddlevideo import UserError
    from paddlevideo.runtime.backends import make_runner
    base = [o for o in opts if o != "-o"]             # in-process: the CLIs turn these UserErrors into one line
    for precision, backend, word in (("int8", "paddle-inference", "--backend onnxruntime"),
                                     ("bf16", "onnxruntime", "--backend paddle-inference"),
                                     ("int8", "dygraph", "--backend onnxruntime")):
        with pytest.raises(UserError) as e:
            make_runner(load_config(TSM_SMALL, base + ["INFER.precision=" + precision]), "infer", w, backend)
        assert word in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(UserError) as e:
        make_runner(load_config(TSM_SMALL, base + ["VALID.filelist=null", "INFER.precision=int8"]), "infer", w,
                    "auto", cache_dir=str(tmp_path / "c2"))
    assert "--calibration LIST" in str(e.value)


def test_auto_falls_back_only_when_the_onnx_path_cannot_take_the_model(tmp_path, monkeypatch, capfd):
    """--backend auto: a model paddle2onnx cannot convert runs on Paddle Inference (one warning line); any other
    error (a bug) propagates; an explicit --backend onnxruntime says to use the other backend."""
    from paddlevideo import UserError
    from paddlevideo.engine import backends
    cfg = load_config(TSM_SMALL, ["MODEL.num_classes=3", "MODEL.seg_num=2", "MODEL.width=16",
                                  "INFER.short_size=32", "INFER.target_size=32"])
    paddle.seed(0)
    w = str(tmp_path / "w.pdparams")
    paddle.save(build_model(cfg).state_dict(), w)

    def unsupported(prefix, opset=13):
        raise backends.OnnxUnsupported("paddle2onnx cannot convert {} (no such op)".format(prefix))
    monkeypatch.setattr(backends, "to_onnx", unsupported)
    runner, used = backends.make_runner(cfg, "infer", w, "auto", cache_dir=str(tmp_path))
    assert used == "paddle-inference" and "onnxruntime path unavailable (paddle2onnx cannot" in capfd.readouterr().err
    with pytest.raises(UserError, match="pass --backend paddle-inference"):
        backends.make_runner(cfg, "infer", w, "onnxruntime", cache_dir=str(tmp_path))

    def bug(prefix, opset=13):
        raise KeyError("a bug, not an unsupported model")
    monkeypatch.setattr(backends, "to_onnx", bug)
    with pytest.raises(KeyError, match="a bug"):
        backends.make_runner(cfg, "infer", w, "auto", cache_dir=str(tmp_path))
