"""Loading weights into a model: ``load_weights(model, path)``.

Reads a ``.pdparams`` state dict (``paddle.save`` of ``model.state_dict()``, what this project
writes) and checks it against the model: names and shapes must match; a mismatch stops with a
message naming the first offenders and the class count the file implies.  With
``allow_classifier_mismatch=True`` a classifier of another size is skipped with a warning (the
model keeps its freshly initialised fc) — that is how fine-tuning to a new dataset starts.
"""
import os
import sys

import numpy as np
import paddle

from .errors import UserError


def _classifier_names(model):
    return {n for n in model.state_dict() if n.startswith("fc.")}


def read_state_dict(path):
    """``{name: ndarray}`` from a ``.pdparams`` file (a prefix without extension also works)."""
    if not os.path.exists(path) and os.path.exists(path + ".pdparams"):
        path = path + ".pdparams"
    if not os.path.exists(path):
        raise UserError("weights file {} not found; pass an existing .pdparams file".format(path))
    if os.path.isdir(path):
        raise UserError("{} is a directory; pass the .pdparams file".format(path))
    try:
        state = paddle.load(path)
    except Exception as e:
        raise UserError("cannot read weights {} ({}); expected a .pdparams file written by "
                        "paddle.save".format(path, str(e).splitlines()[0] if str(e) else type(e).__name__))
    if not isinstance(state, dict):
        raise UserError("{} does not hold a name -> tensor dict".format(path))
    return {k: (v.numpy() if hasattr(v, "numpy") else np.asarray(v)) for k, v in state.items()
            if hasattr(v, "shape")}


def _implied_classes(state):
    w = state.get("fc.weight")
    return None if w is None else int(w.shape[-1])


def load_weights(model, path, allow_classifier_mismatch=False, quiet=False):
    """Load ``path`` into ``model`` (in place) after checking every name and shape.

    Returns the list of parameter names that were skipped (only the classifier, and only when
    ``allow_classifier_mismatch``).
    """
    state = read_state_dict(path)
    fresh = set()
    if hasattr(model, "adapt_state"):  # e.g. StNet inflating 2D conv1 weights
        state, fresh = model.adapt_state(state)
    own = model.state_dict()
    fc = _classifier_names(model)
    missing = [k for k in own if k not in state and k not in fresh]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    skipped = []
    if allow_classifier_mismatch:
        skipped = [k for k in wrong + missing if k in fc]
        wrong = [k for k in wrong if k not in fc]
        missing = [k for k in missing if k not in fc]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append("missing {}".format(", ".join(missing[:5])))
        if unexpected:
            parts.append("unexpected {}".format(", ".join(unexpected[:5])))
        if wrong:
            parts.append("wrong shape {}".format(", ".join(
                "{} {} (model {})".format(k, list(state[k].shape), list(own[k].shape)) for k in wrong[:5])))
        n = _implied_classes(state)
        implied = " The file implies num_classes={}.".format(n) if n else ""
        raise UserError("weights {} do not fit the model ({}): {}.{} Check MODEL.name, "
                        "MODEL.num_layers and MODEL.num_classes.".format(
                            path, type(model).__name__, "; ".join(parts), implied))
    merged = {k: v.numpy() for k, v in own.items()}           # fresh / skipped tensors keep their init
    merged.update({k: v for k, v in state.items() if k in own and k not in skipped})
    model.set_state_dict(merged)
    if fresh and not quiet:
        print("info: {} is a 2D trunk; conv1 inflated to the model's input channels, {} model-specific "
              "tensors start fresh".format(path, len(fresh)), file=sys.stderr)
    if skipped and not quiet:
        print("warning: {} has another classifier size ({} classes); skipped {} and kept a fresh "
              "classifier".format(path, _implied_classes(state), ", ".join(skipped)), file=sys.stderr)
    return skipped
