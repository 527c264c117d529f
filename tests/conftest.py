import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
sys.path.insert(0, ROOT)

import paddlevideo  # noqa: E402,F401  (thread settings before paddle)


def clip(name):
    return os.path.join(DATA, name)


def run_cli(script, *args, check=True, timeout=600, env=None, cwd=ROOT):
    """Run one of the project's CLIs in a subprocess (``env``: extra environment variables; ``cwd``: its working
    directory); return the CompletedProcess."""
    cmd = [sys.executable, os.path.join(ROOT, script)] + [str(a) for a in args]
    full_env = dict(os.environ, **{k: str(v) for k, v in (env or {}).items()})
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=full_env)
    if check and p.returncode != 0:
        raise AssertionError("{} failed ({}):\n{}\n{}".format(" ".join(cmd), p.returncode, p.stdout[-3000:],
                                                            p.stderr[-3000:]))
    return p


def released_layout_file(model, layout_name, path, scale=0.01):
    """Check that ``model``'s state dict has the names and shapes of ``tests/data/layouts/<layout_name>.json`` (a
    published checkpoint), write a seeded file of that layout to ``path``, load it into ``model`` and check that
    every tensor arrived; return the written state."""
    import json
    import numpy as np
    import paddle
    from paddlevideo import load_weights
    with open(os.path.join(DATA, "layouts", layout_name + ".json")) as f:
        layout = json.load(f)["params"]
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == dict((n, s) for n, s in layout)
    rng = np.random.RandomState(0)
    state = {n: (np.abs(rng.standard_normal(s)) + 1 if n.endswith("_variance") else rng.standard_normal(s) * scale)
             .astype("float32") for n, s in layout}
    paddle.save(state, str(path))
    load_weights(model, str(path))
    got = model.state_dict()
    assert all(np.array_equal(got[n].numpy(), a) for n, a in state.items())
    return state


def rank_pid(log_dir, rank):
    """The pid of the launched process with PADDLE_TRAINER_ID == rank of this launch (read from /proc)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/{}/environ".format(pid), "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        except (OSError, ValueError):
            continue
        if env.get(b"PV_LAUNCH_LOG_DIR") == str(log_dir).encode() and env.get(b"PADDLE_TRAINER_ID") == str(rank).encode():
            return int(pid)
    return None


@pytest.fixture
def write_list(tmp_path):
    def make(lines, name="list.txt"):
        p = tmp_path / name
        p.write_text("".join(line + "\n" for line in lines))
        return str(p)
    return make
