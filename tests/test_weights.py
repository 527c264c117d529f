"""Weights: every published layout imported with identical outputs, download cache, fine-tuning."""
import hashlib
import http.server
import io
import os
import subprocess
import sys
import tarfile
import threading

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from conftest import ROOT, clip, run_cli

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from paddlevideo import UserError, build_model, load_config, load_weights
from paddlevideo.download import fetch
from paddlevideo.weights import legacy_name, new_name, read_lodtensor, write_lodtensor

TSM_SMALL = os.path.join(ROOT, "configs", "tsm_small.yaml")
STNET_SMALL = os.path.join(ROOT, "configs", "stnet_small.yaml")


def random_model(config, seed, *over):
    paddle.seed(seed)
    m = build_model(load_config(config, list(over)))
    # random BN statistics too, so that every tensor matters
    sd = {k: v.numpy() for k, v in m.state_dict().items()}
    rng = np.random.RandomState(seed)
    for k in sd:
        if k.endswith("_variance"):
            sd[k] = rng.uniform(0.5, 1.5, sd[k].shape).astype("float32")
        elif k.endswith(("_mean", "bn.bias", "bn.weight")) or ".bn" in k and k.endswith(("weight", "bias")):
            sd[k] = rng.uniform(-0.3, 0.3, sd[k].shape).astype("float32") + (1.0 if k.endswith("weight") else 0.0)
    m.set_state_dict(sd)
    m.eval()
    return m


def legacy_tsm_forward(model, x):
    """Legacy TSM at inference: pooled per-frame features x (1 - p) (downgrade_in_infer), mean, fc."""
    t = x.shape[1]
    with paddle.no_grad():
        f = model.backbone(x.reshape([-1] + list(x.shape[2:])), t)
        f = F.adaptive_avg_pool2d(f, 1).flatten(1) * (1 - model.dropout.p)
        return F.log_softmax(model.fc(f.reshape([-1, t, f.shape[-1]]).mean(1)), -1).numpy()


def logp(model, x):
    with paddle.no_grad():
        return F.log_softmax(model(x), -1).numpy()


def write_combined(path, named):
    with open(path, "wb") as f:
        for name in sorted(named):
            write_lodtensor(f, named[name])


def write_dir(path, named):
    os.makedirs(path, exist_ok=True)
    for name, a in named.items():
        with open(os.path.join(path, name), "wb") as f:
            write_lodtensor(f, a)


def state(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


def test_lodtensor_roundtrip():
    for a in (np.random.rand(3, 4, 2).astype("float32"), np.arange(5, dtype="int64"), np.float32(2.5).reshape([])):
        buf = io.BytesIO()
        write_lodtensor(buf, a)
        buf.seek(0)
        np.testing.assert_array_equal(read_lodtensor(buf), a)
        assert read_lodtensor(buf) is None


def test_lodtensor_format_agrees_with_paddle(tmp_path):
    """Paddle's own legacy-IR loader reads what we write; we read what Paddle's save_vars writes."""
    a = np.random.RandomState(0).rand(4, 3, 2).astype("float32")
    with open(tmp_path / "ours_w", "wb") as f:
        write_lodtensor(f, a)
    np.save(tmp_path / "a.npy", a)
    code = """
import sys, numpy as np, paddle
d = sys.argv[1]
paddle.enable_static()
st = paddle.static.load_program_state(d + '/mine')
assert np.array_equal(st['ours_w'], np.load(d + '/a.npy')), st.keys()
x = paddle.static.create_parameter([5, 2], 'float32', name='pw', default_initializer=paddle.nn.initializer.Constant(1.5))
y = paddle.static.create_parameter([3], 'float32', name='aa', default_initializer=paddle.nn.initializer.Constant(-2.0))
exe = paddle.static.Executor(paddle.CPUPlace())
exe.run(paddle.static.default_startup_program())
paddle.static.io.save_vars(exe, d + '/theirs', vars=[x, y])
paddle.static.io.save_vars(exe, d + '/theirs', vars=[y, x], filename='combined')
"""
    os.makedirs(tmp_path / "mine")
    os.replace(tmp_path / "ours_w", tmp_path / "mine" / "ours_w")
    env = dict(os.environ, FLAGS_enable_pir_api="0")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    with open(tmp_path / "theirs" / "pw", "rb") as f:
        np.testing.assert_array_equal(read_lodtensor(f), np.full((5, 2), 1.5, np.float32))
    with open(tmp_path / "theirs" / "combined", "rb") as f:
        np.testing.assert_array_equal(read_lodtensor(f), np.full((3,), -2.0, np.float32))
        np.testing.assert_array_equal(read_lodtensor(f), np.full((5, 2), 1.5, np.float32))


@pytest.fixture(scope="module")
def tsm_src():
    return random_model(TSM_SMALL, 11)


def test_tsm_every_layout_gives_reference_outputs(tmp_path, tsm_src):
    x = paddle.to_tensor(np.random.RandomState(2).randn(2, 8, 3, 64, 64).astype("float32"))
    sd = state(tsm_src)
    legacy = {legacy_name(k): v for k, v in sd.items()}
    new = {new_name(k): v for k, v in sd.items()}
    paddle.save(sd, str(tmp_path / "ours.pdparams"))
    paddle.save(legacy, str(tmp_path / "legacy_dict.pdparams"))
    write_combined(str(tmp_path / "TSM_final.pdparams"), legacy)
    paddle.save(new, str(tmp_path / "TSM_k400.pdparams"))
    ref_new = logp(tsm_src, x)                  # our / new PaddleVideo semantics (upscale_in_train)
    ref_legacy = legacy_tsm_forward(tsm_src, x)  # legacy semantics for the same weights
    for name, ref in (("ours.pdparams", ref_new), ("TSM_k400.pdparams", ref_new),
                      ("legacy_dict.pdparams", ref_legacy), ("TSM_final.pdparams", ref_legacy)):
        m = build_model(load_config(TSM_SMALL))
        load_weights(m, str(tmp_path / name))
        m.eval()
        assert np.abs(logp(m, x) - ref).max() <= 1e-4, name
    assert np.abs(ref_new - ref_legacy).max() > 1e-3   # the dropout semantics matter


LAYOUTS = ("combined", "pickle", "dir", "tar.gz")


@pytest.fixture(scope="module")
def legacy_files(tmp_path_factory):
    """The seeded stand-in of the published TSM_final layout, written in every legacy container."""
    import legacy_reference
    d = tmp_path_factory.mktemp("legacy")
    named = legacy_reference.stand_in_weights()
    write_combined(str(d / "TSM_final.pdparams"), named)                    # release 1.6
    paddle.save(named, str(d / "TSM.pdparams"))                             # 2.0-era pickled dict
    write_dir(str(d / "TSM_final"), named)                                  # parameter directory
    with tarfile.open(d / "TSM_final.tar.gz", "w:gz") as tar:
        tar.add(d / "TSM_final", arcname="TSM_final")
    return {"combined": d / "TSM_final.pdparams", "pickle": d / "TSM.pdparams", "dir": d / "TSM_final",
            "tar.gz": d / "TSM_final.tar.gz"}


@pytest.mark.parametrize("model_name", ["TSM", "TSN"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_legacy_checkpoint_every_container_gives_stored_reference(legacy_files, layout, model_name):
    """Each container of a legacy TSM/TSN checkpoint reproduces the stored outputs of the NumPy
    model of the legacy graph (tests/legacy_reference.py), to 1e-5 in log-probability."""
    import legacy_reference
    ref = np.load(legacy_reference.REFERENCE)[model_name.lower()]
    m = build_model(load_config(os.path.join(ROOT, "configs", model_name.lower() + ".yaml")))
    load_weights(m, str(legacy_files[layout]))
    m.eval()
    got = logp(m, paddle.to_tensor(legacy_reference.stand_in_input()))
    assert np.abs(got - ref).max() <= 1e-5, (layout, np.abs(got - ref).max())


def test_stored_legacy_reference_is_reproduced_by_numpy_model():
    """The stored reference outputs are what the NumPy legacy model computes (and shift/dropout matter)."""
    import legacy_reference
    stored = np.load(legacy_reference.REFERENCE)
    p, x = legacy_reference.stand_in_weights(), legacy_reference.stand_in_input()
    np.testing.assert_allclose(legacy_reference.forward(p, x, shift=True, dropout=0.5), stored["tsm"], atol=1e-9)
    np.testing.assert_allclose(legacy_reference.forward(p, x, shift=False, dropout=0.0), stored["tsn"], atol=1e-9)
    assert np.abs(stored["tsm"] - legacy_reference.forward(p, x, shift=True, dropout=0.0)).max() > 1e-2


def test_legacy_temporal_shift_reference_matches_paddle():
    import legacy_reference
    x = np.random.RandomState(0).randn(2 * 4, 16, 3, 3).astype("float32")
    np.testing.assert_array_equal(legacy_reference.temporal_shift(x, 4),
                                  F.temporal_shift(paddle.to_tensor(x), 4, 0.125).numpy())


def test_imagenet_trunk_layouts_initialise_tsm_and_stnet(tmp_path, tsm_src):
    sd = state(tsm_src)
    legacy = {legacy_name(k): v for k, v in sd.items() if not k.startswith("fc")}
    legacy["fc_0.w_0"] = np.zeros((512, 1000), np.float32)       # ImageNet classifier
    legacy["fc_0.b_0"] = np.zeros((1000,), np.float32)
    write_dir(str(tmp_path / "ResNet18_pretrained"), legacy)
    with tarfile.open(tmp_path / "ResNet18_pretrained.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "ResNet18_pretrained", arcname="ResNet18_pretrained")
    new_backbone = {new_name(k)[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone")}
    paddle.save(new_backbone, str(tmp_path / "ResNet18_pretrain.pdparams"))
    for name in ("ResNet18_pretrained", "ResNet18_pretrained.tar.gz", "ResNet18_pretrain.pdparams"):
        m = build_model(load_config(TSM_SMALL))
        skipped = load_weights(m, str(tmp_path / name), allow_classifier_mismatch=True)
        assert skipped == ["fc.weight", "fc.bias"] or name.endswith(".pdparams")
        for k in sd:
            if k.startswith("backbone"):
                np.testing.assert_array_equal(m.state_dict()[k].numpy(), sd[k], err_msg=name + " " + k)
        st = build_model(load_config(STNET_SMALL))
        load_weights(st, str(tmp_path / name), allow_classifier_mismatch=True)
        w = st.backbone.conv1.conv.weight.numpy()
        assert w.shape == (64, 9, 7, 7)
        np.testing.assert_allclose(w[:, 4], sd["backbone.conv1.conv.weight"].mean(1) / 3, rtol=1e-5)
    with pytest.raises(UserError, match="fc.weight"):   # without the flag a 1000-class fc is an error
        load_weights(build_model(load_config(TSM_SMALL)), str(tmp_path / "ResNet18_pretrained"))


def test_stnet_legacy_layouts_map_auto_names_by_order(tmp_path):
    src = random_model(STNET_SMALL, 5)
    x = paddle.to_tensor(np.random.RandomState(4).randn(1, 6, 9, 64, 64).astype("float32"))
    sd = state(src)
    legacy = {legacy_name(k): v for k, v in sd.items()}
    assert "batch_norm_24.w_1" in legacy and "conv3d_1.w_0" in legacy and "xception_att1_2.w_0" in legacy
    write_combined(str(tmp_path / "STNET_final.pdparams"), legacy)
    renamed = {k.replace("batch_norm_24", "batch_norm_7").replace("batch_norm_44", "batch_norm_12")
               .replace("conv3d_0", "conv3d_3").replace("conv3d_1", "conv3d_4"): v for k, v in legacy.items()}
    paddle.save(renamed, str(tmp_path / "STNET.pdparams"))
    ref = logp(src, x)
    for name in ("STNET_final.pdparams", "STNET.pdparams"):
        m = build_model(load_config(STNET_SMALL))
        load_weights(m, str(tmp_path / name))
        m.eval()
        assert np.abs(logp(m, x) - ref).max() <= 1e-4, name


def test_mismatch_names_offenders_and_classes(tmp_path, tsm_src):
    paddle.save(state(tsm_src), str(tmp_path / "tsm.pdparams"))
    paddle.save(state(build_model(load_config(STNET_SMALL))), str(tmp_path / "stnet.pdparams"))
    with pytest.raises(UserError) as e:
        load_weights(build_model(load_config(TSM_SMALL)), str(tmp_path / "stnet.pdparams"))
    msg = str(e.value)
    assert "unexpected backbone.temporal" in msg and "wrong shape backbone.conv1.conv.weight" in msg
    assert "num_classes=5" in msg and "\n" not in msg
    with pytest.raises(UserError, match="fc.weight .*implies num_classes=5"):
        load_weights(build_model(load_config(TSM_SMALL, ["MODEL.num_classes=3"])), str(tmp_path / "tsm.pdparams"))
    (tmp_path / "junk.pdparams").write_bytes(b"\x01\x02junk")
    with pytest.raises(UserError, match="neither"):
        load_weights(build_model(load_config(TSM_SMALL)), str(tmp_path / "junk.pdparams"))


def test_finetune_params_only_file_to_other_num_classes(tmp_path, tsm_src):
    legacy = {legacy_name(k): v for k, v in state(tsm_src).items()}
    write_combined(str(tmp_path / "TSM_final.pdparams"), legacy)         # 5 classes, params only
    lst = tmp_path / "train.list"
    lst.write_text("".join("{} {}\n".format(clip(n), y) for n, y in
                           [("arm_wrestling.mp4", 0), ("eivideo_example.mp4", 1)]))
    common = ["--config", TSM_SMALL, "-o", "MODEL.num_classes=2", "-o", "TRAIN.filelist={}".format(lst),
              "-o", "TRAIN.short_size=72", "-o", "TRAIN.target_size=64", "-o", "MODEL.seg_num=2",
              "--batch_size", 2, "--epoch", 1, "--valid_interval", 0, "--fix_random_seed", True]
    out = run_cli("train.py", *common, "--resume", tmp_path / "TSM_final.pdparams", "--save_dir", tmp_path / "ft")
    assert "fine-tuning from it at epoch 0 with a fresh optimizer" in out.stdout
    assert "Epoch 0 finished" in out.stdout
    assert "skipped fc.weight, fc.bias" in out.stderr and "5 classes" in out.stderr
    ft = paddle.load(str(tmp_path / "ft" / "TSM_final.pdparams"))
    assert list(ft["fc.weight"].shape) == [512, 2]
    out = run_cli("train.py", *common, "--pretrain", tmp_path / "TSM_final.pdparams", "--save_dir", tmp_path / "pt")
    assert "initialised from" in out.stdout and "classifier re-initialised" in out.stdout


# --------------------------------------------------------------------------- download cache
PAYLOAD = os.urandom(300_000)


class Handler(http.server.BaseHTTPRequestHandler):
    files = {}
    log = []
    flaky_left = {"n": 0}

    def log_message(self, *a):
        pass

    def do_GET(self):
        Handler.log.append((self.path, self.headers.get("Range")))
        kind, _, name = self.path.strip("/").partition("/")
        if kind == "missing" or name not in Handler.files:
            self.send_error(404)
            return
        data = Handler.files[name]
        if kind == "wrong":
            data = bytes(len(data))
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", "bytes {}-{}/{}".format(start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if kind == "flaky" and Handler.flaky_left["n"] > 0:
            Handler.flaky_left["n"] -= 1
            self.wfile.write(body[:len(body) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    Handler.log.clear()
    Handler.files = {"w.pdparams": PAYLOAD}
    yield "http://127.0.0.1:{}".format(srv.server_address[1])
    srv.shutdown()
    srv.server_close()


def md5(b):
    return hashlib.md5(b).hexdigest()


def test_download_then_cached(server, tmp_path):
    p = fetch(server + "/good/w.pdparams", cache=str(tmp_path), md5=md5(PAYLOAD))
    assert open(p, "rb").read() == PAYLOAD and p == str(tmp_path / "w.pdparams")
    n = len(Handler.log)
    assert fetch(server + "/good/w.pdparams", cache=str(tmp_path), md5=md5(PAYLOAD)) == p
    assert len(Handler.log) == n                                     # served from the cache


def test_dropped_connection_resumes_with_range(server, tmp_path):
    Handler.flaky_left["n"] = 2
    p = fetch(server + "/flaky/w.pdparams", cache=str(tmp_path), md5=md5(PAYLOAD), backoff=0.01)
    assert open(p, "rb").read() == PAYLOAD
    ranges = [r for _, r in Handler.log]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")


def test_env_var_sets_cache(server, tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLEVIDEO_WEIGHTS_HOME", str(tmp_path / "envcache"))
    assert fetch(server + "/good/w.pdparams").startswith(str(tmp_path / "envcache"))


@pytest.mark.parametrize("url,match", [("/wrong/w.pdparams", "corrupt"), ("/missing/w.pdparams", "HTTP 404")])
def test_bad_download_leaves_nothing(server, tmp_path, url, match):
    with pytest.raises(UserError) as e:
        fetch(server + url, cache=str(tmp_path), md5=md5(PAYLOAD), backoff=0.01)
    msg = str(e.value)
    assert match in msg and server + url in msg and str(tmp_path / "w.pdparams") in msg and "\n" not in msg
    assert os.listdir(tmp_path) == []


def test_offline_is_one_line(tmp_path):
    with pytest.raises(UserError, match="download of http://127.0.0.1:9/x.pdparams failed"):
        fetch("http://127.0.0.1:9/x.pdparams", cache=str(tmp_path), retries=2, backoff=0.01)
    assert os.listdir(tmp_path) == []


def tar_bytes(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_tar_is_extracted_safely(server, tmp_path):
    arr = io.BytesIO()
    write_lodtensor(arr, np.ones((2, 2), np.float32))
    Handler.files["Res_pretrained.tar.gz"] = tar_bytes([("Res_pretrained/conv1_weights", arr.getvalue())])
    Handler.files["evil.tar.gz"] = tar_bytes([("../../escaped.txt", b"x")])
    d = fetch(server + "/good/Res_pretrained.tar.gz", cache=str(tmp_path / "c"))
    assert d == str(tmp_path / "c" / "Res_pretrained") and os.listdir(d) == ["conv1_weights"]
    with pytest.raises(UserError, match="unsafe member"):
        fetch(server + "/good/evil.tar.gz", cache=str(tmp_path / "c"), backoff=0.01)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "c" / "evil").exists()
    assert sorted(os.listdir(tmp_path / "c")) == ["Res_pretrained", "Res_pretrained.tar.gz"]


def test_predict_downloads_published_weights(server, tmp_path, tsm_src):
    """predict.py without --weights fetches MODEL.weights into the cache and uses it."""
    legacy = {legacy_name(k): v for k, v in state(tsm_src).items()}
    write_combined(str(tmp_path / "TSM_final.pdparams"), legacy)
    Handler.files["TSM_final.pdparams"] = open(tmp_path / "TSM_final.pdparams", "rb").read()
    out = run_cli("predict.py", "--config", TSM_SMALL, "-o", "MODEL.weights={}/good/TSM_final.pdparams".format(server),
                  "--cache_dir", tmp_path / "cache", "--video_path", clip("arm_wrestling.mp4"))
    assert out.stdout.count("probability:") == 5
    assert os.path.exists(tmp_path / "cache" / "TSM_final.pdparams")
