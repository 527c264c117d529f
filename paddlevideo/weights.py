"""Loading weights in every layout PaddleVideo published: ``load_weights(model, path)``.

Detected layouts (see ``docs``/README):

* ``ours`` — a pickled dict with this project's names (``paddle.save(model.state_dict())``);
* ``legacy-dict`` — a pickled dict with legacy fluid names (``conv1_weights``, ``bn2a_branch2a_scale``,
  ``fc_0.w_0``, StNet's ``conv3d_N`` / ``batch_norm_N`` / ``xception_*``), the 2.0-era ``.pdparams``;
* ``legacy-combined`` — release 1.6 ``*_final.pdparams``: every parameter's LoDTensor
  concatenated in name-sorted order, no names stored;
* ``legacy-dir`` — a directory with one LoDTensor file per parameter (``ResNet50_pretrained/``),
  also as ``.tar.gz``;
* ``new-dict`` — new PaddleVideo names (``backbone.res2a.conv0._conv.weight``, ``head.fc.weight``;
  ``ResNet50_pretrain.pdparams`` without the ``backbone.`` prefix).

Legacy TSM used "downgrade_in_infer" dropout (no scaling in training, features × (1-p) at
inference) where this project uses Paddle's default (scaling in training, identity at
inference); a file whose classifier has the legacy fluid name (``fc_0.w_0``, see
:func:`is_legacy_classifier`) therefore has its classifier weight scaled by ``1 - p`` on import
(for a model with dropout), so that outputs match the reference — in every container.  A name or
shape mismatch stops with the first offenders and the class count the file implies.
"""
import os
import re
import struct
import sys
import tempfile

import numpy as np
import paddle

from .errors import UserError

# ---------------------------------------------------------------------------------------------
# LoDTensor files (fluid's save format)
# ---------------------------------------------------------------------------------------------
DTYPES = {5: np.float32, 6: np.float64, 4: np.float16, 3: np.int64, 2: np.int32, 20: np.uint8, 21: np.int8}
CODES = {np.dtype(v): k for k, v in DTYPES.items()}


def _varint(buf, pos):
    out = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return out, pos


def _parse_desc(buf):
    """TensorDesc protobuf: field 1 data_type (varint), field 2 dims (int64, packed or not)."""
    dtype, dims, pos = None, [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
            if field == 1:
                dtype = val
            elif field == 2:
                dims.append(val - (1 << 64) if val >= 1 << 63 else val)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            end = pos + n
            if field == 2:
                while pos < end:
                    val, pos = _varint(buf, pos)
                    dims.append(val)
            pos = end
        else:
            raise ValueError("unexpected protobuf wire type {}".format(wire))
    return dtype, dims


def read_lodtensor(f):
    """Read one LoDTensor from a binary file object; None at end of file."""
    head = f.read(4)
    if not head:
        return None
    if len(head) < 4 or struct.unpack("<I", head)[0] != 0:
        raise ValueError("not a LoDTensor (bad version)")
    (lod_level,) = struct.unpack("<Q", f.read(8))
    for _ in range(lod_level):
        (size,) = struct.unpack("<Q", f.read(8))
        f.read(size)
    if struct.unpack("<I", f.read(4))[0] != 0:
        raise ValueError("not a LoDTensor (bad tensor version)")
    (desc_len,) = struct.unpack("<i", f.read(4))
    dtype, dims = _parse_desc(f.read(desc_len))
    if dtype not in DTYPES:
        raise ValueError("unsupported LoDTensor data type {}".format(dtype))
    dt = np.dtype(DTYPES[dtype])
    n = int(np.prod(dims)) if dims else 1
    data = f.read(n * dt.itemsize)
    if len(data) != n * dt.itemsize:
        raise ValueError("truncated LoDTensor")
    return np.frombuffer(data, dt).reshape(dims).copy()


def write_lodtensor(f, array):
    """Write ``array`` as a fluid LoDTensor (lod_level 0) — the inverse of :func:`read_lodtensor`."""
    a = np.ascontiguousarray(array)
    desc = bytes([0x08, CODES[a.dtype]])
    for d in a.shape:
        desc += bytes([0x10]) + _encode_varint(d)
    f.write(struct.pack("<I", 0) + struct.pack("<Q", 0) + struct.pack("<I", 0) + struct.pack("<i", len(desc)))
    f.write(desc)
    f.write(a.astype(a.dtype.newbyteorder("<")).tobytes())


def _encode_varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


# ---------------------------------------------------------------------------------------------
# Name maps: this project's names <-> legacy fluid names <-> new PaddleVideo names
# ---------------------------------------------------------------------------------------------
BN_LEGACY = {"weight": "scale", "bias": "offset", "_mean": "mean", "_variance": "variance"}
BN_AUTO = {"weight": "w_0", "bias": "b_0", "_mean": "w_1", "_variance": "w_2"}
NEW_BRANCH = {"branch2a": "conv0", "branch2b": "conv1", "branch2c": "conv2", "branch1": "short"}
STNET_AUTO = {"temporal3": ("conv3d_0", "batch_norm_24"), "temporal4": ("conv3d_1", "batch_norm_44")}


def legacy_name(ours):
    """This project's parameter name → legacy fluid name (None if it has none)."""
    parts = ours.split(".")
    if parts[0] == "fc":
        return "fc_0." + {"weight": "w_0", "bias": "b_0"}[parts[1]]
    if parts[0] == "xception":
        layer, p = parts[1], parts[2]
        return "xception_{}.{}".format(layer, (BN_AUTO if layer.startswith("bn") else {"weight": "w_0", "bias": "b_0"})[p])
    if parts[0] != "backbone":
        return None
    if parts[1] in STNET_AUTO:
        conv, bn = STNET_AUTO[parts[1]]
        return "{}.{}".format(conv, {"weight": "w_0", "bias": "b_0"}[parts[3]]) if parts[2] == "conv" \
            else "{}.{}".format(bn, BN_AUTO[parts[3]])
    if parts[1] == "conv1":
        return "conv1_weights" if parts[2] == "conv" else "bn_conv1_" + BN_LEGACY[parts[3]]
    block, branch, kind, p = parts[1], parts[2], parts[3], parts[4]
    if kind == "conv":
        return "{}_{}_weights".format(block, branch)
    return "bn{}_{}_{}".format(block[3:], branch, BN_LEGACY[p])


def new_name(ours):
    """This project's name → new PaddleVideo name (Recognizer2D: backbone.* / head.fc.*)."""
    parts = ours.split(".")
    if parts[0] == "fc":
        return "head." + ours
    if parts[0] != "backbone" or parts[1].startswith("temporal"):
        return None
    bn = {"weight": "weight", "bias": "bias", "_mean": "_mean", "_variance": "_variance"}
    if parts[1] == "conv1":
        return "backbone.conv." + ("_conv.weight" if parts[2] == "conv" else "_batch_norm." + bn[parts[3]])
    block, branch, kind, p = parts[1], parts[2], parts[3], parts[4]
    return "backbone.{}.{}.{}".format(block, NEW_BRANCH[branch],
                                      "_conv.weight" if kind == "conv" else "_batch_norm." + bn[p])


def _renumber_auto(state):
    """Map StNet's auto-generated names by build order: the lower conv3d_N / batch_norm_N index is
    the block after res3, the higher the block after res4 (the literal index depends on the build)."""
    out = dict(state)
    for prefix, canon in (("conv3d_", ("conv3d_0", "conv3d_1")), ("batch_norm_", ("batch_norm_24", "batch_norm_44"))):
        idx = sorted({int(m.group(1)) for k in state for m in [re.match(re.escape(prefix) + r"(\d+)\.", k)] if m})
        if len(idx) == 2:
            for k in list(out):
                m = re.match(re.escape(prefix) + r"(\d+)\.(.*)$", k)
                if m:
                    out[canon[idx.index(int(m.group(1)))] + "." + m.group(2)] = out.pop(k)
    fcs = sorted({m.group(1) for k in state for m in [re.match(r"fc_(\d+)\.", k)] if m})
    if len(fcs) == 1 and fcs[0] != "0":
        for k in list(out):
            if k.startswith("fc_{}.".format(fcs[0])):
                out["fc_0." + k.split(".", 1)[1]] = out.pop(k)
    return out


# ---------------------------------------------------------------------------------------------
# Reading any layout
# ---------------------------------------------------------------------------------------------
def _read_dir(path):
    out = {}
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if os.path.isfile(full) and not name.startswith("."):
            try:
                with open(full, "rb") as f:
                    t = read_lodtensor(f)
            except (ValueError, struct.error, IndexError):
                continue  # not a parameter file (e.g. __model__, README)
            if t is not None:
                out[name] = t
    if not out:
        raise UserError("{} holds no parameter files; expected a legacy parameter directory "
                        "(one LoDTensor per parameter, e.g. ResNet50_pretrained/)".format(path))
    return out


def _read_combined(path):
    arrays = []
    with open(path, "rb") as f:
        while True:
            t = read_lodtensor(f)
            if t is None:
                return arrays
            arrays.append(t)


def read_raw(path):
    """Read ``path`` in whatever layout it has: ``(kind, dict or list of arrays)``."""
    if not os.path.exists(path) and os.path.exists(path + ".pdparams"):
        path = path + ".pdparams"
    if not os.path.exists(path):
        raise UserError("weights {} not found; pass an existing file or directory (.pdparams, a legacy "
                        "parameter directory or its .tar.gz)".format(path))
    if os.path.isdir(path):
        return "legacy-dir", _read_dir(path)
    if path.endswith((".tar.gz", ".tgz", ".tar")):
        from .download import safe_extract
        with tempfile.TemporaryDirectory(prefix="pv_weights_") as tmp:
            safe_extract(path, tmp)
            inner = [os.path.join(tmp, d) for d in os.listdir(tmp)]
            return "legacy-dir", _read_dir(inner[0] if len(inner) == 1 and os.path.isdir(inner[0]) else tmp)
    with open(path, "rb") as f:
        magic = f.read(1)
    if magic == b"\x80":  # a pickle
        try:
            state = paddle.load(path)
        except Exception as e:
            raise UserError("cannot read weights {} ({})".format(path, str(e).splitlines()[0] if str(e) else type(e).__name__))
        if not isinstance(state, dict):
            raise UserError("{} does not hold a name -> tensor dict".format(path))
        state = {k: (v.numpy() if hasattr(v, "numpy") else np.asarray(v)) for k, v in state.items()
                 if hasattr(v, "shape")}
        return "dict", state
    try:
        return "legacy-combined", _read_combined(path)
    except (ValueError, struct.error, IndexError):
        raise UserError("{} is neither a .pdparams dict nor a legacy LoDTensor file; expected weights "
                        "saved by PaddleVideo or this project".format(path))


CLASSIFIER = ("fc.", "head.projection.", "backbone.out.")          # TSN/TSM/StNet, SlowFast, TSM-MobileNetV2
LEGACY_CLASSIFIER = re.compile(r"fc_\d+\.w_0$")


def is_legacy_classifier(names):
    """The one rule for the legacy dropout scaling: the file stores its classifier under a fluid
    auto-name (``fc_0.w_0``), i.e. it was written by the legacy PaddleVideo, whose dropout was
    "downgrade_in_infer" — whatever container (combined file, pickle, directory, tar) holds it."""
    return any(LEGACY_CLASSIFIER.match(n) for n in names)


def _mapped(fn, name):
    """``fn(name)``, or None for a name outside the ResNet-trunk naming (e.g. SlowFast's 3-D blocks,
    whose own names are the released PaddleVideo ones)."""
    try:
        return fn(name)
    except (IndexError, KeyError):
        return None


def to_model_names(model, kind, raw):
    """Convert a raw read to ``(layout, {our name: array}, legacy_classifier)`` for ``model``.

    A combined file is first given its legacy names (it stores the legacy parameters in
    name-sorted order), so every legacy container goes through the same name-keyed path.
    """
    own = model.state_dict()
    legacy = {k: _mapped(legacy_name, k) for k in own}
    if kind == "legacy-combined":
        order = sorted(v for v in legacy.values() if v)
        if len(raw) != len(order):
            raise UserError("legacy combined weights hold {} tensors but the {} model has {} (first shapes in "
                            "the file: {}); check MODEL.name, num_layers and seglen".format(
                                len(raw), type(model).__name__, len(order), [list(a.shape) for a in raw[:3]]))
        raw = dict(zip(order, raw))
    state = raw
    legacy_fc = is_legacy_classifier(state)
    if any(k in state for k in ("conv1_weights", "fc_0.w_0")) or any(k.startswith("res2a_") for k in state):
        state = _renumber_auto(state)
        inv = {v: k for k, v in legacy.items() if v}
        layout = kind if kind in ("legacy-dir", "legacy-combined") else "legacy-dict"
        return layout, {inv.get(k, k): v for k, v in state.items()}, legacy_fc
    if any(k.startswith(("backbone.conv._conv", "conv._conv", "head.fc")) for k in state):
        prefixed = {k if k.startswith(("backbone.", "head.")) else "backbone." + k: v for k, v in state.items()}
        inv = {v: k for k, v in ((k, _mapped(new_name, k)) for k in own) if v}
        return "new-dict", {inv.get(k, k): v for k, v in prefixed.items()}, legacy_fc
    return "ours", state, legacy_fc


def read_weights(model, path):
    """``(layout, {our name: array}, legacy_classifier)`` from ``path`` in any supported layout."""
    kind, raw = read_raw(path)
    return to_model_names(model, kind, raw)


def _implied_classes(state):
    w = state.get("fc.weight", state.get("head.projection.weight", state.get("backbone.out.weight")))
    return None if w is None else int(w.shape[-1])


def load_weights(model, path, allow_classifier_mismatch=False, quiet=False):
    """Load ``path`` (any published layout or ours) into ``model`` after checking names and shapes.

    With ``allow_classifier_mismatch`` a classifier of another size is skipped (warned) and the
    model keeps its fresh one.  StNet models also accept 2D trunks (conv1 inflated).  Returns the
    list of skipped names.
    """
    layout, state, legacy_fc = read_weights(model, path)
    if legacy_fc and "fc.weight" in state and getattr(model, "dropout", None) is not None:
        state["fc.weight"] = state["fc.weight"] * (1.0 - model.dropout.p)   # downgrade_in_infer
    fresh = set()
    if hasattr(model, "adapt_state"):  # e.g. StNet inflating 2D conv1 weights
        state, fresh = model.adapt_state(state)
    own = model.state_dict()
    fc = {n for n in own if n.startswith(CLASSIFIER)}
    missing = [k for k in own if k not in state and k not in fresh]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    skipped = []
    if allow_classifier_mismatch:
        skipped = [k for k in wrong + missing if k in fc]
        wrong = [k for k in wrong if k not in fc]
        missing = [k for k in missing if k not in fc]
        unexpected = [k for k in unexpected if not k.startswith(CLASSIFIER + ("fc",))]
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
        raise UserError("weights {} ({} layout) do not fit the {} model: {}.{} Check MODEL.name, "
                        "MODEL.num_layers, MODEL.seglen and MODEL.num_classes.".format(
                            path, layout, type(model).__name__, "; ".join(parts), implied))
    merged = {k: v.numpy() for k, v in own.items()}           # fresh / skipped tensors keep their init
    merged.update({k: np.asarray(v, dtype=merged[k].dtype) for k, v in state.items()
                   if k in own and k not in skipped})
    model.set_state_dict(merged)
    if fresh and not quiet:
        if hasattr(model, "adapt_note"):
            print(model.adapt_note(path, fresh), file=sys.stderr)
        else:
            print("info: {} is a 2D trunk; conv1 inflated to the model's input channels, {} model-specific "
                  "tensors start fresh".format(path, len(fresh)), file=sys.stderr)
    if skipped and not quiet:
        print("warning: {} has another classifier ({} classes); skipped {} and kept a fresh "
              "classifier".format(path, _implied_classes(state), ", ".join(skipped)), file=sys.stderr)
    return skipped
