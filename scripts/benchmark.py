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
  detector writes one row per box per class; ``--quick``: 50 k) with the official capacity 50 and without a
  cap: JSON ``ava_eval.<capacity_50|no_cap>`` with ``rows``, ``keyframes``, ``seconds``, ``peak_rss_mb`` — with the
  cap the memory is bounded by 50 × keyframes, not by the rows.

Every temporary file (exports, ONNX and int8 models, weights, lists) goes under one folder that is removed at the
end, on errors and on Ctrl-C too.

    python scripts/benchmark.py --out output/benchmark.json [--quick] [--sections models,reader,predict,training]
    python scripts/benchmark.py --report docs/benchmarks.md [--from output/benchmark.json]   # the tables, generated

One module per section in ``scripts/benchmarks/`` (the registry: ``scripts/benchmarks/__init__.py``); an unknown
section is an error.
"""
import argparse
import json
import os
import platform
import resource
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import benchmarks  # noqa: E402
from benchmarks.common import BACKENDS  # noqa: E402
from benchmarks.models import MODELS  # noqa: E402
from benchmarks.report import markdown  # noqa: E402


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "output", "benchmark.json"))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--quick", action="store_true", help="skip StNet dygraph and the reader with 2 workers")
    p.add_argument("--only", default=None, help="comma-separated model names (default all: {})".format(", ".join(MODELS)))
    p.add_argument("--backends", default=",".join(BACKENDS),
                   help="comma-separated, from: {} (-int8/-bf16: lower precision)".format(", ".join(BACKENDS)))
    p.add_argument("--sections", default=benchmarks.DEFAULT,
                   help="comma-separated, from: {} (default {})".format(", ".join(benchmarks.SECTIONS),
                                                                         benchmarks.DEFAULT))
    p.add_argument("--train_steps", type=int, default=3, help="timed training steps per variant (after one warm-up)")
    p.add_argument("--report", default=None, metavar="FILE.md",
                   help="write the markdown tables of a benchmark JSON (--from, default --out) and stop")
    p.add_argument("--from", dest="source", default=None, metavar="JSON", help="--report: the JSON to read")
    p.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    unknown = [s for s in a.sections.split(",") if s not in benchmarks.SECTIONS]
    if unknown:
        p.error("unknown section(s) {}; choose from {}".format(", ".join(unknown), ", ".join(benchmarks.SECTIONS)))
    return a


def peak_rss_mb():
    """This process's peak resident set (``VmHWM``: its own since exec, where ``ru_maxrss`` may still count the
    parent's pages at fork)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def child(kind, args):
    """One measurement in this (child) process: print ``RESULT {json}`` with its peak RSS."""
    res = benchmarks.CHILDREN[kind](*args)
    if res is None:                       # a non-zero rank of a launch: rank 0 reports
        return 0
    res["peak_rss_mb"] = peak_rss_mb()
    res["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    print("RESULT " + json.dumps(res))
    return 0


def main(argv=None):
    a = parse(argv)
    if a.child is not None:
        return child(a.child[0], a.child[1:])
    if a.report:
        with open(a.source or a.out) as f:
            text = markdown(json.load(f), a.source or os.path.relpath(a.out, ROOT))
        os.makedirs(os.path.dirname(os.path.abspath(a.report)), exist_ok=True)
        with open(a.report, "w") as f:
            f.write(text)
        print("written to {}".format(a.report))
        return 0
    import shutil
    import signal
    import tempfile
    scratch = tempfile.mkdtemp(prefix="pv_bench_")      # every temporary file of this run and its children
    os.environ["TMPDIR"] = tempfile.tempdir = scratch
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # a kill runs the clean-up below too
    try:
        return measure(a)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def measure(a):
    """Run ``a.sections`` in order; write ``a.out`` (JSON) and print the tables."""
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "python": platform.python_version(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}}
    try:  # not `import paddle` here: it would pin OMP_NUM_THREADS=1 for every child process
        from importlib.metadata import version
        results["machine"]["paddle"] = version("paddlepaddle")
    except Exception:
        pass
    for name in a.sections.split(","):
        benchmarks.SECTIONS[name].run(a, results)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
    print("\n" + markdown(results))
    print("written to {}".format(a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
