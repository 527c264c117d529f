"""Convert DeepMind's kinetics-i3d checkpoints (TensorFlow) to a .pdparams for MODEL.name I3D.

    python scripts/convert_i3d.py --src data/checkpoints/rgb_imagenet/model.ckpt --stream rgb --out i3d_rgb.pdparams
    python scripts/convert_i3d.py --src rgb_imagenet.npz --stream rgb --out i3d_rgb.pdparams
    python scripts/convert_i3d.py --two_stream i3d_rgb.pdparams i3d_flow.pdparams --out i3d_two_stream.pdparams

``--src`` is a TensorFlow checkpoint prefix (read with ``tensorflow`` when it is installed) or an
``.npz`` holding the same variable names → arrays, so the conversion works without TensorFlow; make
such an npz once where TensorFlow is available::

    import numpy as np, tensorflow as tf
    r = tf.train.load_checkpoint("data/checkpoints/rgb_imagenet/model.ckpt")
    np.savez("rgb_imagenet.npz", **{k: r.get_tensor(k) for k in r.get_variable_to_shape_map()})

Variable names: ``RGB/inception_i3d/Mixed_3b/Branch_1/Conv3d_0b_3x3/conv_3d/w``, ``.../batch_norm/beta``,
``moving_mean``, ``moving_variance``, ``.../Logits/Conv3d_0c_1x1/conv_3d/w`` and ``b`` (the ``RGB/`` or
``Flow/`` scope is optional; optimizer slots such as ``.../Momentum`` and ``global_step`` are ignored).
Conv weights ``[kT, kH, kW, Cin, Cout]`` become ``[Cout, Cin, kT, kH, kW]``; BN tensors of shape
``[C]`` or ``[1, 1, 1, 1, C]`` are accepted.  A missing or unexpected variable stops with the list;
the output is written to a temporary name and renamed, so nothing half-written is left.
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from paddlevideo.cli import configure_process  # noqa: E402
configure_process()   # threads before paddle is imported
import paddle  # noqa: E402
from paddlevideo.errors import UserError, run_cli  # noqa: E402
from paddlevideo.models.i3d import I3D, tf_to_paddle, tf_variable_names  # noqa: E402

IGNORED = ("Momentum", "global_step", "ExponentialMovingAverage")


def read_source(src):
    """``{variable name: array}`` from an .npz or a TensorFlow checkpoint prefix."""
    if src.endswith(".npz"):
        if not os.path.isfile(src):
            raise UserError("--src {} not found".format(src))
        with np.load(src) as z:
            return {k: z[k] for k in z.files}
    try:
        import tensorflow as tf
    except ImportError:
        raise UserError("--src {} is a TensorFlow checkpoint but tensorflow is not installed; install it, or "
                        "convert the checkpoint to an .npz where it is (see --help)".format(src))
    try:
        reader = tf.train.load_checkpoint(src)
    except Exception as e:
        raise UserError("cannot read the TensorFlow checkpoint {} ({}); pass the prefix, e.g. "
                        ".../rgb_imagenet/model.ckpt".format(src, str(e).splitlines()[0]))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}


def convert(variables, stream):
    """DeepMind variables → ``(state dict for I3D, num_classes)``; raises UserError on a mismatch."""
    scope = {"rgb": "RGB", "flow": "Flow"}[stream]
    other = {"rgb": "Flow", "flow": "RGB"}[stream]
    if any(k.startswith(other + "/") for k in variables) and not any(k.startswith(scope + "/") for k in variables):
        raise UserError("the checkpoint holds the {} stream (variables under {}/); check --stream".format(
            other.lower() if other == "Flow" else other, other))
    tensors = {}
    for k, v in variables.items():
        if any(part in IGNORED for part in k.split("/")):
            continue
        name = k[len(scope) + 1:] if k.startswith(scope + "/") else k
        tensors[name] = v
    logits = tensors.get("inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/w")
    if logits is None:
        raise UserError("no inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/w in the source: not an I3D {} checkpoint "
                        "(variables look like {})".format(stream, ", ".join(sorted(variables)[:3])))
    num_classes = int(logits.shape[-1])
    model = I3D(num_classes, 3 if stream == "rgb" else 2)
    names = tf_variable_names(model, scope=None)
    missing = sorted(tf for tf in names.values() if tf not in tensors)
    unexpected = sorted(set(tensors) - set(names.values()))
    if missing or unexpected:
        raise UserError("the source does not match the I3D {} network: missing {}; unexpected {}".format(
            stream, ", ".join(missing[:10]) + (" (+{} more)".format(len(missing) - 10) if len(missing) > 10 else "")
            or "none", ", ".join(unexpected[:10]) or "none"))
    own = model.state_dict()
    state = {}
    for ours, tf in names.items():
        a = tf_to_paddle(tf, tensors[tf])
        if tuple(a.shape) != tuple(own[ours].shape):
            raise UserError("{}: shape {} does not fit {} {} (check --stream)".format(
                tf, list(tensors[tf].shape), ours, list(own[ours].shape)))
        state[ours] = a
    for k, v in own.items():                   # DeepMind's BN has no scale: the model's fixed 1s
        if k.endswith(".bn.weight"):
            state[k] = np.ones(v.shape, np.float32)
    return state, num_classes


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", help="TensorFlow checkpoint prefix or .npz")
    p.add_argument("--stream", choices=("rgb", "flow"))
    p.add_argument("--two_stream", nargs=2, metavar=("RGB", "FLOW"),
                   help="join two converted .pdparams into one for configs/i3d_two_stream.yaml")
    p.add_argument("--out", required=True, help="the .pdparams to write")
    p.add_argument("--debug", action="store_true")
    a = p.parse_args(argv)
    if a.two_stream:
        state = {}
        for prefix, path, cin in (("rgb.", a.two_stream[0], 3), ("flow.", a.two_stream[1], 2)):
            loaded = paddle.load(path)
            w = loaded.get("Conv3d_1a_7x7.conv.weight")
            if w is None or w.shape[1] != cin:
                raise UserError("{} is not a converted I3D {} stream (expected Conv3d_1a_7x7 with {} input "
                                "channels)".format(path, prefix[:-1], cin))
            state.update({prefix + k: v for k, v in loaded.items()})
        num_classes, stream = int(state["rgb.Logits.bias"].shape[0]), "two-stream"
    elif a.src and a.stream:
        state, num_classes = convert(read_source(a.src), a.stream)
        stream = "{} stream from {} DeepMind variables".format(a.stream, len(tf_variable_names(I3D(num_classes, 2))))
    else:
        raise UserError("pass --src CKPT --stream rgb|flow, or --two_stream RGB.pdparams FLOW.pdparams")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    tmp = a.out + ".partial"
    paddle.save(state, tmp)
    os.replace(tmp, a.out)
    print("wrote {} ({} tensors, I3D {}, {} classes)".format(a.out, len(state), stream, num_classes))
    return 0


if __name__ == "__main__":
    run_cli(main)
