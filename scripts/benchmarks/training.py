"""``training``: seconds per training step of the demo TSM and TSM-R50 in four set-ups."""
import json
import os
import re
import subprocess
import sys
import time

from .common import BACKENDS, ROOT, real_clips_list, run_child  # noqa: F401


# training models: (config, overrides, batch per process)
TRAIN_MODELS = {
    "tsm_demo_small": ("configs/demo.yaml", [], 16),
    "tsm_r50_8x224": ("configs/tsm.yaml", ["TRAIN.target_size=224", "MODEL.pretrain=null"], 2),
}
TRAIN_VARIANTS = ("1proc-2threads", "1proc-1thread", "2proc-1thread", "bf16-autocast")

TRAIN_VARIANTS = ("1proc-2threads", "1proc-1thread", "2proc-1thread", "bf16-autocast")


def child_train(name, variant, steps):
    """Runs in a subprocess (or in each rank of a launch): time training steps on random clips."""
    import contextlib
    import numpy as np
    from paddlevideo.cli import configure_process  # noqa: E402
    configure_process()   # threads before paddle is imported
    import paddle
    import paddle.nn.functional as F
    from paddlevideo import build_model, load_config
    from paddlevideo.runtime import parallel
    from paddlevideo.runtime.backends import input_shape
    config, over, batch = TRAIN_MODELS[name]
    world, rank = parallel.init()
    cfg = load_config(os.path.join(ROOT, config), over)
    m = cfg.mode("train")
    paddle.seed(0)
    model = parallel.wrap(build_model(cfg), world)
    opt = paddle.optimizer.Momentum(0.001, 0.9, parameters=model.parameters())
    rs = np.random.RandomState(rank)
    x = paddle.to_tensor(rs.rand(*([batch] + input_shape(m))).astype("float32"))
    y = paddle.to_tensor(rs.randint(0, m.num_classes, batch).astype("int64"))
    def cast():
        return (paddle.amp.auto_cast(dtype="bfloat16", level="O1") if variant == "bf16-autocast"
                else contextlib.nullcontext())
    times = []
    for _ in range(steps + 1):
        t = time.time()
        with cast():
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.clear_grad()
        times.append(time.time() - t)
    sec = float(np.median(times[1:]))
    return {"seconds_per_step": round(sec, 3), "clips_per_s": round(batch * world / sec, 2),
            "batch_per_process": batch, "processes": world, "loss_finite": bool(np.isfinite(float(loss)))}


def run_train(name, variant, steps):
    """One training measurement in fresh process(es) with the variant's threads."""
    env = dict(os.environ)
    env.pop("PADDLEVIDEO_THREADS", None)
    args = [os.path.join(ROOT, "scripts", "benchmark.py"), "--child", "train", name, variant, str(steps)]
    if variant == "2proc-1thread":
        env["PADDLEVIDEO_THREADS"] = "1"
        import tempfile
        cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
               "--log_dir", tempfile.mkdtemp()] + args
    else:
        env["OMP_NUM_THREADS"] = "1" if variant == "1proc-1thread" else str(os.cpu_count() or 1)
        cmd = [sys.executable] + args
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    m = re.search(r"RESULT (\{.*\})", p.stdout)
    if p.returncode != 0 or not m:
        return {"error": (p.stderr.strip().splitlines() or p.stdout.strip().splitlines() or ["failed"])[-1]}
    return json.loads(m.group(1))


def _train_child(name, variant, steps):
    res = child_train(name, variant, int(steps))
    return res if int(os.environ.get("PADDLE_TRAINER_ID", "0")) == 0 else None   # rank 0 of a launch reports


CHILDREN = {"train": _train_child}


def run(a, results):
    """``training.<model>.<variant>``: seconds per step and clips/s (1 or 2 processes, threads, bf16)."""
    for name in TRAIN_MODELS:
        if a.quick and name != "tsm_demo_small":
            continue
        for variant in TRAIN_VARIANTS:
            r = run_train(name, variant, a.train_steps)
            results.setdefault("training", {}).setdefault(name, {})[variant] = r
            print("training {:<16} {:<15} {}".format(name, variant, r), flush=True)
