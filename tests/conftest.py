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


def run_cli(script, *args, check=True, timeout=600, env=None):
    """Run one of the project's CLIs in a subprocess (``env``: extra environment variables); return the
    CompletedProcess."""
    cmd = [sys.executable, os.path.join(ROOT, script)] + [str(a) for a in args]
    full_env = dict(os.environ, **{k: str(v) for k, v in (env or {}).items()})
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=full_env)
    if check and p.returncode != 0:
        raise AssertionError("{} failed ({}):\n{}\n{}".format(" ".join(cmd), p.returncode, p.stdout[-3000:],
                                                            p.stderr[-3000:]))
    return p


@pytest.fixture
def write_list(tmp_path):
    def make(lines, name="list.txt"):
        p = tmp_path / name
        p.write_text("".join(line + "\n" for line in lines))
        return str(p)
    return make
