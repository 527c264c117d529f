"""A slow, obvious NumPy (float64) model of legacy PaddleVideo TSM/TSN inference, on legacy names.

It works directly on a dict of legacy fluid parameter names (``conv1_weights``,
``bn2a_branch2a_scale``, ``res2a_branch1_weights``, ``fc_0.w_0`` ...), independent of this
project's models and name maps, and follows the legacy graph (legacy PaddleVideo release 1.6):

    conv1 7×7/2 → BN → ReLU → max-pool 3×3/2 → 16 bottlenecks (TSM: ``temporal_shift`` of 1/8 of the
    channels at the input of every residual branch; the shortcut takes the unshifted input)
    → global average pool → dropout "downgrade_in_infer" (features × (1 - p) at inference)
    → mean over segments → fc → softmax

Seeded stand-in weights of the published TSM_final layout (``tests/data/layouts/TSM_final.json``)
and the reference log-probabilities stored in ``tests/data/legacy_tsm_reference.npz`` come from
here; regenerate that file with ``python tests/legacy_reference.py``.
"""
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
LAYOUT = os.path.join(HERE, "data", "layouts", "TSM_final.json")
REFERENCE = os.path.join(HERE, "data", "legacy_tsm_reference.npz")
EPS = 1e-5            # fluid batch_norm default
INPUT_SHAPE = (2, 8, 3, 64, 64)
SEED = 1234


def layout():
    with open(LAYOUT) as f:
        return [(name, tuple(shape)) for name, shape in json.load(f)["params"]]


def stand_in_weights(seed=SEED):
    """Seeded weights with every tensor of the TSM_final layout; activations stay O(1)."""
    rng = np.random.RandomState(seed)
    out = {}
    for name, shape in layout():
        if name.endswith("_weights"):            # conv [cout, cin, k, k]: He init
            fan_in = int(np.prod(shape[1:]))
            a = rng.normal(0, np.sqrt(2.0 / fan_in), shape)
        elif name.endswith("_scale"):
            a = rng.uniform(0.2, 0.6, shape) if "branch2c" in name else rng.uniform(0.7, 1.3, shape)
        elif name.endswith("_offset"):
            a = rng.uniform(-0.2, 0.2, shape)
        elif name.endswith("_mean"):
            a = rng.uniform(-0.2, 0.2, shape)
        elif name.endswith("_variance"):
            a = rng.uniform(0.5, 1.5, shape)
        elif name == "fc_0.w_0":
            a = rng.normal(0, 0.1 / np.sqrt(shape[0]), shape)
        elif name == "fc_0.b_0":
            a = rng.uniform(-0.5, 0.5, shape)
        else:
            raise AssertionError("unexpected legacy name " + name)
        out[name] = a.astype(np.float32)
    return out


def stand_in_input(seed=SEED):
    return np.random.RandomState(seed + 1).randn(*INPUT_SHAPE).astype(np.float32)


def conv2d(x, w, stride, pad):
    """x [B, C, H, W], w [O, C, k, k] → [B, O, H', W'] (zero padding), by im2col."""
    b, c, h, wd = x.shape
    o, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    cols = np.empty((b, c, k, k, ho, wo), x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = xp[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]
    return np.einsum("bckluv,ockl->bouv", cols, w, optimize=True)


def batch_norm(x, p, prefix):
    scale, offset = p[prefix + "_scale"], p[prefix + "_offset"]
    mean, var = p[prefix + "_mean"], p[prefix + "_variance"]
    inv = scale / np.sqrt(var + EPS)
    return x * inv[None, :, None, None] + (offset - mean * inv)[None, :, None, None]


def max_pool_3x3_s2(x):
    b, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    ho, wo = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    return np.max([xp[:, :, i:i + 2 * ho:2, j:j + 2 * wo:2] for i in range(3) for j in range(3)], axis=0)


def temporal_shift(x, t, ratio=0.125):
    """[N*T, C, H, W]: channels [0, C/8) take frame t-1, [C/8, C/4) frame t+1, zeros at clip ends."""
    nt, c, h, w = x.shape
    f = int(c * ratio)
    x5 = x.reshape(nt // t, t, c, h, w)
    out = np.zeros_like(x5)
    out[:, 1:, :f] = x5[:, :-1, :f]
    out[:, :-1, f:2 * f] = x5[:, 1:, f:2 * f]
    out[:, :, 2 * f:] = x5[:, :, 2 * f:]
    return out.reshape(nt, c, h, w)


def conv_bn(x, p, block, branch, stride, relu):
    w = p["{}_{}_weights".format(block, branch)]
    y = batch_norm(conv2d(x, w, stride, (w.shape[-1] - 1) // 2), p, "bn{}_{}".format(block[3:], branch))
    return np.maximum(y, 0) if relu else y


def forward(p, x, shift, dropout=0.5):
    """Legacy inference: ``p`` legacy-named arrays, ``x`` ``[N, T, 3, H, W]`` → log-probs ``[N, classes]``."""
    p = {k: v.astype(np.float64) for k, v in p.items()}
    n, t = x.shape[:2]
    y = x.astype(np.float64).reshape((n * t,) + x.shape[2:])
    y = np.maximum(batch_norm(conv2d(y, p["conv1_weights"], 2, 3), p, "bn_conv1"), 0)
    y = max_pool_3x3_s2(y)
    for stage, blocks in enumerate((3, 4, 6, 3)):
        for i in range(blocks):
            name = "res{}{}".format(stage + 2, "abcdef"[i])
            stride = 2 if i == 0 and stage > 0 else 1
            z = temporal_shift(y, t) if shift else y
            z = conv_bn(z, p, name, "branch2a", 1, True)
            z = conv_bn(z, p, name, "branch2b", stride, True)
            z = conv_bn(z, p, name, "branch2c", 1, False)
            short = conv_bn(y, p, name, "branch1", stride, False) if i == 0 else y
            y = np.maximum(z + short, 0)
    feat = y.mean(axis=(2, 3)) * (1.0 - dropout)                 # downgrade_in_infer at inference
    logits = feat.reshape(n, t, -1).mean(axis=1) @ p["fc_0.w_0"] + p["fc_0.b_0"]
    logits -= logits.max(axis=1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def main():
    p, x = stand_in_weights(), stand_in_input()
    tsm = forward(p, x, shift=True, dropout=0.5)     # legacy TSM: dropout 0.5
    tsn = forward(p, x, shift=False, dropout=0.0)    # legacy TSN: no dropout
    np.savez(REFERENCE, tsm=tsm, tsn=tsn, seed=SEED, input_shape=INPUT_SHAPE)
    print("wrote", REFERENCE, "TSM top-1", tsm.argmax(1), "max prob", np.exp(tsm).max(1))


if __name__ == "__main__":
    main()
