"""Training checkpoints: ``NAME_epoch{N}`` / ``NAME_final`` as three files.

* ``.pdparams`` — model state dict (``paddle.save``), loadable by ``load_weights``;
* ``.pdopt`` — optimizer state dict, including the LR scheduler;
* ``.state.json`` — where to continue (``next_epoch``, ``next_batch``), the last completed epoch,
  global step, learning rate, the run's seed (every random stream of epoch e derives from
  (seed, e)) and, for a mid-epoch checkpoint, Paddle's RNG state (base64 pickle).

``NAME_epoch{N}`` is written after epoch N; ``NAME_interrupted`` when Ctrl-C / SIGTERM stops a run
mid-epoch.  Files are written to temporary names and renamed; an old state file is removed first
and the new one renamed last, so a checkpoint is complete exactly when its state file exists and
``--resume auto`` never picks a half-written one, whenever the process is killed.
"""
import glob
import json
import os

import paddle

from ..errors import UserError

STATE_EXT = ".state.json"


def save_checkpoint(save_dir, prefix, model, optimizer, state):
    """Write ``save_dir/prefix.{pdparams,pdopt,state.json}`` atomically; return the path prefix."""
    os.makedirs(save_dir, exist_ok=True)
    base = os.path.join(save_dir, prefix)
    tmp = "{}.tmp{}".format(base, os.getpid())
    paddle.save(model.state_dict(), tmp + ".pdparams")
    paddle.save(optimizer.state_dict(), tmp + ".pdopt")
    with open(tmp + STATE_EXT, "w") as f:
        json.dump(state, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    if os.path.exists(base + STATE_EXT):
        os.remove(base + STATE_EXT)
    for ext in (".pdparams", ".pdopt", STATE_EXT):
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


def find_latest(save_dir, name):
    """The prefix of the complete checkpoint of ``name`` in ``save_dir`` that is furthest along
    (``NAME_epoch{N}`` or ``NAME_interrupted``), or None."""
    best, best_point = None, None
    patterns = (name + "_epoch*" + STATE_EXT, name + "_interrupted" + STATE_EXT)
    for pattern in patterns:
        for state_path in glob.glob(os.path.join(glob.escape(save_dir), pattern)):
            base = _strip(state_path)
            if not all(os.path.exists(base + e) for e in (".pdparams", ".pdopt")):
                continue
            try:
                with open(state_path) as f:
                    point = resume_point(json.load(f))
            except (OSError, ValueError, KeyError):
                continue
            if best_point is None or point > best_point:
                best, best_point = base, point
    return best


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
