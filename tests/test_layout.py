"""The layout's rules, enforced: who may import whom (read from every module's import statements, lazy ones
included), imports without side effects, the AVA scorer without Paddle, and the engine aliases."""
import ast
import os
import subprocess
import sys

import pytest

from conftest import ROOT

PKG = os.path.join(ROOT, "paddlevideo")
BOTTOM = {"config", "errors", "quiet", "download", "report"}      # import nothing of ours but each other
CLIS = {"train", "eval", "predict", "export", "serve"}


def modules():
    """``{dotted name: file}`` of every module of the package but the engine aliases."""
    out = {}
    for d, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(d, f), ROOT)[:-3].replace(os.sep, ".")
                name = rel[:-len(".__init__")] if rel.endswith(".__init__") else rel
                if not name.startswith("paddlevideo.engine"):
                    out[name] = os.path.join(d, f)
    return out


def imports(name, path):
    """Absolute names of everything ``path`` imports (module level or inside functions)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            out.add(mod)
            out.update("{}.{}".format(mod, a.name) for a in node.names)
    return out


def ours(names):
    """The package-relative parts (``runtime.backends``) of the names that are ours."""
    return {n[len("paddlevideo."):] for n in names if n.startswith("paddlevideo.")}


def test_who_may_import_whom():
    broken = []
    for name, path in sorted(modules().items()):
        short = name[len("paddlevideo."):] if name != "paddlevideo" else ""
        top = short.split(".")[0]
        mine = ours(imports(name, path))
        tops = {m.split(".")[0] for m in mine}
        every = imports(name, path)

        def rule(ok, why):
            if not ok:
                broken.append("{}: {}".format(name, why))
        if top in BOTTOM:
            rule(tops <= BOTTOM, "the bottom layer imports {}".format(sorted(tops - BOTTOM)))
        if top in ("metrics", "annotations"):
            rule(not {n for n in every if n.split(".")[0] in ("paddle", "cv2")},
                 "imports Paddle or OpenCV")
            rule(tops <= BOTTOM | {"metrics", "annotations"}, "imports {}".format(sorted(tops - BOTTOM - {"metrics",
                                                                                                    "annotations"})))
        if top == "runtime":
            rule(not tops & {"apps", "training", "cli", "serving"}, "runtime imports {}".format(
                sorted(tops & {"apps", "training", "cli", "serving"})))
        if top == "training":
            rule("apps" not in tops, "training imports apps")
        if top == "apps":
            rule("training" not in tops, "apps imports training")
        if top == "serving":
            rule(not tops & {"training"}, "serving imports training")
        else:
            rule("serving" not in tops, "imports serving (only serve.py does)")
        if top != "cli":
            rule("cli" not in tops, "imports the CLI module")
        rule(not {n for n in every if n.split(".")[0] in CLIS}, "imports a command-line script")
    assert not broken, "\n".join(broken)


def test_only_the_tasks_know_the_task_names():
    """No module but tasks.py and the model classes compares against a task or asks a config for its task."""
    found = []
    for name, path in modules().items():
        if name in ("paddlevideo.tasks",) or name.startswith("paddlevideo.models"):
            continue
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, ast.Compare) and any(isinstance(c, ast.Constant) and c.value in (
                    "detection", "classification") for c in node.comparators + [node.left]):
                found.append("{}:{}".format(name, node.lineno))
            if isinstance(node, ast.Name) and node.id == "task_of":
                found.append("{}:{} task_of".format(name, node.lineno))
    assert not found, found


def test_imports_load_no_paddle_and_change_no_process_state():
    code = (
        "import os, sys, warnings, numpy, yaml, cv2  # third-party imports may set their own state\n"
        "env, filters, out, err = dict(os.environ), list(warnings.filters), sys.stdout, sys.stderr\n"
        "import paddlevideo, paddlevideo.config, paddlevideo.metrics, paddlevideo.metrics.ava\n"
        "import paddlevideo.metrics.classification, paddlevideo.metrics.plots, paddlevideo.annotations.ava\n"
        "import paddlevideo.cli, paddlevideo.report, paddlevideo.errors, paddlevideo.download\n"
        "sys.path.insert(0, os.path.join({root!r}, 'data', 'dataset'))\n"
        "import build_list, extract_frames\n"
        "assert 'paddle' not in sys.modules, 'paddle imported'\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
        "assert dict(os.environ) == env, 'environment changed'\n"
        "assert warnings.filters == filters, 'warning filters changed'\n"
        "assert sys.stdout is out and sys.stderr is err\n"
        "print('ok')\n").format(root=ROOT)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-2000:]


def test_the_ava_scorer_runs_without_paddle(tmp_path):
    """scripts/ava_eval.py in a process where ``import paddle`` fails."""
    gt, det, lm = tmp_path / "gt.csv", tmp_path / "det.csv", tmp_path / "map.pbtxt"
    gt.write_text("v,0902,0.1,0.1,0.5,0.5,1,0\n")
    det.write_text("v,0902,0.1,0.1,0.5,0.5,1,0.9\n")
    lm.write_text('item {\n  name: "stand"\n  id: 1\n}\n')
    code = ("import runpy, sys\nsys.modules['paddle'] = None\n"
            "sys.argv = ['ava_eval.py', '--gt', {!r}, '--detections', {!r}, '--label_map', {!r}]\n"
            "runpy.run_path({!r}, run_name='__main__')\n").format(str(gt), str(det), str(lm),
                                                                 os.path.join(ROOT, "scripts", "ava_eval.py"))
    p = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), capture_output=True, text=True)
    assert p.returncode == 0 and "frame-mAP@0.5IOU: 1.000000" in p.stdout, p.stderr[-2000:]


@pytest.mark.parametrize("old,new", [("engine.online", "apps.online"), ("engine.train", "training.loop"),
                                     ("engine.backends", "runtime.backends"), ("engine.ava_eval", "metrics.ava"),
                                     ("engine.records", "runtime.records"), ("engine.tasks", "tasks"),
                                     ("engine.cli", "cli"), ("engine.evaluate", "apps.evaluate")])
def test_the_engine_names_are_aliases_of_the_new_modules(old, new):
    import importlib
    assert importlib.import_module("paddlevideo." + old) is importlib.import_module("paddlevideo." + new)
    from paddlevideo.engine.online import OnlineRecognizer
    from paddlevideo.engine.common import per_video, softmax  # noqa: F401
    assert OnlineRecognizer.__module__ == "paddlevideo.apps.online"


def test_benchmark_sections_are_a_registry_and_an_unknown_one_is_an_error(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import benchmarks
    from benchmarks.report import markdown
    for name, module in benchmarks.SECTIONS.items():
        assert callable(module.run) and isinstance(module.CHILDREN, dict), name
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "benchmark.py"), "--sections", "models,nope"],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and "unknown section(s) nope" in p.stderr
    res = {"machine": {"cpus": 2}, "ava_eval": {"capacity_50": {"rows": 10, "seconds": 1.5}},
           "reader": {"onnxruntime": {"error": "failed"}}}
    md = markdown(res)
    assert "| capacity_50 | 10 |" in md and "| onnxruntime | failed |" in md and "## Models" not in md
