"""I3D (Carreira & Zisserman, CVPR 2017): Inception-V1 inflated to 3-D, as DeepMind's ``i3d.py``.

Every unit is conv3d (no bias) → BatchNorm (offset only, no scale, eps 1e-3) → ReLU, with
TensorFlow 'SAME' padding: the total padding ``max((ceil(in/s) - 1)·s + k - in, 0)`` is split
with the extra cell at the end (right / bottom / later frame) — padded explicitly here because
Paddle's own padding is symmetric.  Max-pools use the same rule and ignore padded cells.

Shapes: input ``[N, T, C, H, W]`` (C = 3 for RGB in [-1, 1], 2 for TV-L1 flow clipped to ±20 and
scaled to [-1, 1]) → ``[N, C, T, H, W]`` → Conv3d_1a_7x7 (stride 2) → MaxPool3d_2a (1×3×3 /
1×2×2) → Conv3d_2b_1x1 → Conv3d_2c_3x3 → MaxPool3d_3a (1×3×3 / 1×2×2) → Mixed_3b, 3c →
MaxPool3d_4a (3×3×3 / 2) → Mixed_4b..4f → MaxPool3d_5a (2×2×2 / 2) → Mixed_5b, 5c
``[N, 1024, T/8, H/32, W/32]`` → AvgPool 2×7×7 stride 1 VALID → dropout → Conv3d_0c_1x1 logits (bias,
no BN/ReLU) ``[N, classes, T', 1, 1]`` → mean over T' → ``[N, classes]``.

Sub-layers are named after DeepMind's scopes (``Mixed_4b.Branch_1_b`` ↔ ``Mixed_4b/Branch_1/Conv3d_0b_3x3``);
:func:`tf_variable_names` gives the full map used by ``scripts/convert_i3d.py``.
"""
import math

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

# name: (Branch_0, Branch_1 reduce, Branch_1, Branch_2 reduce, Branch_2, Branch_3) output channels
MIXED = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32), "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64), "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64), "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128), "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
# the layer sequence: ("unit", name, out, kernel, stride) | ("pool", name, kernel, stride) | ("mixed", name)
LAYERS = [
    ("unit", "Conv3d_1a_7x7", 64, (7, 7, 7), (2, 2, 2)), ("pool", "MaxPool3d_2a_3x3", (1, 3, 3), (1, 2, 2)),
    ("unit", "Conv3d_2b_1x1", 64, (1, 1, 1), (1, 1, 1)), ("unit", "Conv3d_2c_3x3", 192, (3, 3, 3), (1, 1, 1)),
    ("pool", "MaxPool3d_3a_3x3", (1, 3, 3), (1, 2, 2)), ("mixed", "Mixed_3b"), ("mixed", "Mixed_3c"),
    ("pool", "MaxPool3d_4a_3x3", (3, 3, 3), (2, 2, 2)), ("mixed", "Mixed_4b"), ("mixed", "Mixed_4c"),
    ("mixed", "Mixed_4d"), ("mixed", "Mixed_4e"), ("mixed", "Mixed_4f"),
    ("pool", "MaxPool3d_5a_2x2", (2, 2, 2), (2, 2, 2)), ("mixed", "Mixed_5b"), ("mixed", "Mixed_5c"),
]
BRANCHES = (("Branch_0", "Conv3d_0a_1x1"), ("Branch_1_a", "Conv3d_0a_1x1"), ("Branch_1_b", "Conv3d_0b_3x3"),
            ("Branch_2_a", "Conv3d_0a_1x1"), ("Branch_2_b", "Conv3d_0b_3x3"), ("Branch_3_b", "Conv3d_0b_1x1"))


def same_padding(size, kernel, stride):
    """TensorFlow 'SAME' padding of one dimension: ``(before, after)``, the odd cell after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x, kernel, stride, value=0.0):
    """Pad ``[N, C, T, H, W]`` for a TF-'SAME' op of ``kernel``/``stride``."""
    pads = [same_padding(x.shape[2 + i], kernel[i], stride[i]) for i in range(3)]
    if not any(a or b for a, b in pads):
        return x
    flat = [pads[2][0], pads[2][1], pads[1][0], pads[1][1], pads[0][0], pads[0][1]]   # W, H, T (last dim first)
    return F.pad(x, flat, mode="constant", value=value, data_format="NCDHW")


def max_pool_same(x, kernel, stride):
    """TF 'SAME' max-pool: padded cells never win."""
    return F.max_pool3d(pad_same(x, kernel, stride, -math.inf), kernel, stride)


class Unit3D(nn.Layer):
    """conv3d (no bias, SAME) → BN (beta only, eps 1e-3) → ReLU."""

    def __init__(self, cin, cout, kernel=(1, 1, 1), stride=(1, 1, 1)):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.conv = nn.Conv3D(cin, cout, kernel, stride=stride, bias_attr=False,
                              weight_attr=nn.initializer.KaimingNormal())
        # no scale in DeepMind's BN: a fixed, non-trainable 1 (a missing scale crashes oneDNN's BN kernel)
        self.bn = nn.BatchNorm3D(cout, epsilon=1e-3, weight_attr=paddle.ParamAttr(
            initializer=nn.initializer.Constant(1.0), trainable=False))

    def forward(self, x):
        return F.relu(self.bn(self.conv(pad_same(x, self.kernel, self.stride))))


class Mixed(nn.Layer):
    """Inception module: 1×1 | 1×1→3×3 | 1×1→3×3 | max-pool 3×3×3 (SAME, stride 1)→1×1, concatenated."""

    def __init__(self, cin, c, kt=3):
        super().__init__()
        self.pool = (kt, 3, 3)
        self.Branch_0 = Unit3D(cin, c[0])
        self.Branch_1_a = Unit3D(cin, c[1])
        self.Branch_1_b = Unit3D(c[1], c[2], (kt, 3, 3))
        self.Branch_2_a = Unit3D(cin, c[3])
        self.Branch_2_b = Unit3D(c[3], c[4], (kt, 3, 3))
        self.Branch_3_b = Unit3D(cin, c[5])
        self.out_channels = c[0] + c[2] + c[4] + c[5]

    def forward(self, x):
        b3 = self.Branch_3_b(max_pool_same(x, self.pool, (1, 1, 1)))
        return paddle.concat([self.Branch_0(x), self.Branch_1_b(self.Branch_1_a(x)),
                              self.Branch_2_b(self.Branch_2_a(x)), b3], axis=1)


class I3D(nn.Layer):
    """Inflated Inception-V1.

    Args:
        num_classes: 400 for the Kinetics checkpoints.
        in_channels: 3 (RGB) or 2 (flow).
        dropout_ratio: before the logits (DeepMind: keep_prob 0.5 in training).
        pool_size: ``[kT, kH, kW]`` of the average pool before the logits (``[2, 7, 7]`` at 224 px).
        temporal: False builds the 2-D Inception-V1 (every kernel and stride 1 in time) that
            :func:`inflate_2d` bootstraps the 3-D network from.
    """

    def __init__(self, num_classes=400, in_channels=3, dropout_ratio=0.5, pool_size=(2, 7, 7), temporal=True):
        super().__init__()
        self.layers = []
        c = in_channels
        flat = (lambda k: k) if temporal else (lambda k: (1,) + tuple(k[1:]))   # temporal=False: the 2-D network
        for spec in LAYERS:
            spec = tuple(flat(v) if isinstance(v, tuple) else v for v in spec)
            if spec[0] == "unit":
                layer = Unit3D(c, spec[2], spec[3], spec[4])
                c = spec[2]
            elif spec[0] == "mixed":
                layer = Mixed(c, MIXED[spec[1]], 3 if temporal else 1)
                c = layer.out_channels
            else:
                self.layers.append(spec)
                continue
            self.add_sublayer(spec[1], layer)
            self.layers.append(spec)
        self.pool_size = tuple(pool_size)
        self.dropout = nn.Dropout(dropout_ratio) if dropout_ratio > 0 else None
        self.Logits = nn.Conv3D(c, num_classes, 1, weight_attr=nn.initializer.KaimingNormal(),
                                bias_attr=nn.initializer.Constant(0.0))

    def features(self, x, until="Mixed_5c"):
        """``[N, C, T, H, W]`` → the output of layer ``until`` (default Mixed_5c: ``[N, 1024, T/8, H/32, W/32]``)."""
        names = [s[1] for s in self.layers]
        if until not in names:
            raise ValueError("no layer {!r}; layers: {}".format(until, ", ".join(names)))
        for spec in self.layers[:names.index(until) + 1]:
            x = max_pool_same(x, spec[2], spec[3]) if spec[0] == "pool" else getattr(self, spec[1])(x)
        return x

    def forward_features(self, x):
        """x: ``[N, T, C, H, W]`` → the average-pooled Mixed_5c feature, averaged over time ``[N, 1024]``."""
        x = F.avg_pool3d(self.features(x.transpose([0, 2, 1, 3, 4])), self.pool_size, stride=1)
        return x.mean(axis=[2, 3, 4])

    def forward(self, x):
        """x: ``[N, T, C, H, W]`` → logits ``[N, num_classes]`` (mean over the remaining time steps)."""
        x = self.features(x.transpose([0, 2, 1, 3, 4]))
        x = F.avg_pool3d(x, self.pool_size, stride=1)
        if self.dropout is not None:
            x = self.dropout(x)
        x = self.Logits(x)                                     # [N, classes, T', 1, 1] at 224 px
        return x.mean(axis=[2, 3, 4])


def tf_variable_names(model, scope="RGB"):
    """``{our parameter name: DeepMind variable name}`` for every tensor of ``model``'s state dict
    (the fixed BN scales excluded: the checkpoints have none).  Mixed_5b's Branch_2 3×3 is ``Conv3d_0a_3x3``."""
    out = {}
    prefix = "{}/inception_i3d/".format(scope) if scope else "inception_i3d/"
    bn = {"bias": "beta", "_mean": "moving_mean", "_variance": "moving_variance"}
    for name in model.state_dict():
        parts = name.split(".")
        if parts[0] == "Logits":
            out[name] = prefix + "Logits/Conv3d_0c_1x1/conv_3d/" + {"weight": "w", "bias": "b"}[parts[1]]
            continue
        if parts[-2] == "bn" and parts[-1] == "weight":
            continue
        leaf = "conv_3d/w" if parts[-2] == "conv" else "batch_norm/" + bn[parts[-1]]
        if parts[0].startswith("Mixed"):
            branch = parts[1]
            tf_branch = branch[:8]
            conv = dict(BRANCHES)[branch]
            if parts[0] == "Mixed_5b" and branch == "Branch_2_b":
                conv = "Conv3d_0a_3x3"
            out[name] = "{}{}/{}/{}/{}".format(prefix, parts[0], tf_branch, conv, leaf)
        else:
            out[name] = "{}{}/{}".format(prefix, parts[0], leaf)
    return out


def tf_to_paddle(name, array):
    """A DeepMind array → this model's layout: conv ``[kT, kH, kW, Cin, Cout]`` → ``[Cout, Cin, kT, kH, kW]``;
    BN tensors ``[C]`` or ``[1, 1, 1, 1, C]`` → ``[C]``."""
    a = np.asarray(array, dtype=np.float32)
    if name.endswith("conv_3d/w"):
        return np.ascontiguousarray(a.transpose(4, 3, 0, 1, 2))
    return a.reshape(-1)


def inflate_2d(state2d, model):
    """Bootstrap the 3-D network from 2-D weights: each 2-D kernel ``[Cout, Cin, kH, kW]`` (or a
    ``[Cout, Cin, 1, kH, kW]`` one) is repeated kT times along time and divided by kT, so a video of
    one repeated image gives the 2-D network's activations (away from temporal borders).  Other
    tensors are copied.  Returns a state dict for ``model``."""
    own = model.state_dict()
    out = {}
    for k, v in state2d.items():
        v = np.asarray(v)
        if k in own and len(own[k].shape) == 5 and v.ndim in (4, 5):
            kt = own[k].shape[2]
            v2 = v.reshape(v.shape[0], v.shape[1], v.shape[-2], v.shape[-1])
            v = np.repeat(v2[:, :, None], kt, axis=2) / kt
        out[k] = v.astype(np.float32)
    return out


class I3DTwoStream(nn.Layer):
    """RGB and flow I3D on ``[N, T, 5, H, W]`` (R, G, B, flow x, flow y of the same frames); the two
    streams' logits are summed (DeepMind's evaluate_sample.py), so softmax of the output is the
    two-stream prediction.  Parameters: ``rgb.*`` and ``flow.*`` (each an :class:`I3D`)."""

    def __init__(self, num_classes=400, dropout_ratio=0.5, pool_size=(2, 7, 7)):
        super().__init__()
        self.rgb = I3D(num_classes, 3, dropout_ratio, pool_size)
        self.flow = I3D(num_classes, 2, dropout_ratio, pool_size)

    def forward(self, x):
        return self.rgb(x[:, :, :3]) + self.flow(x[:, :, 3:])

    def forward_features(self, x):
        """x: ``[N, T, 5, H, W]`` → the two streams' features side by side ``[N, 2048]`` (RGB, then flow)."""
        return paddle.concat([self.rgb.forward_features(x[:, :, :3]), self.flow.forward_features(x[:, :, 3:])], axis=1)
