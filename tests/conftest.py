import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
sys.path.insert(0, ROOT)

from paddlevideo.cli import configure_process  # noqa: E402
configure_process()   # threads before paddle is imported


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


def free_port():
    """A TCP port free on 127.0.0.1 now (for a local server a test starts)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


# ---- the fast lane: `bash run.sh test --fast` = pytest -m "not slow" ----------------------------------------------
# A test is slow when it (or a fixture it uses, or a helper of its module they call) starts processes — the CLIs,
# launches, demos, stream servers — or is marked slow by hand (in-process training).
_PROCESS = re.compile(r"\b(run_cli|subprocess\.|Popen|paddle\.distributed\.launch|run_child)\b")


def _starts_processes(fn, seen):
    import inspect
    if fn in seen:
        return False
    seen.add(fn)
    try:
        src = inspect.getsource(fn)
    except (OSError, TypeError):
        return False
    if _PROCESS.search(src):
        return True
    module = sys.modules.get(getattr(fn, "__module__", ""), None)
    for name in set(re.findall(r"\b([A-Za-z_]\w*)\(", src)):
        obj = getattr(module, name, None)
        if inspect.isfunction(obj) and obj.__module__ == module.__name__ and _starts_processes(obj, seen):
            return True
    return False


def pytest_collection_modifyitems(config, items):
    for item in items:
        fn = getattr(item, "function", None)
        seen = set()
        slow = fn is not None and _starts_processes(fn, seen)
        for name in getattr(item, "fixturenames", ()):
            for d in getattr(item, "_fixtureinfo").name2fixturedefs.get(name, ()):
                slow = slow or _starts_processes(d.func, seen)
        if slow:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _weights_cache(tmp_path_factory):
    """Downloads and exports of the whole run (this process and the CLIs it starts) go to one cache under pytest's
    temporary folder, made once per run and removed with it — never into the user's ~/.paddle/weights."""
    d = tmp_path_factory.mktemp("weights_cache")
    old = os.environ.get("PADDLEVIDEO_WEIGHTS_HOME")
    os.environ["PADDLEVIDEO_WEIGHTS_HOME"] = str(d)
    yield d
    if old is None:
        os.environ.pop("PADDLEVIDEO_WEIGHTS_HOME", None)
    else:
        os.environ["PADDLEVIDEO_WEIGHTS_HOME"] = old
