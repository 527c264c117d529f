"""End to end through the CLIs on real clips: train (loss falls), resume, eval, predict."""
import json
import os
import re

import numpy as np
import paddle
import pytest

from conftest import ROOT, clip, run_cli

SMALL = os.path.join(ROOT, "configs", "tsm_small.yaml")
CLIPS = [("arm_wrestling.mp4", 0), ("eivideo_example.mp4", 1), ("mmaction2_test.mp4", 0),
         ("paddlevideo_example.avi", 1)]
# 2 classes, 64 px, 4 segments: quick on 2 cores.  Batches of 8 so that BatchNorm sees both classes.
OPTS = ["-o", "MODEL.num_classes=2", "-o", "MODEL.seg_num=4", "-o", "TRAIN.short_size=72",
        "-o", "TRAIN.target_size=64", "-o", "TEST.short_size=72", "-o", "TEST.target_size=64",
        "-o", "INFER.short_size=72", "-o", "INFER.target_size=64", "-o", "TRAIN.learning_rate=0.01"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("engine")
    lst = d / "train.list"
    lst.write_text("".join("{} {}\n".format(clip(n), y) for n, y in CLIPS * 4))
    test = d / "test.list"
    test.write_text("".join("{} {}\n".format(clip(n), y) for n, y in CLIPS + [("mmaction2_test.avi", 0)]))
    return d


def train(work, save, *extra, env=None):
    return run_cli("train.py", "--model_name", "TSM", "--config", SMALL, *OPTS,
                   "-o", "TRAIN.filelist={}".format(work / "train.list"), "--batch_size", 8,
                   "--valid_interval", 0, "--fix_random_seed", True, "--save_dir", work / save, *extra, env=env)


@pytest.fixture(scope="module")
def full_run(work):
    return train(work, "full", "--epoch", 2)


def epoch_losses(stdout):
    return [float(x) for x in re.findall(r"Epoch \d+ finished\tavg_loss: ([\d.]+)", stdout)]


def test_training_lowers_loss_and_writes_checkpoints(work, full_run):
    losses = epoch_losses(full_run.stdout)
    assert len(losses) == 2 and losses[1] < losses[0] - 0.05, full_run.stdout
    assert re.search(r"\[TRAIN\] Epoch 0, iter 0 \tLoss: [\d.]+,\ttop1_acc: [\d.]+, \ttop5_acc: [\d.]+", full_run.stdout)
    names = sorted(os.listdir(work / "full"))
    for stem in ("TSM_epoch0", "TSM_epoch1", "TSM_final"):
        for ext in (".pdparams", ".pdopt", ".state.json"):
            assert stem + ext in names
    state = json.loads((work / "full" / "TSM_epoch1.state.json").read_text())
    assert state["epoch"] == 1 and state["step"] == 4 and state["seed"] == 0


FAKE_VISUALDL = '''
import json, os
class LogWriter:
    def __init__(self, logdir):
        self.f = open(os.path.join(logdir, "scalars.jsonl"), "a")
    def add_scalar(self, tag, step, value):
        self.f.write(json.dumps([tag, step, value]) + "\\n")
    def close(self):
        self.f.close()
'''


def test_curves_png_and_visualdl_scalars(work, full_run, tmp_path):
    png = work / "full" / "TSM_curves.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10000
    log = [json.loads(line) for line in (work / "full" / "TSM_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log if r["type"] == "epoch"] == [0, 1]
    # VisualDL: a stand-in module with VisualDL's LogWriter API records what train.py writes
    (tmp_path / "visualdl").mkdir()
    (tmp_path / "visualdl" / "__init__.py").write_text(FAKE_VISUALDL)
    train(work, "vdl", "--epoch", 1, "--vdl_dir", tmp_path / "vdl", "--log_interval", 2,
          env={"PYTHONPATH": tmp_path})
    scalars = [json.loads(line) for line in (tmp_path / "vdl" / "scalars.jsonl").read_text().splitlines()]
    tags = {t for t, _, _ in scalars}
    assert {"train/loss", "train/lr", "train/top1", "epoch/loss", "epoch/top1"} <= tags
    assert [s for t, s, _ in scalars if t == "epoch/loss"] == [2]           # 16 clips / batch 8 = 2 steps
    missing = run_cli("train.py", "--model_name", "TSM", "--config", SMALL, *OPTS, "--vdl_dir", tmp_path / "x",
                      "-o", "TRAIN.filelist={}".format(work / "train.list"), "--save_dir", tmp_path / "y", check=False)
    assert missing.returncode == 2 and "pip install visualdl" in missing.stderr
    # scripts/plot_log.py compares runs
    out = run_cli("scripts/plot_log.py", work / "full" / "TSM_log.jsonl", work / "vdl" / "TSM_log.jsonl",
                  "--labels", "two epochs,one epoch", "-o", tmp_path / "both.png")
    assert (tmp_path / "both.png").read_bytes()[:4] == b"\x89PNG" and "written" in out.stdout
    bad = run_cli("scripts/plot_log.py", tmp_path / "nope.jsonl", check=False)
    assert bad.returncode == 2 and "nope.jsonl" in bad.stderr and "Traceback" not in bad.stderr


def test_resume_auto_matches_uninterrupted_run(work, full_run):
    first = train(work, "resumed", "--epoch", 1)
    assert "Epoch 1" not in first.stdout
    second = train(work, "resumed", "--epoch", 2, "--resume", "auto")
    assert "resumed" in second.stdout and "at epoch 1" in second.stdout
    assert "Epoch 0," not in second.stdout            # continued at the next epoch
    a = paddle.load(str(work / "full" / "TSM_final.pdparams"))
    b = paddle.load(str(work / "resumed" / "TSM_final.pdparams"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=k)
    oa = paddle.load(str(work / "full" / "TSM_final.pdopt"))
    ob = paddle.load(str(work / "resumed" / "TSM_final.pdopt"))
    assert oa["LR_Scheduler"] == ob["LR_Scheduler"]


def test_eval_counts_every_video(work, full_run):
    out = run_cli("eval.py", "--model_name", "TSM", "--config", SMALL, *OPTS, "--batch_size", 2,
                  "--filelist", work / "test.list", "--weights", work / "full" / "TSM_final.pdparams",
                  "--save_dir", work / "eval")
    res = json.loads((work / "eval" / "TSM_eval.json").read_text())
    assert res["num_videos"] == 5 and res["num_evaluated"] == 5 and res["num_skipped"] == 0  # 5 = 2+2+1
    # the summary agrees with the per-video predictions (2 classes: top_k holds both probabilities)
    preds = json.loads((work / "eval" / "TSM_predictions.json").read_text())
    p_true = [{t["label"]: t["score"] for t in p["top_k"]}[p["label_name"]] for p in preds]
    assert res["top1_acc"] == pytest.approx(np.mean([p["top_k"][0]["label"] == p["label_name"] for p in preds]))
    assert res["loss"] == pytest.approx(-np.mean(np.log(p_true)), rel=1e-4)
    assert "[TEST] Finish" in out.stdout


def test_predict_video_and_list(work, full_run, write_list):
    w = work / "full" / "TSM_final.pdparams"
    out = run_cli("predict.py", "--model_name", "TSM", "--config", SMALL, *OPTS, "--weights", w,
                  "--video_path", clip("arm_wrestling.mp4"), "--output", work / "one.json")
    res = json.loads((work / "one.json").read_text())
    assert len(res) == 1 and res[0]["video"] == clip("arm_wrestling.mp4")
    assert [t["label"] for t in res[0]["top_k"]] in (["0", "1"], ["1", "0"])
    assert sum(t["score"] for t in res[0]["top_k"]) == pytest.approx(1.0, abs=1e-4)
    assert "class: " in out.stdout and "probability: " in out.stdout
    lst = write_list([clip("mmaction2_test.avi"), clip("paddlevideo_example.avi")])
    run_cli("predict.py", "--model_name", "TSM", "--config", SMALL, *OPTS, "--weights", w,
            "--filelist", lst, "--output", work / "many.json", "--infer_topk", 1)
    many = json.loads((work / "many.json").read_text())
    assert [r["video"] for r in many] == [clip("mmaction2_test.avi"), clip("paddlevideo_example.avi")]
    assert all(len(r["top_k"]) == 1 for r in many)


def test_checkpoints_carry_their_config_and_the_clis_use_it(work, full_run, tmp_path):
    from paddlevideo import load_config
    for stem in ("TSM_epoch0", "TSM_epoch1", "TSM_final"):
        saved = load_config(str(work / "full" / (stem + ".yaml")))
        assert (saved.MODEL.name, saved.MODEL.num_classes, saved.MODEL.seg_num) == ("TSM", 2, 4)
    w = work / "full" / "TSM_final.pdparams"
    # no --config, no overrides: the network comes from TSM_final.yaml (2 classes, 4 segments, 64 px)
    run_cli("eval.py", "--weights", w, "--filelist", work / "test.list", "--save_dir", tmp_path / "a")
    run_cli("eval.py", "--config", SMALL, *OPTS, "--weights", w, "--filelist", work / "test.list",
            "--save_dir", tmp_path / "b")
    a, b = (json.loads((tmp_path / d / "TSM_eval.json").read_text()) for d in "ab")
    assert a["model"] == "TSM" and a["loss"] == pytest.approx(b["loss"], rel=1e-6)
    # an explicit config of another network stops with one line naming the keys and both values
    p = run_cli("predict.py", "--config", os.path.join(ROOT, "configs", "tsn.yaml"), "--weights", w,
                "--video_path", clip("arm_wrestling.mp4"), check=False)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert "MODEL.name 'TSM' there, 'TSN' here" in p.stderr and "MODEL.num_classes 2 there, 400 here" in p.stderr
    p = run_cli("eval.py", "--model_name", "TSN", "--weights", w, "--filelist", work / "test.list", check=False)
    assert p.returncode == 2 and "--model_name" in p.stderr and "MODEL.name 'TSM' there" in p.stderr
    # export puts the config in the exported folder; predict --exported needs nothing else
    run_cli("export.py", "--weights", w, "--save_dir", tmp_path / "exp")
    assert (tmp_path / "exp" / "TSM.yaml").is_file()
    run_cli("predict.py", "--exported", tmp_path / "exp" / "TSM", "--backend", "paddle-inference",
            "--video_path", clip("arm_wrestling.mp4"), "--output", tmp_path / "p.json")
    assert len(json.loads((tmp_path / "p.json").read_text())[0]["top_k"]) == 2


def test_resume_auto_takes_only_a_checkpoint_of_the_same_run(work, full_run, tmp_path):
    import shutil
    save = tmp_path / "ck"
    save.mkdir()
    for ext in (".pdparams", ".pdopt", ".yaml", ".state.json"):
        shutil.copy(work / "full" / ("TSM_epoch0" + ext), save / ("TSM_epoch0" + ext))
    same = train(work, save, "--epoch", 1, "--resume", "auto")
    assert "continuing TSM_epoch0 (the furthest checkpoint of the same network and training list)" in same.stdout
    assert "nothing to do" in same.stdout
    other = train(work, save, "--epoch", 1, "--resume", "auto", "-o", "MODEL.num_classes=3")
    assert "not TSM_epoch0 (another run: num_classes 2 (now 3))" in other.stdout
    assert "starting from scratch" in other.stdout and "Epoch 0 finished" in other.stdout


def test_user_mistakes_are_one_line(work):
    p = run_cli("train.py", "--config", SMALL, "-o", "TRAIN.filelist=/nope.list", check=False)
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and "/nope.list" in p.stderr
    p = run_cli("train.py", "--config", SMALL, "-o", "TRAIN.epohc=3", check=False)
    assert p.returncode == 2 and "TRAIN.epoch" in p.stderr and "Traceback" not in p.stderr
    # no --weights: the published file is fetched; offline that is one line naming the URL and the fix
    p = run_cli("predict.py", "--video_path", clip("arm_wrestling.mp4"), "--cache_dir", work / "cache",
                "-o", "MODEL.weights=http://127.0.0.1:9/TSM_final.pdparams", check=False)   # hermetic: a closed port
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert "TSM_final.pdparams" in p.stderr and "--weights" in p.stderr and str(work / "cache") in p.stderr
    assert not os.listdir(work / "cache")            # nothing partial left behind


def test_a_new_run_starts_a_new_log(work, full_run, tmp_path):
    import shutil
    save = tmp_path / "again"
    shutil.copytree(work / "full", save)
    old = (save / "TSM_log.jsonl").read_text()
    out = train(work, save, "--epoch", 1)
    assert "previous run's log moved" in out.stdout
    assert (save / "TSM_log.jsonl.old").read_text() == old
    steps = [json.loads(line)["step"] for line in (save / "TSM_log.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and json.loads((save / "TSM_log.jsonl").read_text().splitlines()[-1])["epoch"] == 0


def test_resume_auto_continues_the_latest_run_not_an_older_one_in_the_same_folder(work, full_run, tmp_path):
    """An old 2-epoch run leaves TSM_epoch1 in the folder; a new run there writes TSM_epoch0 and is 'killed' before
    its final checkpoint: --resume auto continues the new run's epoch 0, not the old run's further epoch 1."""
    import shutil
    save = tmp_path / "reused"
    shutil.copytree(work / "full", save)
    old_id = json.loads((save / "TSM_epoch1.state.json").read_text())["run_id"]
    train(work, save, "--epoch", 1)
    new_id = json.loads((save / "TSM_epoch0.state.json").read_text())["run_id"]
    assert new_id != old_id and json.loads((save / "TSM_run.json").read_text())["run_id"] == new_id
    for ext in (".pdparams", ".pdopt", ".yaml", ".state.json"):
        os.remove(save / ("TSM_final" + ext))           # as if killed after epoch 0
    out = train(work, save, "--epoch", 2, "--resume", "auto")
    assert "not TSM_epoch1 (an older run ({}); the latest run in this folder is {})".format(old_id, new_id) \
        in out.stdout, out.stdout
    assert "continuing TSM_epoch0" in out.stdout and "Epoch 1 finished" in out.stdout
    assert "Epoch 0 finished" not in out.stdout
    lines = [json.loads(x) for x in (save / "TSM_log.jsonl").read_text().splitlines()]
    assert {x["run_id"] for x in lines} == {new_id} and [x["epoch"] for x in lines if x["type"] == "epoch"] == [0, 1]
    assert json.loads((save / "TSM_epoch1.state.json").read_text())["run_id"] == new_id


def test_a_checkpoint_config_is_complete_and_means_the_same_files_from_any_folder(work, tmp_path):
    """Train in folder a (its config names labels.txt and train.list relative to itself), predict from folder b
    that holds another labels.txt: the checkpoint's own labels are used; NAME.yaml holds every key, paths absolute."""
    import yaml
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "labels.txt").write_text("alpha\nbeta\n")
    (b / "labels.txt").write_text("wrong_x\nwrong_y\n")
    (a / "train.list").write_text("".join("{} {}\n".format(clip(n), y) for n, y in CLIPS * 2))
    (a / "cfg.yaml").write_text(
        "MODEL: {name: TSM, num_classes: 2, seg_num: 4, num_layers: 18, label_list: labels.txt, pretrain: null}\n"
        "TRAIN: {filelist: train.list, short_size: 72, target_size: 64, batch_size: 8, epoch: 1}\n"
        "INFER: {short_size: 72, target_size: 64}\n")
    run_cli("train.py", "--config", "cfg.yaml", "--valid_interval", 0, "--save_dir", "ck", cwd=a)
    saved = yaml.safe_load((a / "ck" / "TSM_final.yaml").read_text())
    assert saved["MODEL"]["label_list"] == str(a / "labels.txt")
    assert saved["TRAIN"]["filelist"] == str(a / "train.list")
    assert saved["TEST"]["num_clips"] == 1 and saved["VALID"]["short_size"] == 256 and saved["TEST"]["capacity"] == 50
    assert saved["INFER"]["target_size"] == 64 and "flip" in saved["TRAIN"] and "epoch" in saved["TRAIN"]
    run_cli("predict.py", "--weights", a / "ck" / "TSM_final.pdparams", "--video_path", clip("arm_wrestling.mp4"),
            "--output", "p.json", "--backend", "dygraph", cwd=b)
    top = json.loads((b / "p.json").read_text())[0]["top_k"]
    assert {t["label"] for t in top} == {"alpha", "beta"}
