"""``precision``: the int8/bf16 accuracy check of the demo TSM."""
import json
import os
import re
import subprocess
import sys
import time

from .common import BACKENDS, ROOT, real_clips_list, run_child  # noqa: F401


CHILDREN = {}


def run(a, results):
    """``precision_check_demo_tsm``: scripts/quantize_check.py (int8/bf16 against fp32) on the demo's TSM."""
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
