"""Training checkpoints: ``NAME_epoch{N}`` / ``NAME_final`` as three files.

* ``.pdparams`` — model state dict (``paddle.save``), loadable by ``load_weights``;
* ``.pdopt`` — optimizer state dict, including the LR scheduler;
* ``.yaml`` — the run's resolved config (:func:`~paddlevideo.config.save_config`): eval/predict/export given
  ``--weights`` and no ``--config`` build the network from it; ``--resume auto`` takes only a checkpoint whose
  config builds the same network on the same training list;
* ``.state.json`` — where to continue (``next_epoch``, ``next_batch``), the last completed epoch,
  global step, learning rate, the run's seed (every random stream of epoch e derives from
  (seed, e)) and, for a mid-epoch checkpoint, Paddle's RNG state (base64 pickle).

Every run has an identity (``run_id``, in every checkpoint's state, every log line and ``NAME_run.json``, which
names the run most recently started or continued in the folder): ``--resume auto`` continues that run only, never
an older run's further checkpoint left in the same folder.

``NAME_epoch{N}`` is written after epoch N; ``NAME_interrupted`` when Ctrl-C / SIGTERM stops a run
mid-epoch.  Files are written to temporary names and renamed; an old state file is removed first
and the new one renamed last, so a checkpoint is complete exactly when its state file exists and
``--resume auto`` never picks a half-written one, whenever the process is killed.
"""
import glob
import json
import os

import paddle

from ..config import config_beside, load_config, network_differences, save_config  # noqa: F401  (config_beside: an alias)
from ..errors import UserError

STATE_EXT = ".state.json"


def save_checkpoint(save_dir, prefix, model, optimizer, state, cfg=None):
    """Write ``save_dir/prefix.{pdparams,pdopt,yaml,state.json}`` atomically (``.yaml``: ``cfg``, when given);
    return the path prefix."""
    os.makedirs(save_dir, exist_ok=True)
    base = os.path.join(save_dir, prefix)
    tmp = "{}.tmp{}".format(base, os.getpid())
    paddle.save(model.state_dict(), tmp + ".pdparams")
    paddle.save(optimizer.state_dict(), tmp + ".pdopt")
    exts = [".pdparams", ".pdopt"]
    if cfg is not None:
        save_config(cfg, tmp + ".yaml")
        exts.append(".yaml")
    with open(tmp + STATE_EXT, "w") as f:
        json.dump(state, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    if os.path.exists(base + STATE_EXT):
        os.remove(base + STATE_EXT)
    for ext in exts + [STATE_EXT]:
        os.replace(tmp + ext, base + ext)
    return base


def remove_stale_temporaries(save_dir, name):
    """Delete temporary files a killed run left behind."""
    for path in glob.glob(os.path.join(glob.escape(save_dir), name + "_*.tmp*")):
        try:
            os.remove(path)
        except OSError:
            pass


def resume_point(state):
    """``(next_epoch, next_batch)`` of a state dict."""
    if "next_epoch" in state:
        return int(state["next_epoch"]), int(state.get("next_batch", 0))
    return int(state["epoch"]) + 1, 0


def _strip(path):
    for ext in (STATE_EXT, ".pdparams", ".pdopt"):
        if path.endswith(ext):
            return path[:-len(ext)]
    return path


def run_differences(cfg, base):
    """Why the checkpoint ``base`` is not a run of ``cfg``: ``[(key, checkpoint's value, cfg's value)]`` over the
    network keys and the training list (empty: the same run); None when no config is beside it (a checkpoint
    written before checkpoints carried their config)."""
    path = base + ".yaml"
    if not os.path.isfile(path):
        return None
    try:
        old = load_config(path)
    except UserError as e:
        return [("config", "unreadable ({})".format(e), "-")]
    diff = network_differences(old, cfg)
    a, b = old.mode("train").filelist, cfg.mode("train").filelist
    if a != b and not (a and b and os.path.abspath(a) == os.path.abspath(b)):
        diff.append(("TRAIN.filelist", a, b))
    return diff


RUN_EXT = "_run.json"


def new_run_id():
    """A fresh run identity: start time and a random suffix, e.g. ``20261207-003512-4f2a9c``."""
    import time
    import uuid
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def latest_run(save_dir, name):
    """The run most recently started or continued in ``save_dir`` (``NAME_run.json``): a dict with ``run_id``,
    or None (a folder written before runs had identities)."""
    try:
        with open(os.path.join(save_dir, name + RUN_EXT)) as f:
            run = json.load(f)
        return run if isinstance(run, dict) and run.get("run_id") else None
    except (OSError, ValueError):
        return None


def mark_run(save_dir, name, run_id, resumed_from=None):
    """Record ``run_id`` as the folder's latest run (atomically)."""
    import time
    path = os.path.join(save_dir, name + RUN_EXT)
    tmp = "{}.tmp{}".format(path, os.getpid())
    with open(tmp, "w") as f:
        json.dump({"run_id": run_id, "time": round(time.time(), 3), "resumed_from": resumed_from}, f, indent=1)
    os.replace(tmp, path)


def find_latest(save_dir, name, cfg=None):
    """The prefix of the complete checkpoint of ``name`` in ``save_dir`` that is furthest along
    (``NAME_epoch{N}`` or ``NAME_interrupted``) among those of the latest run (:func:`latest_run`) and of the
    same network and list as ``cfg`` (see :func:`run_differences`), or None; and ``[(prefix, reason)]`` for the
    complete checkpoints passed over."""
    best, best_point, passed = None, None, []
    latest = latest_run(save_dir, name)
    patterns = (name + "_epoch*" + STATE_EXT, name + "_interrupted" + STATE_EXT)
    for pattern in patterns:
        for state_path in glob.glob(os.path.join(glob.escape(save_dir), pattern)):
            base = _strip(state_path)
            if not all(os.path.exists(base + e) for e in (".pdparams", ".pdopt")):
                continue
            try:
                with open(state_path) as f:
                    state = json.load(f)
                point = resume_point(state)
            except (OSError, ValueError, KeyError):
                continue
            if latest is not None and state.get("run_id") != latest["run_id"]:
                passed.append((base, "an older run ({}); the latest run in this folder is {}".format(
                    state.get("run_id") or "without an identity", latest["run_id"])))
                continue
            diff = run_differences(cfg, base) if cfg is not None else []
            if diff:
                passed.append((base, "another run: " + ", ".join("{} {} (now {})".format(k, a, b) for k, a, b in diff)))
                continue
            if best_point is None or point > best_point:
                best, best_point = base, point
    return best, passed


def read_resume(path):
    """Classify a ``--resume`` path.

    Returns ``(params_path, opt_path or None, state dict or None)``: all three for a full
    checkpoint of ours, only the params for a params-only file (e.g. a published
    ``TSM_final.pdparams``), which starts a fine-tune.
    """
    base = _strip(path)
    params = base + ".pdparams" if os.path.exists(base + ".pdparams") else path
    if not os.path.exists(params):
        raise UserError("--resume {}: no such checkpoint (expected NAME_epochN.pdparams or a "
                        "prefix of it, or 'auto')".format(path))
    if os.path.exists(base + ".pdopt") and os.path.exists(base + STATE_EXT):
        try:
            with open(base + STATE_EXT) as f:
                state = json.load(f)
        except (OSError, ValueError) as e:
            raise UserError("--resume {}: state file {} is unreadable ({})".format(path, base + STATE_EXT, e))
        return params, base + ".pdopt", state
    return params, None, None
