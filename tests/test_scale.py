"""Inference at dataset scale: eval/predict/features sharded over 2 processes (paddle.distributed.launch through
run.sh --nproc) equal one process, failures included; a run killed with SIGKILL (one rank) and rerun with --resume
equals an uninterrupted run; the part files' rules (cut lines, order, changed lists)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest

from conftest import ROOT, clip, rank_pid
from paddlevideo import build_model, load_config
from paddlevideo.engine.records import Parts, write_array

SMALL = os.path.join(ROOT, "configs", "tsm_small.yaml")
OPTS = ["-o", "MODEL.num_classes=3", "-o", "MODEL.seg_num=4", "--backend", "dygraph", "--batch_size", "1"]
for _s in ("TEST", "INFER"):
    OPTS += ["-o", _s + ".short_size=72", "-o", _s + ".target_size=64", "-o", _s + ".num_reader_threads=1"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Weights with spread-out logits, and a list with a broken file and equal file names in two folders."""
    d = tmp_path_factory.mktemp("scale")
    from paddlevideo.data import VideoDataset
    from paddlevideo.engine.backends import Features
    paddle.seed(3)
    cfg = load_config(SMALL, ["MODEL.num_classes=3", "MODEL.seg_num=4", "INFER.short_size=72", "INFER.target_size=64"])
    net = build_model(cfg)
    net.eval()
    names = ["arm_wrestling.mp4", "mmaction2_test.mp4", "eivideo_example.mp4"]
    x = np.stack([VideoDataset([(clip(n), 0) for n in names], cfg.mode("infer")).load(i)[0] for i in range(3)])
    f = Features(net)(paddle.to_tensor(x)).numpy()           # random features are nearly parallel: spread them
    w = np.linalg.lstsq(f - f.mean(0), np.eye(3) * 8 - 8 / 3, rcond=None)[0].astype("float32")
    state = dict(net.state_dict(), **{"fc.weight": w, "fc.bias": (-f.mean(0) @ w).astype("float32")})
    paddle.save(state, str(d / "w.pdparams"))
    (d / "a").mkdir()
    (d / "b").mkdir()
    shutil.copy(clip("arm_wrestling.mp4"), d / "a" / "x.mp4")
    shutil.copy(clip("mmaction2_test.mp4"), d / "b" / "x.mp4")
    shutil.copy(clip("eivideo_example.mp4"), d / "b" / "x_2.mp4")
    (d / "empty.mp4").write_bytes(b"")
    videos = [(clip("arm_wrestling.mp4"), 0), (d / "a" / "x.mp4", 1), (d / "empty.mp4", 2), (d / "b" / "x.mp4", 0),
              (clip("paddlevideo_example.avi"), 1), (d / "b" / "x_2.mp4", 2), (clip("mmaction2_test.avi"), 0)]
    (d / "list.txt").write_text("".join("{} {}\n".format(v, y) for v, y in videos * 2))
    return d


def cli(mode, d, out, *extra, nproc=1, wait=True):
    """``bash run.sh MODE TSM tsm_small ...`` (``--nproc`` through paddle.distributed.launch)."""
    args = ["bash", os.path.join(ROOT, "run.sh"), mode, "TSM", SMALL, *OPTS, "--weights", d / "w.pdparams",
            "--filelist", d / "list.txt", *extra]
    if mode == "eval":
        args += ["--save_dir", out]
    else:
        args += ["--output", out / "p.json", "--features", out / "f"]
    if nproc > 1:
        args += ["--nproc", nproc]
    env = dict(os.environ, PV_LAUNCH_LOG_DIR=str(out) + "_log",
               VIRTUAL_ENV=os.environ.get("VIRTUAL_ENV", os.path.dirname(os.path.dirname(sys.executable))))
    cmd = [str(a) for a in args]
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def one(setup):
    """The one-process reference: eval and predict (features + predictions) over the whole list."""
    e = cli("eval", setup, setup / "e1")
    assert e.returncode == 0, e.stdout[-2000:] + e.stderr[-2000:]
    p = cli("predict", setup, setup / "p1")
    assert p.returncode == 1 and "2 of 14 videos failed" in p.stdout, p.stdout[-2000:] + p.stderr[-2000:]
    return setup


def same_outputs(a, b):
    """Predictions JSON, features index and every feature file of two predict runs are equal."""
    assert (a / "p.json").read_text() == (b / "p.json").read_text()
    ia, ib = (json.loads((x / "f" / "features.json").read_text()) for x in (a, b))
    for k in ("dim", "videos", "failed", "views"):
        assert ia[k] == ib[k], k
    assert len(ia["videos"]) == 12 and len(ia["failed"]) == 2
    for v in ia["videos"]:
        np.testing.assert_array_equal(np.load(a / "f" / v["file"]), np.load(b / "f" / v["file"]), err_msg=v["file"])


def test_two_processes_equal_one(one):
    d = one
    e = cli("eval", d, d / "e2", nproc=2)
    assert e.returncode == 0, e.stdout[-2000:] + e.stderr[-2000:]
    a, b = (json.loads((d / x / "TSM_eval.json").read_text()) for x in ("e1", "e2"))
    assert (a["processes"], b["processes"]) == (1, 2)
    for k in ("loss", "top1_acc", "top5_acc", "confusion", "per_class", "mean_class_acc", "num_videos",
              "num_evaluated", "num_skipped", "skipped"):
        assert a[k] == b[k], k                                  # exactly
    assert a["num_evaluated"] == 12 and len({row[0] for row in a["confusion"]}) >= 1
    preds = (d / "e1" / "TSM_predictions.json").read_text()
    assert preds == (d / "e2" / "TSM_predictions.json").read_text()
    rows = json.loads(preds)
    assert [r["index"] for r in rows] == list(range(14)) and sum("error" in r for r in rows) == 2
    assert len({r["top_k"][0]["class"] for r in rows if "top_k" in r}) > 1     # the metrics see varied outputs
    # an interrupted sharded evaluation (one part file cut mid-line) finished by one process: the same numbers
    part = sorted((d / "e2" / "TSM_predictions.json.parts").glob("*.jsonl"))[1]
    lines = part.read_text().splitlines(True)
    part.write_text("".join(lines[:2]) + lines[2][:30])
    r = cli("eval", d, d / "e2", "--resume")
    assert len(lines) == 7 and r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]      # rank 1: 7 videos
    assert "resuming: 9 of 14 videos already evaluated, 5 to go" in r.stdout        # 7 + 2 complete lines
    again = json.loads((d / "e2" / "TSM_eval.json").read_text())
    assert all(a[k] == again[k] for k in ("loss", "top1_acc", "top5_acc", "confusion", "per_class", "skipped"))
    assert (d / "e2" / "TSM_predictions.json").read_text() == preds
    p = cli("predict", d, d / "p2", nproc=2)
    assert p.returncode == 1 and "2 of 14 videos failed" in p.stdout, p.stdout[-2000:] + p.stderr[-2000:]
    assert "Container failed" not in p.stdout + p.stderr and "error:" not in p.stderr   # not reported as a crash
    same_outputs(d / "p1", d / "p2")
    names = [v["file"] for v in json.loads((d / "p1" / "f" / "features.json").read_text())["videos"]]
    assert len(set(names)) == 12 and {"x.npy", "x_2.npy", "x_2_2.npy"} <= set(names)   # never one file for two


def test_sigkill_then_resume_equals_uninterrupted(one):
    d = one
    out = d / "pk"
    proc = cli("predict", d, out, nproc=2, wait=False)
    parts = out / "f" / "features.parts"
    deadline = time.time() + 300
    killed = False
    while time.time() < deadline and proc.poll() is None and not killed:
        n = sum(f.read_text().count("\n") for f in parts.glob("*.jsonl")) if parts.is_dir() else 0
        if n >= 3:                    # mid-run: some features written, most not
            pid = rank_pid(str(out) + "_log", 1)
            if pid:
                os.kill(pid, signal.SIGKILL)
                killed = True
        time.sleep(0.05)
    log, _ = proc.communicate(timeout=120)
    assert killed and proc.returncode != 0
    assert "rerun the same command with --resume" in log, log[-2000:]        # run.sh names what to do
    assert not (out / "f" / "features.json").exists() and not (out / "p.json").exists()
    done = sum(f.read_text().count("\n") for f in parts.glob("*.jsonl"))
    assert 3 <= done < 14
    other = paddle.load(str(d / "w.pdparams"))                 # other weights: the resume must not mix them in
    other["fc.bias"] = other["fc.bias"] + 1
    paddle.save(other, str(out / "other.pdparams"))
    refused = cli("predict", d, out, "--resume", "--weights", out / "other.pdparams")
    assert refused.returncode == 2 and "holds the outputs of another run (weights " in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "rerun without --resume" in refused.stderr
    r = cli("predict", d, out, "--resume")                     # one process finishes what the two did not
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert "[FEATURES] resuming: {} of 14 videos already written".format(done) in r.stdout
    same_outputs(d / "p1", out)


def test_parts_skip_cut_lines_and_changed_list(tmp_path):
    items = [("/v/a.mp4", 0), ("/v/b.mp4", 1), ("/v/c.mp4", 0)]
    p = Parts(str(tmp_path / "o.parts"))
    assert p.start(items) == [0, 1, 2]
    p.write({"index": 0, "video": "/v/a.mp4", "top_k": []})
    p.write({"index": 2, "video": "/v/c.mp4", "top_k": []})
    with pytest.raises(RuntimeError):
        p.write({"index": 1, "video": "/v/b.mp4"})            # a part file is in list order
    p.finish()
    part = next((tmp_path / "o.parts").glob("*.jsonl"))
    with open(part, "a") as f:
        f.write('{"index": 1, "video": "/v/b.mp4", "top')       # a line cut by a kill
    r = Parts(str(tmp_path / "o.parts"), resume=True)
    assert r.start(items) == [1] and r.num_done == 2
    r.write({"index": 1, "video": "/v/b.mp4", "top_k": [1]})
    r.finish()
    assert [x["index"] for x in r.merged(items)] == [0, 1, 2]
    moved = [("/v/a.mp4", 0), ("/v/z.mp4", 1), ("/v/b.mp4", 1)]   # the list changed: position 2 is redone
    assert Parts(str(tmp_path / "o.parts"), resume=True).start(moved) == [1, 2]
    with pytest.raises(Exception, match="2 of 3 videos have no output line"):   # a failed merge leaves no file
        write_array(str(tmp_path / "failed.json"), Parts(str(tmp_path / "o.parts")).merged(moved),
                    head={"model": "TSM", "note": "a [head] with ] and }"}, key="videos")
    assert not list(tmp_path.glob("failed.json*"))
    ident = {"weights": "ab12", "INFER.num_clips": 1, "backend": "onnxruntime", "precision": "fp32"}
    Parts(str(tmp_path / "i.parts")).start(items, ident)
    assert Parts(str(tmp_path / "i.parts"), resume=True).start(items, dict(ident)) == [0, 1, 2]
    with pytest.raises(Exception, match=r"another run \(INFER.num_clips 1 there, 3 now; precision \"fp32\" there, "
                                        r"\"int8\" now\); rerun without --resume"):
        Parts(str(tmp_path / "i.parts"), resume=True).start(items, dict(ident, precision="int8", **{"INFER.num_clips": 3}))
    with pytest.raises(Exception, match="has no record of what wrote it"):          # parts without an identity
        Parts(str(tmp_path / "o.parts"), resume=True).start(items, ident)
    write_array(str(tmp_path / "o.json"), r.merged(items), head={"model": "TSM", "failed": [], "n": {"a": 1}},
                key="videos")
    whole = json.loads((tmp_path / "o.json").read_text())
    assert [v["index"] for v in whole["videos"]] == [0, 1, 2] and whole["n"] == {"a": 1} and whole["failed"] == []
    write_array(str(tmp_path / "o.jsonl"), r.merged(items))
    assert [json.loads(x)["index"] for x in (tmp_path / "o.jsonl").read_text().splitlines()] == [0, 1, 2]


def test_resume_and_sharding_need_an_output(setup):
    from paddlevideo import UserError
    from paddlevideo.engine.predict import predict
    cfg = load_config(SMALL, ["MODEL.num_classes=3", "MODEL.seg_num=4"])
    with pytest.raises(UserError, match="--resume needs --output FILE and/or --features DIR"):
        predict(cfg, filelist=str(setup / "list.txt"), weights=str(setup / "w.pdparams"), resume=True)


def test_a_library_evaluation_without_save_dir_under_a_launch_shares_one_temporary_folder(one, tmp_path):
    """evaluate_model(save_dir=None) on 2 launched ranks: rank 0's temporary folder is every rank's, the numbers
    equal one process, and the folder is gone afterwards."""
    d = one
    script = tmp_path / "ev.py"
    script.write_text(
        "import json, sys\n"
        "sys.path.insert(0, {root!r})\n"
        "from paddlevideo import load_config\n"
        "from paddlevideo.engine.evaluate import evaluate_model\n"
        "over = ['MODEL.num_classes=3', 'MODEL.seg_num=4', 'TEST.short_size=72', 'TEST.target_size=64',\n"
        "        'TEST.num_reader_threads=1', 'TEST.filelist={lst}']\n"
        "res = evaluate_model(load_config({cfg!r}, over), 'TSM', weights={w!r}, backend='dygraph')\n"
        "if res is not None:\n"
        "    json.dump({{k: res[k] for k in ('top1_acc', 'loss', 'num_evaluated')}}, open({out!r}, 'w'))\n".format(
            root=ROOT, lst=d / "list.txt", cfg=SMALL, w=str(d / "w.pdparams"), out=str(tmp_path / "res.json")))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    p = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
                        str(tmp_path / "log"), str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    ref = json.loads((d / "e1" / "TSM_eval.json").read_text())
    got = json.loads((tmp_path / "res.json").read_text())
    assert got == {k: ref[k] for k in ("top1_acc", "loss", "num_evaluated")}
    assert not [x for x in os.listdir(tmp) if x.startswith("pv_eval_")]
