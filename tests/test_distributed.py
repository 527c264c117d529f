"""Data parallel through paddle.distributed.launch (2 CPU processes, Gloo), BatchNorm freezing, gradient
accumulation, and the AMP/sync-BN switches on a CPU machine."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest

from conftest import ROOT, clip, rank_pid, run_cli
from paddlevideo import build_model, load_config
from paddlevideo.data.dataset import EpochBatchSampler
from paddlevideo.engine.train import freeze_batchnorm

SMALL = os.path.join(ROOT, "configs", "tsm_small.yaml")
CLIPS = [("arm_wrestling.mp4", 0), ("eivideo_example.mp4", 1), ("mmaction2_test.mp4", 0),
         ("paddlevideo_example.avi", 1)]
# frozen BN and no dropout: a step is a deterministic function of the batch, whichever way it is split
OPTS = ["-o", "MODEL.num_classes=2", "-o", "MODEL.seg_num=4", "-o", "TRAIN.short_size=72",
        "-o", "TRAIN.target_size=64", "-o", "MODEL.freeze_bn=all", "-o", "MODEL.dropout_ratio=0",
        "-o", "TRAIN.num_reader_threads=0", "--valid_interval", 0, "--fix_random_seed", True, "--log_interval", 1]


def write_list(path, n):
    path.write_text("".join("{} {}\n".format(clip(c), y) for c, y in (CLIPS * 8)[:n]))
    return path


def launch(save, lst, *extra, nproc=2, env=None, wait=True, use_run_sh=False):
    args = ["--model_name", "TSM", "--config", SMALL, *OPTS, "-o", "TRAIN.filelist={}".format(lst),
            "--save_dir", save, *extra]
    if use_run_sh:
        cmd = ["bash", os.path.join(ROOT, "run.sh"), "train", "TSM", SMALL, "--nproc", str(nproc)] + [str(a) for a in args[4:]]
    else:
        cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc), "--log_dir",
               str(save) + "_launch", os.path.join(ROOT, "train.py")] + [str(a) for a in args]
    full_env = dict(os.environ, PV_LAUNCH_LOG_DIR=str(save) + "_launch", **(env or {}))
    full_env.setdefault("VIRTUAL_ENV", os.path.dirname(os.path.dirname(sys.executable)))
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    p = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def params(path):
    return {k: v.numpy() for k, v in paddle.load(str(path)).items()}


def assert_close(a, b, atol=1e-5):
    assert a.keys() == b.keys()
    for k in a:
        assert np.isfinite(a[k]).all(), k
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=atol, err_msg=k)


@pytest.mark.parametrize("n,world,batch", [(8, 2, 2), (9, 2, 2), (7, 3, 1), (5, 1, 2)])
def test_sampler_shards_are_disjoint_and_cover_the_list(n, world, batch):
    for pad in (True, False):
        shards = [EpochBatchSampler(n, batch, True, False, seed=3, rank=r, world=world, pad=pad) for r in range(world)]
        for s in shards:
            s.epoch = 1
        got = [[i for b in s for _, i in b] for s in shards]
        flat = [i for g in got for i in g]
        assert sorted(set(flat)) == list(range(n))
        if pad:                         # training: equal shares, the padding repeats the epoch's first items
            assert len({len(g) for g in got}) == 1 and len(flat) == -(-n // world) * world
        else:                           # evaluation: every item exactly once
            assert sorted(flat) == list(range(n))
    one = EpochBatchSampler(n, batch * world, True, False, seed=3)
    one.epoch = 1
    first = sorted(i for _, i in next(iter(one)))
    step = []                           # the ranks' first batches together = the single-process batch
    for r in range(world):
        s = EpochBatchSampler(n, batch, True, False, seed=3, rank=r, world=world)
        s.epoch = 1
        step += [i for _, i in next(iter(s))]
    assert sorted(step) == first
    grouped = EpochBatchSampler(6, 2, False, False, rank=1, world=2, pad=False, group=3)
    assert [i for b in grouped for _, i in b] == [3, 4, 5]          # a video's clips stay together


def test_two_processes_equal_one_process_with_the_double_batch(tmp_path):
    lst = write_list(tmp_path / "four.list", 4)
    valid = ["--valid_interval", 1, "-o", "VALID.filelist={}".format(write_list(tmp_path / "five.list", 5)),
             "-o", "VALID.short_size=72", "-o", "VALID.target_size=64"]      # 5: an uneven split over 2 ranks
    run_cli("train.py", "--model_name", "TSM", "--config", SMALL, *OPTS, "-o", "TRAIN.filelist={}".format(lst),
            "--batch_size", 4, "--epoch", 1, "--save_dir", tmp_path / "one", *valid)
    trace = tmp_path / "trace"
    two = launch(tmp_path / "two", lst, "--batch_size", 2, "--epoch", 1, *valid,
                 env={"PADDLEVIDEO_SAMPLE_TRACE": str(trace)}, use_run_sh=True)
    assert "Pod completed" in two.stdout + two.stderr or "Exit code 0" in two.stdout + two.stderr
    seen = [[json.loads(line) for line in open("{}.rank{}".format(trace, r))] for r in (0, 1)]
    items = [sorted(i for rec in s for i in rec["items"]) for s in seen]
    assert len(items[0]) == len(items[1]) == 2 and not set(items[0]) & set(items[1])
    assert sorted(items[0] + items[1]) == [0, 1, 2, 3]                 # disjoint halves of the list
    assert_close(params(tmp_path / "one" / "TSM_final.pdparams"), params(tmp_path / "two" / "TSM_final.pdparams"))
    # rank 0 alone writes: one log line per interval / epoch, the log states the world size
    log = [json.loads(line) for line in (tmp_path / "two" / "TSM_log.jsonl").read_text().splitlines()]
    assert [r["type"] for r in log] == ["iter", "epoch"] and log[-1]["world_size"] == 2
    # validation gathered over the 2 ranks (3 + 2 videos) equals the one-process validation
    ref = [json.loads(line) for line in (tmp_path / "one" / "TSM_log.jsonl").read_text().splitlines()][-1]
    assert ref["valid_top1"] == log[-1]["valid_top1"] and ref["valid_loss"] == pytest.approx(log[-1]["valid_loss"],
                                                                                              rel=1e-4)
    rank1 = open(os.path.join(str(tmp_path / "two") + "_launch", "workerlog.1")).read()
    assert "[TRAIN] saved" not in rank1 and "global batch 4" in (tmp_path / "two_launch" / "workerlog.0").read_text()
    state = json.loads((tmp_path / "two" / "TSM_final.state.json").read_text())
    assert state["step"] == 1 and state["world_size"] == 2


def test_zero_step_leaves_batchnorm_statistics_alone():
    from paddlevideo.engine.tasks import Classification
    from paddlevideo.engine.train import _Amp, zero_step
    cfg = load_config(SMALL, ["MODEL.num_classes=2", "MODEL.seg_num=2", "TRAIN.target_size=32"])
    model = build_model(cfg)
    model.train()
    bns = [l for l in model.sublayers() if isinstance(l, paddle.nn.layer.norm._BatchNormBase)]
    for layer in bns:
        layer._mean.set_value(paddle.ones_like(layer._mean))
    zero_step(model, model, Classification(), cfg.mode("train"), _Amp(None, False))
    assert all(np.array_equal(layer._mean.numpy(), np.ones(layer._mean.shape, "float32")) for layer in bns)
    assert all(layer.training for layer in bns)                          # back in training mode
    grads = [p.grad for p in model.parameters() if not p.stop_gradient]
    assert all(g is not None and not np.any(g.numpy()) for g in grads)   # joined the exchange with zeros


def test_rank0_downloads_first_the_others_after_a_barrier(monkeypatch):
    from paddlevideo.engine import parallel
    calls = []
    monkeypatch.setattr(parallel, "barrier", lambda world: calls.append("barrier"))
    assert parallel.rank0_first(2, 0, lambda: calls.append("fetch") or "p") == "p"
    assert calls == ["fetch", "barrier"]
    calls.clear()
    parallel.rank0_first(2, 1, lambda: calls.append("fetch"))
    assert calls == ["barrier", "fetch"]


def test_gradient_accumulation_equals_the_larger_batch(tmp_path):
    lst = write_list(tmp_path / "four.list", 4)
    run_cli("train.py", "--model_name", "TSM", "--config", SMALL, *OPTS, "-o", "TRAIN.filelist={}".format(lst),
            "--batch_size", 4, "--epoch", 1, "--save_dir", tmp_path / "big")
    out = run_cli("train.py", "--model_name", "TSM", "--config", SMALL, *OPTS, "-o", "TRAIN.filelist={}".format(lst),
                  "--batch_size", 2, "-o", "TRAIN.accumulate_steps=2", "--epoch", 1, "--save_dir", tmp_path / "acc")
    assert "2 accumulated batches per step" in out.stdout and "global batch 4" in out.stdout
    assert json.loads((tmp_path / "acc" / "TSM_final.state.json").read_text())["step"] == 1
    assert_close(params(tmp_path / "big" / "TSM_final.pdparams"), params(tmp_path / "acc" / "TSM_final.pdparams"))


def test_freeze_bn_keeps_statistics_and_scales():
    for mode, changed_first, changed_rest in (("all", False, False), ("all_but_first", True, False),
                                              ("none", True, True)):
        paddle.seed(0)
        model = build_model(load_config(SMALL, ["MODEL.num_classes=2"]))
        model.train()
        frozen = freeze_batchnorm(model, mode)
        bns = [l for l in model.sublayers() if isinstance(l, paddle.nn.layer.norm._BatchNormBase)]
        assert len(frozen) == {"all": len(bns), "all_but_first": len(bns) - 1, "none": 0}[mode]
        before = [l._mean.numpy().copy() for l in bns]
        x = paddle.to_tensor(np.random.RandomState(0).randn(2, 8, 3, 32, 32).astype("float32") + 1.0)
        model(x).sum().backward()
        after = [l._mean.numpy() for l in bns]
        assert (not np.allclose(before[0], after[0])) == changed_first, mode
        assert any(not np.allclose(b, a) for b, a in zip(before[1:], after[1:])) == changed_rest, mode
        assert (bns[-1].weight.grad is None) == (mode != "none")


def test_amp_and_sync_bn_say_they_need_a_gpu(tmp_path):
    lst = write_list(tmp_path / "four.list", 4)
    for opt, word in (("TRAIN.amp=O1", "TRAIN.amp O1 needs a GPU"), ("MODEL.sync_bn=true", "MODEL.sync_bn")):
        p = run_cli("train.py", "--config", SMALL, *OPTS, "-o", "TRAIN.filelist={}".format(lst), "-o", opt,
                    "--save_dir", tmp_path / "x", check=False)
        assert p.returncode == 2 and word in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_killed_rank_stops_the_job_and_resume_auto_finishes(tmp_path):
    lst = write_list(tmp_path / "sixteen.list", 16)
    save = tmp_path / "ck"
    args = ("--batch_size", 2, "--epoch", 3, "-o", "MODEL.freeze_bn=none")
    p = launch(save, lst, *args, wait=False, use_run_sh=True)
    deadline = time.time() + 300
    while not (save / "TSM_epoch0.state.json").exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
    assert (save / "TSM_epoch0.state.json").exists(), p.communicate()[0][-3000:]
    log0 = tmp_path / "ck_launch" / "workerlog.0"
    while "[TRAIN] Epoch 1, iter" not in (log0.read_text(errors="replace") if log0.exists() else "") \
            and time.time() < deadline and p.poll() is None:               # killed inside epoch 1, by its log line
        time.sleep(0.1)
    victim = rank_pid(str(save) + "_launch", 1)
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    t0 = time.time()
    try:
        out, _ = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    stopped_in = time.time() - t0
    assert p.returncode != 0 and stopped_in < 60, (p.returncode, stopped_in)
    assert "error: rank 1 died first" in out, out[-3000:]             # run.sh names the dead rank
    assert not (save / "TSM_final.state.json").exists()
    done = launch(save, lst, *args, "--resume", "auto")
    log0 = (tmp_path / "ck_launch" / "workerlog.0").read_text()
    assert "resumed" in log0 and (save / "TSM_final.state.json").exists()
    state = json.loads((save / "TSM_final.state.json").read_text())
    assert state["epoch"] == 2 and state["step"] == 3 * 4                  # 16 videos / (2 ranks x 2) per epoch
    epochs = [json.loads(line)["epoch"] for line in (save / "TSM_log.jsonl").read_text().splitlines()
              if '"epoch"' in line and '"type": "epoch"' in line]
    assert epochs[-1] == 2 and done.returncode == 0


def test_a_rank_that_never_arrives_is_named_instead_of_waited_for(tmp_path):
    script = tmp_path / "stall.py"
    script.write_text("import sys, time\nsys.path.insert(0, {!r})\n".format(ROOT) +
                      "from paddlevideo.engine import parallel\nfrom paddlevideo.errors import run_cli\n"
                      "def main(argv):\n"
                      "    world, rank = parallel.init()\n"
                      "    parallel.barrier(world, 'end of epoch 0')\n"
                      "    if rank == 1:\n"
                      "        time.sleep(120)                     # stuck between collectives\n"
                      "    parallel.gather(rank, world)\n"
                      "run_cli(main)\n")
    env = dict(os.environ, PADDLEVIDEO_COLLECTIVE_TIMEOUT="3")
    t0 = time.time()
    p = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
                        str(tmp_path / "log"), str(script)], cwd=str(tmp_path), env=env, capture_output=True,
                       text=True, timeout=150)
    log0 = (tmp_path / "log" / "workerlog.0").read_text(errors="replace")
    assert p.returncode != 0 and time.time() - t0 < 100
    assert "error: rank 0: rank(s) 1 did not reach the gathering of results within 3 s" in log0, log0[-2000:]


def test_failure_diagnosis_reads_only_the_launchers_worker_logs(tmp_path):
    """Other files in the log folder (a backup, notes, the exit status) are not worker logs."""
    from paddlevideo.engine.parallel import diagnose
    (tmp_path / "workerlog.0").write_text("epoch 0\nTraceback (most recent call last):\n  ValueError: x\n")
    (tmp_path / "workerlog.1").write_text("epoch 0\nError Message Summary: lost\n")
    for other in ("workerlog.0.bak", "workerlog.old", "notes.txt", "exit_status"):
        (tmp_path / other).write_text("anything\n")
    line = diagnose(str(tmp_path), "predict")
    assert line.startswith("rank 0 failed with an error") and "--resume" in line
