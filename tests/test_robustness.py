"""Broken videos, bad lists, hanging decoders, killed and interrupted training."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest

import broken
from conftest import DATA, ROOT, clip, run_cli
from paddlevideo import UserError, load_config
from paddlevideo.data import VideoDataset, build_loader, parse_list, unpack_batch
from paddlevideo.data import dataset as dataset_mod
from paddlevideo.data.video import VideoError, call_with_timeout

SMALL = os.path.join(ROOT, "configs", "tsm_small.yaml")
OPTS = ["-o", "MODEL.num_classes=2", "-o", "MODEL.seg_num=4", "-o", "TRAIN.short_size=72",
        "-o", "TRAIN.target_size=64", "-o", "TEST.short_size=72", "-o", "TEST.target_size=64",
        "-o", "INFER.short_size=72", "-o", "INFER.target_size=64"]
GOOD = [("arm_wrestling.mp4", 0), ("eivideo_example.mp4", 1), ("mmaction2_test.mp4", 0),
        ("paddlevideo_example.avi", 1)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return broken.make_corpus(DATA, str(tmp_path_factory.mktemp("corpus")))


def test_reader_on_broken_and_unusual_files(corpus):
    cfg = load_config(SMALL, ["MODEL.seg_num=8"]).mode("test")
    ds = VideoDataset([(corpus[k], 0) for k in broken.BROKEN + broken.READABLE], cfg)
    for i, kind in enumerate(broken.BROKEN):
        with pytest.raises(VideoError):
            ds.load(i)
    for j, kind in enumerate(broken.READABLE):
        clip_, _ = ds.load(len(broken.BROKEN) + j)
        assert clip_.shape == (8, 3, 112, 112) and np.isfinite(clip_).all(), kind


def test_short_clip_loops_frames_like_legacy(corpus):
    cfg = load_config(SMALL, ["MODEL.seg_num=8"]).mode("test")      # 3 frames, 8 segments
    got, _ = VideoDataset([(corpus["short"], 0)], cfg).load(0)
    # legacy: avg = 3 // 8 = 0 -> start = i, frames i % 3
    np.testing.assert_array_equal(got[0], got[3])
    np.testing.assert_array_equal(got[1], got[7])
    assert not np.array_equal(got[0], got[1])


def test_hanging_decoder_is_skipped_within_the_time_limit(monkeypatch):
    with pytest.raises(VideoError, match="decode_timeout"):
        call_with_timeout(lambda: time.sleep(30), 0.5)
    real = dataset_mod.read_frames

    def maybe_hang(path, choose, decoder="auto"):
        if "eivideo" in path:
            time.sleep(3600)             # a decoder stuck forever
        return real(path, choose, decoder)
    monkeypatch.setattr(dataset_mod, "read_frames", maybe_hang)   # forked workers inherit it
    cfg = load_config(SMALL, ["TEST.decode_timeout=2", "MODEL.seg_num=2"]).mode("test")
    items = [(clip(n), y) for n, y in GOOD]
    loader = build_loader(VideoDataset(items, cfg), 2, num_workers=2)
    t0 = time.time()
    ok, failed = [], []
    for batch in loader:
        _, _, idx, bad = unpack_batch(batch)
        ok += list(idx)
        failed += list(bad)
    assert time.time() - t0 < 20
    assert sorted(ok) == [0, 2, 3] and failed == [1]


def write(path, lines):
    with open(path, "w") as f:
        f.write("".join(l + "\n" for l in lines))
    return str(path)


def test_train_eval_predict_report_broken_files(tmp_path, corpus):
    good = ["{} {}".format(clip(n), y) for n, y in GOOD] * 2
    bad = ["{} 0".format(corpus[k]) for k in broken.BROKEN]
    odd = ["{} 1".format(corpus[k]) for k in ("grayscale", "odd_size", "header_longer")]
    lst = write(tmp_path / "mixed.list", good + bad + odd)
    out = run_cli("train.py", "--config", SMALL, *OPTS, "-o", "TRAIN.filelist=" + lst, "--batch_size", 4,
                  "--epoch", 1, "--valid_interval", 0, "--save_dir", tmp_path / "ck", "--fix_random_seed", True)
    assert "skipped videos: 5" in out.stdout               # counted, not replaced by other clips
    for k in broken.BROKEN:
        assert corpus[k] in out.stderr
    ev = run_cli("eval.py", "--config", SMALL, *OPTS, "--filelist", lst, "--batch_size", 3,
                 "--weights", tmp_path / "ck" / "TSM_final.pdparams", "--save_dir", tmp_path)
    res = json.loads((tmp_path / "TSM_eval.json").read_text())
    assert res["num_videos"] == 16 and res["num_evaluated"] == 11 and res["num_skipped"] == 5
    assert sorted(res["skipped"]) == sorted(corpus[k] for k in broken.BROKEN)
    assert "5 skipped" in ev.stdout and corpus["truncated"] in ev.stdout
    preds = json.loads((tmp_path / "TSM_predictions.json").read_text())     # one entry per video
    assert len(preds) == 16 and sum("error" in p for p in preds) == 5
    assert all(len(p["top_k"]) == 2 and p["label"] in (0, 1) for p in preds if "error" not in p)   # k clamped
    assert sum(r["count"] for r in res["per_class"]) == 11
    assert res["mean_class_acc"] == pytest.approx(sum(r["top1"] for r in res["per_class"]) / len(res["per_class"]))
    assert (tmp_path / "TSM_confusion.png").stat().st_size > 5000
    pr = run_cli("predict.py", "--config", SMALL, *OPTS, "--filelist", lst, "--output", tmp_path / "p.json",
                 "--weights", tmp_path / "ck" / "TSM_final.pdparams", check=False)
    assert pr.returncode == 1, pr.stderr[-2000:]
    pj = json.loads((tmp_path / "p.json").read_text())
    assert len(pj) == 16 and sorted(p["video"] for p in pj if "error" in p) == sorted(corpus[k] for k in broken.BROKEN)
    assert pr.stdout.count("error: cannot decode") == 5 and "5 of 16 videos failed" in pr.stdout
    # quiet decoding: the decoders' own messages stay hidden, our one line per bad video stays; --debug shows all
    for p in (out, ev, pr):
        assert not re.search(r"video_reader\.cc|moov atom|@ 0x[0-9a-f]+\]", p.stderr), p.stderr[-2000:]
    assert all(corpus[k] in out.stderr and corpus[k] in pr.stderr for k in broken.BROKEN)
    dbg = run_cli("predict.py", "--config", SMALL, *OPTS, "--video_path", corpus["truncated"], "--debug",
                  "--weights", tmp_path / "ck" / "TSM_final.pdparams", "--backend", "dygraph", check=False)
    assert dbg.returncode == 1 and re.search(r"video_reader\.cc|moov atom", dbg.stderr), dbg.stderr[-2000:]


def test_list_problems_stop_before_training(tmp_path):
    lst = write(tmp_path / "bad.list", ["{} 0".format(clip("arm_wrestling.mp4")), "/no/such.mp4 1",
                                        clip("arm_wrestling.mp4") + " 7", clip("arm_wrestling.mp4")])
    p = run_cli("train.py", "--config", SMALL, *OPTS, "-o", "TRAIN.filelist=" + lst, check=False)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert ":2:" in p.stderr and ":3:" in p.stderr and ":4:" in p.stderr and "[TRAIN] Epoch" not in p.stdout
    empty = write(tmp_path / "empty.list", [])
    p = run_cli("train.py", "--config", SMALL, *OPTS, "-o", "TRAIN.filelist=" + empty, check=False)
    assert p.returncode == 2 and "no usable entries" in p.stderr
    with pytest.raises(UserError, match="not found"):
        parse_list(str(tmp_path / "missing.list"))


def test_checker_reports_and_cleans(tmp_path, corpus):
    lines = ["{} 1".format(corpus[k]) for k in broken.BROKEN + broken.READABLE] + ["/no/file.mp4 0"]
    lst = write(tmp_path / "c.list", lines)
    p = subprocess.run([sys.executable, os.path.join(ROOT, "data", "dataset", "check_videos.py"), lst,
                        "--config", SMALL, "--output", str(tmp_path / "clean.list")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 1
    for k in broken.BROKEN:
        assert "BROKEN    {}".format(corpus[k]) in p.stdout
    assert "BAD LINE" in p.stdout and "6 of 12 entries are broken" in p.stdout
    clean = (tmp_path / "clean.list").read_text().split("\n")
    assert sorted(l.split()[0] for l in clean if l) == sorted(corpus[k] for k in broken.READABLE)


# ------------------------------------------------------------------ killed / interrupted training
def train_cmd(lst, save, epochs=3):
    return [sys.executable, os.path.join(ROOT, "train.py"), "--config", SMALL, *OPTS,
            "-o", "TRAIN.filelist=" + lst, "--batch_size", 4, "--epoch", epochs, "--valid_interval", 0,
            "--fix_random_seed", True, "--log_interval", 1, "--save_dir", save, "--resume", "auto"]


def run_until(cmd, trigger=None, sig=signal.SIGKILL, delay=0.0):
    """Run ``cmd`` in its own process group; once a stdout line contains ``trigger`` send ``sig`` to
    the whole group (the trainer and its loader workers, like Ctrl-C in a terminal or a killed job).
    Return (returncode, stdout)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env=env, cwd=ROOT, start_new_session=True)
    out = []
    try:
        for line in p.stdout:
            out.append(line)
            if trigger and trigger in line:
                time.sleep(delay)
                os.killpg(p.pid, sig)
                break
        rest, _ = p.communicate(timeout=300)
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)   # leftovers of the group, if any
        except ProcessLookupError:
            pass
    return p.returncode, "".join(out) + (rest or "")


@pytest.fixture(scope="module")
def kill_setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("kill")
    lst = write(d / "train.list", ["{} {}".format(clip(n), y) for n, y in GOOD * 3])   # 12 clips, 3 steps
    rc, out = run_until(train_cmd(lst, d / "ref"))
    assert rc == 0, out
    return d, lst, paddle.load(str(d / "ref" / "TSM_final.pdparams"))


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=k)


def test_sigkill_at_several_points_then_resume_auto(kill_setup):
    d, lst, ref = kill_setup
    save = d / "killed"
    for trigger, delay in (("Epoch 0, iter 1", 0), ("saved", 0), ("Epoch 1 finished", 0.05)):
        rc, out = run_until(train_cmd(lst, save), trigger, signal.SIGKILL, delay)
        assert rc == -signal.SIGKILL, out
    rc, out = run_until(train_cmd(lst, save))
    assert rc == 0 and "resumed" in out, out
    assert_same(ref, paddle.load(str(save / "TSM_final.pdparams")))
    assert not [f for f in os.listdir(save) if ".tmp" in f]


def test_ctrl_c_saves_state_and_resume_is_exact(kill_setup):
    d, lst, ref = kill_setup
    save = d / "sigint"
    rc, out = run_until(train_cmd(lst, save), "Epoch 1, iter 1", signal.SIGINT)
    assert rc == 130, out
    m = re.search(r"interrupted in epoch 1 after batch (\d+)", out)
    assert m and int(m.group(1)) >= 2, out             # the batch in progress is finished, then saved
    assert (save / "TSM_interrupted.state.json").exists()
    rc, out = run_until(train_cmd(lst, save))
    assert rc == 0 and "at epoch 1, batch {}".format(m.group(1)) in out, out
    assert "Epoch 1, iter 0" not in out and "Epoch 0" not in out
    assert_same(ref, paddle.load(str(save / "TSM_final.pdparams")))


def test_a_bug_in_the_reader_is_not_a_bad_video():
    from paddlevideo.data.video import read_frames
    with pytest.raises(ZeroDivisionError):                      # was turned into "cannot decode this video"
        read_frames(clip("arm_wrestling.mp4"), lambda n: [n // 0])
    with pytest.raises(VideoError):
        read_frames(clip("arm_wrestling.mp4") + ".nope", lambda n: [0])


def test_timed_out_decode_gives_stderr_back_and_covers_frame_folders(tmp_path, monkeypatch):
    code = ("import os, sys, time\n"
            "from paddlevideo import quiet\n"
            "from paddlevideo.data.video import VideoError, call_with_timeout\n"
            "quiet.enable()\n"
            "def stuck():\n"
            "    with quiet.hidden():\n"
            "        time.sleep(3)\n"
            "try:\n"
            "    call_with_timeout(stuck, 0.3)\n"
            "except VideoError:\n"
            "    pass\n"
            "os.write(2, b'fd2-after-timeout\\n')\n"
            "time.sleep(3.2)\n"                 # the stuck block ends: it must not take fd 2 away again
            "os.write(2, b'fd2-after-thread\\n')\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "fd2-after-timeout" in p.stderr and "fd2-after-thread" in p.stderr, p.stderr
    frames = tmp_path / "v"
    frames.mkdir()
    cfg = load_config(SMALL, ["MODEL.format=frames", "TEST.decode_timeout=0.2"]).mode("test")
    monkeypatch.setattr(dataset_mod, "read_frame_dir", lambda *a: time.sleep(2))
    with pytest.raises(VideoError, match="decode_timeout"):
        dataset_mod.VideoDataset([(str(frames), 0)], cfg).load(0)


def test_internal_errors_and_os_errors_are_one_line(capsys, monkeypatch):
    import errno
    from paddlevideo import quiet
    from paddlevideo.errors import run_cli as cli
    monkeypatch.setattr(quiet, "enable", lambda: None)          # keep this pytest process's streams as they are

    def buggy(argv):
        return {}["missing"]

    def full_disk(argv):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "out/x.json")
    for main, code, text in ((buggy, 1, "internal error (KeyError: 'missing') — a bug, not your input; rerun with "
                                        "--debug"),
                             (full_disk, 2, "cannot access out/x.json: no space left on the device")):
        with pytest.raises(SystemExit) as e:
            cli(main, [])
        err = capsys.readouterr().err
        assert e.value.code == code and text in err and err.count("\n") == 1 and "Traceback" not in err


def test_onnxruntime_optimizer_log_is_quiet_unless_debug(tmp_path):
    """int8 quantization runs ONNX Runtime sessions whose optimizer logs ~30 'Removing initializer' lines."""
    code = ("import os, sys\n"
            "from paddlevideo import quiet, load_config, build_model\n"
            "from paddlevideo.engine.backends import export_model, to_onnx, int8_model\n"
            "if sys.argv[1] == 'quiet':\n"
            "    quiet.enable()\n"
            "d = sys.argv[2]\n"
            "lst = os.path.join(d, 'c.list')\n"
            "open(lst, 'w').write('{} 0\\n')\n".format(clip("arm_wrestling.mp4")) +
            "cfg = load_config({!r}, ['MODEL.num_classes=2', 'INFER.target_size=64', 'INFER.short_size=72', "
            "'INFER.calibration_size=1'])\n".format(SMALL) +
            "m = build_model(cfg)\nm.eval()\n"
            "int8_model(to_onnx(export_model(m, os.path.join(d, 'm'), [8, 3, 64, 64], 'gather')), cfg.mode('infer'), lst)\n")
    logs = {}
    for mode in ("debug", "quiet"):
        (tmp_path / mode).mkdir()
        p = subprocess.run([sys.executable, "-c", code, mode, str(tmp_path / mode)], capture_output=True, text=True,
                           cwd=ROOT, timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        logs[mode] = p.stdout + p.stderr
    assert "Removing initializer" in logs["debug"] and "Removing initializer" not in logs["quiet"]
