"""Speed and memory of the toolkit on this machine; JSON out, a table printed.

Every measurement runs in its own subprocess so that its peak RSS is its own.  Measured:

* model-only seconds per clip (batch 1, median of ``--repeat`` runs after a warm-up) and GFLOP/s
  for a plain ResNet-50 over 8 images (TSN-R50), TSM-R50 8x224, StNet-R50 25x5x256 and SlowFast-R50
  4x16 on one 32x224^2 view, I3D RGB on a 64x224^2 clip, per backend
  (``dygraph``, ``paddle-inference`` = exported model + oneDNN, ``onnxruntime`` = paddle2onnx);
* end-to-end ``predict.py`` on a real clip (wall time, and the time after start-up);
* reader throughput (clips/s, TSM 8x224 train transforms) with 0, 1 and 2 loader workers;
* ``online``: streaming TSM-R50 and TSM-MobileNetV2 at 224² per backend: seconds per streaming step and per
  8-frame clip of the same model and backend (JSON ``online.<tsm_r50_224|tsm_mobilenetv2_224>.<backend>`` with
  ``seconds_per_step``, ``seconds_per_clip``; MobileNetV2 also ``step_over_r50_clip``), and on ONNX Runtime the
  steps/s end to end from a real file (decoding included);
* ``ava``: the AVA detector (configs/slowfast_ava.yaml, SlowFast-R50 8x8 + RoI head) on one keyframe clip
  32 x 256x341 with 8 boxes, seconds per keyframe per backend, and the trunk alone (trunk + temporal
  mean) on the same backend: JSON ``ava.<backend>`` with ``seconds_per_keyframe``, ``backbone_seconds``,
  ``head_over_backbone`` (the RoI head's share, target <= 0.15);
* training: seconds per step and clips/s (random clips, Momentum, median after a warm-up) of the demo's
  small TSM (batch 16 × 8 × 32²) and TSM-R50 (batch 2 × 8 × 224²) as ``training.<model>.<variant>``:
  ``1proc-2threads`` (the default set-up), ``1proc-1thread``, ``2proc-1thread`` (two data-parallel
  processes through paddle.distributed.launch, Gloo; each its own batch, so clips/s is the comparable
  number) and ``bf16-autocast`` (1 process, 2 threads, ``paddle.amp.auto_cast(dtype="bfloat16")``);
* ``ava_eval``: scripts/ava_eval.py's scorer on a synthetic result file of 5 M rows (240 per keyframe, as a
  detector writes one row per box per class; ``--quick``: 200 k) with the official capacity 50 and without a
  cap: JSON ``ava_eval.<capacity_50|no_cap>`` with ``rows``, ``keyframes``, ``seconds``, ``peak_rss_mb`` — with the
  cap the memory is bounded by 50 × keyframes, not by the rows.

Every temporary file (exports, ONNX and int8 models, weights, lists) goes under one folder that is removed at the
end, on errors and on Ctrl-C too.

    python scripts/benchmark.py --out output/benchmark.json [--quick] [--sections models,reader,predict,training]
"""
import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# name: (config, overrides, GMAC per clip).  ResNet-50 is 4.11 GMAC per 224^2 image (x8); TSM adds
# only data movement; StNet-R50 at 25 x 256^2 super-images of 5 frames: 25 x (5.36 trunk + 0.62
# extra conv1 channels) + 2 x 20.1 temporal conv3d = 189 GMAC.  FLOPs = 2 x MAC.
MODELS = {
    "resnet50_8x224": ("configs/tsn.yaml", ["MODEL.name=TSN", "INFER.seg_num=8", "INFER.target_size=224"], 32.9),
    "tsm_r50_8x224": ("configs/tsm.yaml", ["INFER.target_size=224"], 32.9),
    "stnet_r50_25x5x256": ("configs/stnet.yaml", [], 189.0),
    # SlowFast-R50 4x16, one 32-frame 224^2 view: 36.1 GMAC (the SlowFast paper's count)
    "slowfast_r50_4x16_32x224": ("configs/slowfast.yaml", ["INFER.target_size=224"], 36.1),
    # I3D RGB on a 64-frame 224^2 clip: 108 GMAC (the count SlowFast's paper lists for it)
    "i3d_rgb_64x224": ("configs/i3d_rgb.yaml", [], 108.0),
}


BACKENDS = ("dygraph", "paddle-inference", "onnxruntime", "onnxruntime-int8", "paddle-inference-bf16")


def real_clips_list():
    """A list file of the real test clips (int8 calibration and the agreement check of random-weight models)."""
    import tempfile
    d = os.path.join(ROOT, "tests", "data")
    path = os.path.join(tempfile.mkdtemp(), "clips.list")
    with open(path, "w") as f:
        f.write("".join("{} 0\n".format(os.path.join(d, n)) for n in sorted(os.listdir(d)) if n.endswith((".mp4", ".avi"))))
    return path


def child_model(name, backend, repeat, threads):
    """Runs in a subprocess: time one model on one backend; a lower precision also reports its top-1
    agreement with fp32 and max |delta prob| on the real test clips."""
    import numpy as np
    import paddlevideo  # noqa: F401
    from paddlevideo import build_model, load_config
    from paddlevideo.data import VideoDataset, parse_list
    from paddlevideo.engine.backends import (SHIFT_IMPL, InferenceRunner, OnnxRunner, dygraph_runner, export_model,
                                             input_shape, int8_model, to_onnx)
    from paddlevideo.engine.common import softmax
    config, over, gmac = MODELS[name]
    clips = real_clips_list()
    cfg = load_config(os.path.join(ROOT, config), over + ["INFER.calibration={}".format(clips),
                                                          "INFER.calibration_size=8"])
    m = cfg.mode("infer")
    shape = input_shape(m)
    model = build_model(cfg)
    model.eval()
    x = np.random.rand(*([1] + shape)).astype("float32")
    flops = 2 * gmac * 1e9
    t0 = time.time()
    reference = None
    if backend == "dygraph":
        run = dygraph_runner(model)
    else:
        import tempfile
        base = backend.replace("-int8", "").replace("-bf16", "")
        prefix = export_model(model, os.path.join(tempfile.mkdtemp(), "m"), shape, SHIFT_IMPL[base])
        if base == "onnxruntime":
            fp32 = to_onnx(prefix)
            run = OnnxRunner(int8_model(fp32, m) if backend.endswith("-int8") else fp32, threads)
            reference = OnnxRunner(fp32, threads) if backend.endswith("-int8") else None
        else:
            run = InferenceRunner(prefix, threads, bf16=backend.endswith("-bf16"))
            reference = InferenceRunner(prefix, threads) if backend.endswith("-bf16") else None
    setup = time.time() - t0
    extra = {}
    if reference is not None:
        items = parse_list(clips, m.num_classes, m.format)
        ds = VideoDataset(items, m)
        agree, diff = [], 0.0
        for i in range(len(items)):
            clip = ds.load(i)[0][None]
            p, q = softmax(run(clip)), softmax(reference(clip))
            agree.append(int(p.argmax() == q.argmax()))
            diff = max(diff, float(np.abs(p - q).max()))
        extra = {"top1_agreement": round(float(np.mean(agree)), 4), "max_abs_prob_diff": round(diff, 5),
                 "agreement_clips": len(items)}
    run(x)
    times = []
    for _ in range(repeat):
        t = time.time()
        run(x)
        times.append(time.time() - t)
    sec = float(np.median(times))
    return dict({"seconds_per_clip": round(sec, 4), "setup_seconds": round(setup, 2),
                 "gflops_per_clip": round(flops / 1e9, 1) if flops else None,
                 "gflop_per_s": round(flops / 1e9 / sec, 1) if flops else None, "shape": shape}, **extra)


def child_ava(backend, repeat, threads):
    """Runs in a subprocess: the AVA detector vs its trunk on one backend (random weights)."""
    import tempfile
    import numpy as np
    import paddle
    import paddlevideo  # noqa: F401
    from paddlevideo import build_model, load_config
    from paddlevideo.engine.backends import InferenceRunner, OnnxRunner, dygraph_runner, export_model, to_onnx
    from paddlevideo.engine.tasks import task_for
    cfg = load_config(os.path.join(ROOT, "configs", "slowfast_ava.yaml"))
    m = cfg.mode("infer")
    model = build_model(cfg)
    model.eval()

    class Trunk(paddle.nn.Layer):
        """The detector up to the RoI head's input: ``[N, 2304, H/16, W/16]``."""

        def __init__(self, det):
            super().__init__()
            self.det = det

        def forward(self, x):
            slow, fast = self.det.pathways(x)
            return paddle.concat([slow.mean(axis=2), fast.mean(axis=2)], axis=1)

    rs = np.random.RandomState(0)
    x = rs.rand(1, m.seg_num, 3, 256, 341).astype("float32")
    xy = rs.uniform(0, 120, (8, 2))
    boxes = np.concatenate([xy, xy + rs.uniform(40, 130, (8, 2))], axis=1).astype("float32")
    inputs = {"full": (x, boxes, np.array([8], np.int32)), "trunk": (x,)}
    specs = {"full": task_for(cfg).input_specs(m), "trunk": task_for(cfg).input_specs(m)[:1]}
    out = {}
    for part, net in (("full", model), ("trunk", Trunk(model))):
        if backend == "dygraph":
            run = dygraph_runner(net)
        else:
            prefix = export_model(net, os.path.join(tempfile.mkdtemp(), "m"), specs[part])
            run = OnnxRunner(to_onnx(prefix, 16), threads) if backend == "onnxruntime" else InferenceRunner(prefix, threads)
        run(*inputs[part])
        times = []
        for _ in range(repeat):
            t = time.time()
            run(*inputs[part])
            times.append(time.time() - t)
        out[part] = float(np.median(times))
    return {"seconds_per_keyframe": round(out["full"], 4), "backbone_seconds": round(out["trunk"], 4),
            "head_over_backbone": round(out["full"] / out["trunk"] - 1.0, 4), "boxes": 8,
            "shape": [1, m.seg_num, 3, 256, 341]}


ONLINE_MODELS = {"tsm_r50_224": ("configs/tsm.yaml", ["MODEL.shift_mode=online", "INFER.target_size=224"]),
                 "tsm_mobilenetv2_224": ("configs/pptsm_mv2_online.yaml", [])}


def child_online(name, backend, repeat, threads):
    """Runs in a subprocess: a streaming step vs the 8-frame clip of the same online model on one backend (random
    weights); for ONNX Runtime also end to end from a real file (decoding in the reader thread included)."""
    import tempfile
    import numpy as np
    import paddle
    import paddlevideo  # noqa: F401
    from paddlevideo import build_model, load_config
    from paddlevideo.engine.backends import (SHIFT_IMPL, InferenceRunner, OnnxRunner, dygraph_runner, export_model,
                                             to_onnx)
    from paddlevideo.engine.online import OnlineRecognizer
    from paddlevideo.engine.stream import FrameReader
    config, over = ONLINE_MODELS[name]
    cfg = load_config(os.path.join(ROOT, config), over + ["MODEL.weights=null", "MODEL.label_list=null"])
    d = tempfile.mkdtemp()
    w = os.path.join(d, "w.pdparams")
    model = build_model(cfg)
    model.eval()
    paddle.save(model.state_dict(), w)

    def median(fn):
        fn()
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return float(np.median(times))
    rec = OnlineRecognizer(cfg, w, backend, threads, d)
    frame = (np.random.RandomState(0).rand(224, 224, 3) * 255).astype("uint8")
    x1 = rec.transform(frame)
    step = median(lambda: rec._run(x1, *rec.caches))
    clip = np.random.RandomState(1).rand(1, 8, 3, 224, 224).astype("float32")
    if backend == "dygraph":
        run = dygraph_runner(model)
    else:
        prefix = export_model(model, os.path.join(d, "clip"), [8, 3, 224, 224], SHIFT_IMPL[backend])
        run = OnnxRunner(to_onnx(prefix), threads) if backend == "onnxruntime" else InferenceRunner(prefix, threads)
    out = {"seconds_per_step": round(step, 5), "seconds_per_clip": round(median(lambda: run(clip)), 5)}
    out["step_over_clip"] = round(out["seconds_per_step"] / out["seconds_per_clip"], 4)
    if backend == "onnxruntime":
        reader = FrameReader(os.path.join(ROOT, "tests", "data", "arm_wrestling.mp4"))
        reader.start()
        n, t0 = 0, time.perf_counter()
        while True:
            item = reader.get()
            if item is None:
                break
            rec.step(item[2])
            n += 1
        out["end_to_end_steps_per_s"] = round(n / (time.perf_counter() - t0), 1)
        out["end_to_end_frames"] = n
    return out


# training models: (config, overrides, batch per process)
TRAIN_MODELS = {
    "tsm_demo_small": ("configs/demo.yaml", [], 16),
    "tsm_r50_8x224": ("configs/tsm.yaml", ["TRAIN.target_size=224", "MODEL.pretrain=null"], 2),
}
TRAIN_VARIANTS = ("1proc-2threads", "1proc-1thread", "2proc-1thread", "bf16-autocast")


def child_train(name, variant, steps):
    """Runs in a subprocess (or in each rank of a launch): time training steps on random clips."""
    import contextlib
    import numpy as np
    import paddlevideo  # noqa: F401
    import paddle
    import paddle.nn.functional as F
    from paddlevideo import build_model, load_config
    from paddlevideo.engine import parallel
    from paddlevideo.engine.backends import input_shape
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
    args = [os.path.abspath(__file__), "--child", "train", name, variant, str(steps)]
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


def child_reader(workers, n_batches):
    import paddlevideo  # noqa: F401
    from paddlevideo import load_config
    from paddlevideo.data import VideoDataset, build_loader
    cfg = load_config(os.path.join(ROOT, "configs", "tsm.yaml"), ["TRAIN.num_reader_threads={}".format(workers)])
    m = cfg.mode("train")
    clips = [os.path.join(ROOT, "tests", "data", f) for f in sorted(os.listdir(os.path.join(ROOT, "tests", "data")))
             if f.endswith((".mp4", ".avi"))]
    items = [(c, 0) for c in clips] * 8
    loader = build_loader(VideoDataset(items, m), 2, shuffle=True, num_workers=workers)
    t0 = time.time()
    n = 0
    for k, batch in enumerate(loader):
        n += batch[1].shape[0]
        if k + 1 >= n_batches:
            break
    dt = time.time() - t0
    return {"clips_per_s": round(n / dt, 2), "clips": n}


def child_pipeline(backend, n_items, threads, repeat=3):
    """``reader.<backend>``: predict's path (:func:`paddlevideo.engine.records.run_shard`: DataLoader workers ->
    per-video runner) for TSM-R50 8x224 on the real clips, ``n_items`` list lines.  Reader only (the same loader,
    no model), model only (the runner on already decoded clips) and end to end, each in clips/s: the median of
    ``repeat`` interleaved rounds."""
    import tempfile
    import numpy as np
    import paddle
    import paddlevideo  # noqa: F401
    from paddlevideo import build_model, load_config
    from paddlevideo.data import parse_list
    from paddlevideo.engine.backends import make_runner
    from paddlevideo.engine.evaluate import video_records
    from paddlevideo.engine import records
    from paddlevideo.engine.records import run_shard, shard_loader
    clips = real_clips_list()
    precision = "int8" if backend.endswith("-int8") else "fp32"
    cfg = load_config(os.path.join(ROOT, "configs", "tsm.yaml"), [
        "INFER.target_size=224", "INFER.precision=" + precision, "INFER.calibration=" + clips,
        "INFER.calibration_size=8"])
    m = cfg.mode("infer")
    d = tempfile.mkdtemp()
    w = os.path.join(d, "tsm.pdparams")
    paddle.seed(0)
    paddle.save(build_model(cfg).state_dict(), w)
    runner, used = make_runner(cfg, "infer", w, "onnxruntime", threads, d, spin=False)   # as eval/predict run it
    items = (parse_list(clips, m.num_classes, m.format, need_label=False) * n_items)[:n_items]
    decoded = []

    cpu = {"reader": [], "model": []}        # CPU seconds per clip (all threads; loader workers once reaped)

    def cpu_now():
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def reader():
        t0, c0 = time.time(), cpu_now()
        loader = shard_loader(items, m)
        for batch in loader:
            if len(decoded) < 4:
                decoded.append(batch[0].numpy())
        del loader
        import gc
        gc.collect()                         # the workers exit and are reaped: their CPU time is counted
        time.sleep(0.5)
        dt = time.time() - t0
        cpu["reader"].append((cpu_now() - c0) / len(items))
        return len(items) / dt

    def model():
        t0, c0 = time.time(), cpu_now()
        for k in range(len(items)):
            runner(decoded[k % len(decoded)])
        cpu["model"].append((cpu_now() - c0) / len(items))
        return len(items) / (time.time() - t0)

    def end_to_end(run=runner):
        t0 = time.time()
        n = sum(1 for _ in run_shard(items, list(range(len(items))), m, run, None,
                                     lambda v, sub, pos: video_records(v, sub, pos, labelled=False), "bench"))
        return n / (time.time() - t0)

    def end_to_end_plain():                  # the earlier set-up: workers at normal priority, spinning threads
        nice, records.READER_NICE = records.READER_NICE, 0
        try:
            return end_to_end(spinning)
        finally:
            records.READER_NICE = nice
    spinning = make_runner(cfg, "infer", w, "onnxruntime", threads, d)[0]
    rates = {"reader": [], "model": [], "e2e": [], "plain": []}
    for _ in range(repeat):                  # interleaved, so that a slow spell of the VM hits all three
        rates["reader"].append(reader())
        if len(rates["reader"]) == 1:
            runner(decoded[0])               # warm-up
        rates["model"].append(model())
        rates["e2e"].append(end_to_end())
        rates["plain"].append(end_to_end_plain())
    reader, model, e2e, plain = (float(np.median(rates[k])) for k in ("reader", "model", "e2e", "plain"))
    # the cores do both jobs: end to end cannot beat cores / (reader + model CPU seconds per clip), nor the model
    cpu_r, cpu_m = float(np.median(cpu["reader"])), float(np.median(cpu["model"]))
    bound = min(model, (os.cpu_count() or 1) / (cpu_r + cpu_m))
    return {"backend": used, "clips": len(items), "repeats": repeat,
            "loader_workers": min(m.num_reader_threads, os.cpu_count() or 1),
            "reader_clips_per_s": round(reader, 2), "model_clips_per_s": round(model, 2),
            "end_to_end_clips_per_s": round(e2e, 2), "end_to_end_over_slower": round(e2e / min(reader, model), 3),
            "plain_end_to_end_clips_per_s": round(plain, 2),
            "plain_end_to_end_over_slower": round(plain / min(reader, model), 3),
            "reader_cpu_s_per_clip": round(cpu_r, 4), "model_cpu_s_per_clip": round(cpu_m, 4),
            "bound_clips_per_s": round(bound, 2), "bound_over_slower": round(bound / min(reader, model), 3)}


def memory_runs(sizes=(200, 5000)):
    """``memory``: peak RSS of ``predict.py --output`` and ``eval.py`` (the small test TSM, ONNX Runtime) over lists
    of ``sizes`` lines of short clips (12 clips of 16 frames at 64x64 written here, repeated): outputs stream to
    disk, so the peak must not grow with the list (target: within 50 MB from 200 to 5,000 lines)."""
    import tempfile
    import numpy as np
    d = tempfile.mkdtemp(prefix="pv_memory_")
    code = ("import sys, os, numpy as np, cv2\n"
            "d = sys.argv[1]\n"
            "for k in range(12):\n"
            "    w = cv2.VideoWriter(os.path.join(d, 'c%02d.avi' % k), cv2.VideoWriter_fourcc(*'MJPG'), 25, (64, 64))\n"
            "    for t in range(16):\n"
            "        w.write(np.full((64, 64, 3), (k * 20 + t * 3) % 256, np.uint8))\n"
            "    w.release()\n"
            "import paddlevideo, paddle\n"
            "from paddlevideo import build_model, load_config\n"
            "paddle.seed(0)\n"
            "paddle.save(build_model(load_config(sys.argv[2], ['MODEL.num_classes=3', 'MODEL.seg_num=4'])).state_dict(),"
            " os.path.join(d, 'w.pdparams'))\n")
    small = os.path.join(ROOT, "configs", "tsm_small.yaml")
    subprocess.run([sys.executable, "-c", code, d, small], check=True, cwd=ROOT, capture_output=True)
    opts = ["--config", small, "-o", "MODEL.num_classes=3", "-o", "MODEL.seg_num=4", "--weights",
            os.path.join(d, "w.pdparams"), "--cache_dir", os.path.join(d, "cache")]
    for s_ in ("TEST", "INFER"):
        opts += ["-o", s_ + ".short_size=64", "-o", s_ + ".target_size=64", "-o", s_ + ".batch_size=8"]
    out = {}
    for n in (10,) + tuple(sizes):                       # 10: exports the model into the cache first
        lst = os.path.join(d, "list{}.txt".format(n))
        with open(lst, "w") as f:
            f.write("".join("{} {}\n".format(os.path.join(d, "c%02d.avi" % (i % 12)), i % 3) for i in range(n)))
        for script, extra in (("predict.py", ["--output", os.path.join(d, "p{}.json".format(n))]),
                              ("eval.py", ["--save_dir", os.path.join(d, "e{}".format(n))])):
            wrap = ("import resource, subprocess, sys, time\n"
                    "t = time.time()\n"
                    "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
                    "print('RESULT', p.returncode, round(time.time() - t, 1),"
                    " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
                    "sys.stderr.write(p.stderr[-2000:])\n")
            p = subprocess.run([sys.executable, "-c", wrap, sys.executable, os.path.join(ROOT, script), *opts,
                                "--filelist", lst, *extra], capture_output=True, text=True, cwd=ROOT)
            fields = p.stdout.split()
            if n == 10:
                continue
            if not fields or fields[0] != "RESULT" or fields[1] != "0":
                out.setdefault(script, {})[str(n)] = {"error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
                continue
            out.setdefault(script, {})[str(n)] = {"peak_rss_mb": round(float(fields[3]), 1),
                                                  "seconds": float(fields[2])}
    for script, per in out.items():
        a, b = per.get(str(sizes[0]), {}), per.get(str(sizes[-1]), {})
        if "peak_rss_mb" in a and "peak_rss_mb" in b:
            per["growth_mb"] = round(b["peak_rss_mb"] - a["peak_rss_mb"], 1)
    return out


AVA_ROWS_PER_KEY = 240        # 4 persons x 60 classes: one row per box per class


def write_ava_eval_files(d, rows):
    """A synthetic GT CSV (4 persons per keyframe, 1-2 actions each), its label map (the shipped 60 classes) and a
    result CSV of ``rows`` rows (every person x every class, random scores), written streaming; returns paths."""
    import random
    rng = random.Random(0)
    sys.path.insert(0, ROOT)
    from paddlevideo.data.ava import read_label_map
    label_map = os.path.join(ROOT, "data", "dataset", "ava_action_list_v2.1.pbtxt")
    ids = sorted(read_label_map(label_map)[0])
    keys = rows // AVA_ROWS_PER_KEY
    gt, det = os.path.join(d, "gt.csv"), os.path.join(d, "det.csv")
    with open(gt, "w") as g, open(det, "w") as f:
        for k in range(keys):
            video, ts = "v{:03d}".format(k // 900), 902 + k % 900
            for p in range(4):
                x = 0.05 + 0.22 * p
                box = "{:.3f},{:.3f},{:.3f},{:.3f}".format(x, 0.1, x + 0.2, 0.9)
                for a in rng.sample(ids, rng.randint(1, 2)):
                    g.write("{},{},{},{},{}\n".format(video, ts, box, a, p))
                f.write("".join("{},{},{},{},{:.4f}\n".format(video, ts, box, a, rng.random()) for a in ids))
    return gt, det, label_map, keys * AVA_ROWS_PER_KEY


def child_ava_eval(gt, det, label_map, capacity):
    from paddlevideo.engine.ava_eval import evaluate_files
    t0 = time.time()
    res = evaluate_files(gt, det, label_map, capacity=int(capacity))
    return {"seconds": round(time.time() - t0, 2), "mAP": round(res["mAP"], 4), "keyframes": res["num_gt_keyframes"]}


def run_child(args):
    """Run this script as a child measurement; return its JSON result plus peak RSS."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child"] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    m = re.search(r"^RESULT (.*)$", p.stdout, re.M)
    if p.returncode != 0 or not m:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(m.group(1))


def predict_e2e(threads):
    """predict.py on a real clip with the TSM-R50 config (random weights): wall time and the
    model part from its log."""
    import tempfile
    import paddlevideo  # noqa: F401
    import paddle
    from paddlevideo import build_model, load_config
    d = tempfile.mkdtemp()
    w = os.path.join(d, "tsm.pdparams")
    paddle.save(build_model(load_config(os.path.join(ROOT, "configs", "tsm.yaml"))).state_dict(), w)
    out = {}
    for label in ("first run (exports, cold cache)", "second run (cached export)"):
        t0 = time.time()
        p = subprocess.run([sys.executable, os.path.join(ROOT, "predict.py"), "--weights", w, "--cache_dir", d,
                            "--video_path", os.path.join(ROOT, "tests", "data", "arm_wrestling.mp4"),
                            "--cpu_threads", str(threads), "-o", "INFER.target_size=224"],
                           capture_output=True, text=True, cwd=ROOT)
        out[label] = {"seconds": round(time.time() - t0, 2), "ok": p.returncode == 0}
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "output", "benchmark.json"))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--quick", action="store_true", help="skip StNet dygraph and the reader with 2 workers")
    p.add_argument("--only", default=None, help="comma-separated model names (default all: {})".format(", ".join(MODELS)))
    p.add_argument("--backends", default=",".join(BACKENDS),
                   help="comma-separated, from: {} (-int8/-bf16: lower precision)".format(", ".join(BACKENDS)))
    p.add_argument("--sections", default="models,reader,predict,training,precision",
                   help="what to measure: models, reader, predict, training, precision (the int8/bf16 accuracy "
                        "check of scripts/quantize_check.py with the demo's TSM), ava (the detector), online (streaming "
                        "TSM), memory (peak RSS of predict/eval over 200 and 5,000 list lines), ava_eval (the AVA "
                        "scorer's time and memory on a 5 M-row result file); comma-separated")
    p.add_argument("--train_steps", type=int, default=3, help="timed training steps per variant (after one warm-up)")
    p.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child is not None:
        kind = a.child[0]
        if kind == "train":
            res = child_train(a.child[1], a.child[2], int(a.child[3]))
            if int(os.environ.get("PADDLE_TRAINER_ID", "0")) != 0:
                return 0
        elif kind == "model":
            res = child_model(a.child[1], a.child[2], int(a.child[3]), int(a.child[4]))
        elif kind == "online":
            res = child_online(a.child[1], a.child[2], int(a.child[3]), int(a.child[4]))
        elif kind == "pipeline":
            res = child_pipeline(a.child[1], int(a.child[2]), int(a.child[3]), int(a.child[4]))
        elif kind == "ava":
            res = child_ava(a.child[1], int(a.child[2]), int(a.child[3]))
        elif kind == "ava_eval":
            res = child_ava_eval(*a.child[1:5])
        else:
            res = child_reader(int(a.child[1]), int(a.child[2]))
        res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        res["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
        print("RESULT " + json.dumps(res))
        return 0

    import shutil
    import signal
    import tempfile
    scratch = tempfile.mkdtemp(prefix="pv_bench_")      # every temporary file of this run and its children
    os.environ["TMPDIR"] = tempfile.tempdir = scratch
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # a kill runs the clean-up below too
    try:
        return measure(a, p)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def measure(a, p):
    """The measurements of ``a.sections``; writes ``a.out`` and prints the tables."""
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "python": platform.python_version(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
               "models": {}, "reader": {}, "training": {}, "ava": {}, "online": {}}
    try:  # not `import paddle` here: it would pin OMP_NUM_THREADS=1 for every child process
        from importlib.metadata import version
        results["machine"]["paddle"] = version("paddlepaddle")
    except Exception:
        pass
    sections = a.sections.split(",")
    names = a.only.split(",") if a.only else list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        p.error("unknown model(s) {}; choose from {}".format(", ".join(unknown), ", ".join(MODELS)))
    for name in (names if "models" in sections else []):
        for backend in a.backends.split(","):
            if a.quick and name.startswith(("stnet", "slowfast", "i3d")) and backend == "dygraph":
                continue
            r = run_child(["model", name, backend, a.repeat, a.threads])
            results["models"].setdefault(name, {})[backend] = r
            print("{:<42} {}".format(name + " / " + backend, r), flush=True)
    for backend in ("onnxruntime", "onnxruntime-int8") if "reader" in sections else ():
        r = run_child(["pipeline", backend, 20 if a.quick else 40, a.threads, a.repeat])
        results["reader"][backend] = r
        print("reader / model / end to end, {}: {}".format(backend, r), flush=True)
    for workers in ((0, 1) if a.quick else (0, 1, 2)) if "reader" in sections else ():
        r = run_child(["reader", workers, 10])
        results["reader"].setdefault("train_transforms", {})["{} workers".format(workers)] = r
        print("reader (training transforms) {} workers: {}".format(workers, r), flush=True)
    for name in (ONLINE_MODELS if "online" in sections else ()):
        for backend in ("onnxruntime", "paddle-inference", "dygraph"):
            r = run_child(["online", name, backend, max(a.repeat, 5), a.threads])
            results["online"].setdefault(name, {})[backend] = r
            print("online {:<20} {:<17} {}".format(name, backend, r), flush=True)
    r50 = results["online"].get("tsm_r50_224", {})
    for backend, r in results["online"].get("tsm_mobilenetv2_224", {}).items():
        if r.get("seconds_per_step") and r50.get(backend, {}).get("seconds_per_clip"):
            r["step_over_r50_clip"] = round(r["seconds_per_step"] / r50[backend]["seconds_per_clip"], 4)
    for backend in (("dygraph", "paddle-inference", "onnxruntime") if "ava" in sections else ()):
        r = run_child(["ava", backend, a.repeat, a.threads])
        results["ava"][backend] = r
        print("ava detector / {:<17} {}".format(backend, r), flush=True)
    if "memory" in sections:
        results["memory"] = memory_runs((200, 1000) if a.quick else (200, 5000))
        print("memory (peak RSS by list length):", json.dumps(results["memory"]), flush=True)
    if "ava_eval" in sections:
        import tempfile
        gt, det, label_map, rows = write_ava_eval_files(tempfile.mkdtemp(), 200000 if a.quick else 5000000)
        for name, capacity in (("capacity_50", 50), ("no_cap", 0)):
            r = run_child(["ava_eval", gt, det, label_map, capacity])
            r["rows"] = rows
            results.setdefault("ava_eval", {})[name] = r
            print("ava_eval {} ({} rows): {}".format(name, rows, r), flush=True)
    if "predict" in sections:
        results["predict_e2e_tsm_r50"] = predict_e2e(a.threads)
    if "precision" in sections:
        demo_w = os.path.join(ROOT, "output", "demo", "TSM", "TSM_final.pdparams")
        if os.path.isfile(demo_w):
            p_ = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "quantize_check.py")],
                                capture_output=True, text=True, cwd=ROOT)
            try:
                results["precision_check_demo_tsm"] = json.loads(p_.stdout)
            except ValueError:
                results["precision_check_demo_tsm"] = {"error": (p_.stderr.strip().splitlines() or ["failed"])[-1]}
        else:
            results["precision_check_demo_tsm"] = {"error": "no demo weights: run 'bash run.sh demo' first"}
        print("precision check (demo TSM):", json.dumps(results["precision_check_demo_tsm"])[:400], flush=True)
    for name in (TRAIN_MODELS if "training" in sections else ()):
        if a.quick and name != "tsm_demo_small":
            continue
        for variant in TRAIN_VARIANTS:
            r = run_train(name, variant, a.train_steps)
            results["training"].setdefault(name, {})[variant] = r
            print("training {:<16} {:<15} {}".format(name, variant, r), flush=True)
    for backend in BACKENDS[1:]:
        base = results["models"].get("resnet50_8x224", {}).get(backend, {}).get("seconds_per_clip")
        tsm = results["models"].get("tsm_r50_8x224", {}).get(backend, {}).get("seconds_per_clip")
        if base and tsm:
            results.setdefault("tsm_over_resnet50", {})[backend] = round(tsm / base, 3)
    for name, per in results["models"].items():
        for low, full in (("onnxruntime-int8", "onnxruntime"), ("paddle-inference-bf16", "paddle-inference")):
            if per.get(low, {}).get("seconds_per_clip") and per.get(full, {}).get("seconds_per_clip"):
                per[low]["over_fp32"] = round(per[low]["seconds_per_clip"] / per[full]["seconds_per_clip"], 3)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
    print("\n| model | backend | s/clip | GFLOP/s | vs fp32 | top-1 agreement | max abs dprob | peak RSS MB |\n"
          "|---|---|---|---|---|---|---|---|")
    for name, per in results["models"].items():
        for k, r in per.items():
            print("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
                name, k, r.get("seconds_per_clip", r.get("error")), r.get("gflop_per_s"), r.get("over_fp32", ""),
                r.get("top1_agreement", ""), r.get("max_abs_prob_diff", ""), r.get("peak_rss_mb")))
    for k, r in results["reader"].get("train_transforms", {}).items():
        print("| reader, {} | {} clips/s | | {} |".format(k, r.get("clips_per_s", r.get("error")), r.get("peak_rss_mb")))
    for k in ("onnxruntime", "onnxruntime-int8"):
        r = results["reader"].get(k)
        if r:
            print("| TSM-R50 8x224 pipeline, {} | reader {} / model {} / end to end {} clips/s | e2e over slower {} | {} |"
                  .format(k, r.get("reader_clips_per_s", r.get("error")), r.get("model_clips_per_s"),
                          r.get("end_to_end_clips_per_s"), r.get("end_to_end_over_slower"), r.get("peak_rss_mb")))
    for k, r in results.get("predict_e2e_tsm_r50", {}).items():
        print("| predict.py TSM-R50, {} | {} s wall | | |".format(k, r["seconds"]))
    for k, r in results["ava"].items():
        print("| AVA detector 32x256x341, 8 boxes | {} | {} s/keyframe | trunk {} s | head share {} | {} |".format(
            k, r.get("seconds_per_keyframe", r.get("error")), r.get("backbone_seconds"), r.get("head_over_backbone"),
            r.get("peak_rss_mb")))
    if results["training"]:
        print("\n| training | variant | s/step | clips/s |\n|---|---|---|---|")
        for name, variants in results["training"].items():
            for v, r in variants.items():
                print("| {} | {} | {} | {} |".format(name, v, r.get("seconds_per_step", r.get("error")),
                                                    r.get("clips_per_s")))
    print("\nwritten to {}".format(a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
