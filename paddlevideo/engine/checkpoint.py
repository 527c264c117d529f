"""Training checkpoints: ``NAME_epoch{N}`` / ``NAME_final`` as three files.

* ``.pdparams`` — model state dict (``paddle.save``), loadable by ``load_weights``;
* ``.pdopt`` — optimizer state dict, including the LR scheduler;
* ``.state.json`` — epoch (0-based, completed), global step, learning rate, and the run's seed
  (every random stream of epoch e derives from (seed, e), so the seed is the RNG state).

Files are written to temporary names and renamed; the state file is renamed last and marks the
checkpoint as complete, so ``--resume auto`` never picks a half-written one.
"""
import glob
import json
import os
import re

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
    for ext in (".pdparams", ".pdopt", STATE_EXT):
        os.replace(tmp + ext, base + ext)
    return base


def _strip(path):
    for ext in (STATE_EXT, ".pdparams", ".pdopt"):
        if path.endswith(ext):
            return path[:-len(ext)]
    return path


def find_latest(save_dir, name):
    """The prefix of the newest complete ``NAME_epoch{N}`` checkpoint in ``save_dir`` or None."""
    best, best_epoch = None, -1
    for state_path in glob.glob(os.path.join(glob.escape(save_dir), name + "_epoch*" + STATE_EXT)):
        m = re.search(r"_epoch(\d+)" + re.escape(STATE_EXT) + "$", state_path)
        base = _strip(state_path)
        if m and int(m.group(1)) > best_epoch and all(
                os.path.exists(base + e) for e in (".pdparams", ".pdopt")):
            best, best_epoch = base, int(m.group(1))
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
