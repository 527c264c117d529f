"""Shared by the benchmark sections: the project root, the backends, the real test clips, and running one
measurement in a child process (so that its peak RSS is its own)."""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "benchmark.py")
BACKENDS = ("dygraph", "paddle-inference", "onnxruntime", "onnxruntime-int8", "paddle-inference-bf16")


def real_clips_list():
    """A list file of the real test clips (int8 calibration and the agreement check of random-weight models)."""
    import tempfile
    d = os.path.join(ROOT, "tests", "data")
    path = os.path.join(tempfile.mkdtemp(), "clips.list")
    with open(path, "w") as f:
        f.write("".join("{} 0\n".format(os.path.join(d, n)) for n in sorted(os.listdir(d)) if n.endswith((".mp4", ".avi"))))
    return path


def run_child(args):
    """Run this script as a child measurement; return its JSON result plus peak RSS."""
    cmd = [sys.executable, SCRIPT, "--child"] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    m = re.search(r"^RESULT (.*)$", p.stdout, re.M)
    if p.returncode != 0 or not m:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(m.group(1))
