"""The one ResNet trunk shared by TSN, TSM and StNet.

Frames are processed as a batch of images ``[N*T, C, H, W]`` (T = segments per clip).  Models
customise the trunk in two places:

* ``shift_ratio`` > 0 puts a residual temporal shift at the input of every block's residual
  branch (TSM); the shortcut keeps the unshifted input.
* ``after_stage={3: layer, 4: layer}`` runs ``layer(x, T)`` after res3 / res4 (StNet's
  temporal modelling blocks).

Sub-layer names follow the legacy PaddleVideo parameter names so that checkpoints map one to
one: ``conv1`` (legacy ``conv1_weights`` / ``bn_conv1_*``), ``res2a.branch2a`` (legacy
``res2a_branch2a_weights`` / ``bn2a_branch2a_*``), ``res2a.branch1`` for projection shortcuts.
"""
import math

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

DEPTHS = {
    18: ("basic", [2, 2, 2, 2]),
    34: ("basic", [3, 4, 6, 3]),
    50: ("bottleneck", [3, 4, 6, 3]),
    101: ("bottleneck", [3, 4, 23, 3]),
}
STEMS = ("imagenet", "small")


class ConvBN(nn.Layer):
    """conv (no bias) → BN → optional ReLU."""

    def __init__(self, cin, cout, k, stride=1, act=True):
        super().__init__()
        self.conv = nn.Conv2D(cin, cout, k, stride=stride, padding=(k - 1) // 2, bias_attr=False,
                              weight_attr=nn.initializer.KaimingNormal())
        self.bn = nn.BatchNorm2D(cout)
        self.act = act

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu(x) if self.act else x


def shift_channels(c, shift_ratio):
    """``(c1, c2)``: Paddle's ``temporal_shift`` op (the reference) shifts channels ``[0, c1)`` from frame t-1 and
    ``[c1, c2)`` from t+1, with ``c1 = int(c·r)`` and ``c2 = int(2c·r)`` in float32 arithmetic — so r = 0.2,
    C = 64 gives 12 and 25 (13 forward), not 12 and 24."""
    r = np.float32(shift_ratio)
    return int(np.float32(c) * r), int(np.float32(2 * c) * r)


def temporal_shift(x, num_segments, shift_ratio, impl="op", online=False):
    """Shift ``shift_ratio`` of the channels one frame back and as many one frame forward.

    x: ``[N*T, C, H, W]`` → same shape.  Channels ``[0, c1)`` of frame t take frame t-1,
    ``[c1, c2)`` take frame t+1 (zeros at the clip ends), the rest are unchanged; ``c1, c2`` by the op's rule
    (:func:`shift_channels`) in every formulation.  ``online``: the past-only (uni-directional) shift of online
    TSM — channels ``[0, c1)`` from frame t-1 (zeros at t = 0), every other channel unchanged, so frame t never
    sees a later frame and the network can run one frame at a time with a cache of those channels.

    ``impl="op"`` uses Paddle's fused ``temporal_shift`` op (fastest in the dynamic graph);
    ``impl="slice"`` the same as slices + concat, which exported models use because Paddle
    Inference's oneDNN path wraps the fused op in layout reorders (measured 1.05 s vs 0.62 s per
    TSM-R50 clip on 2 cores).
    """
    c = x.shape[1]
    c1, c2 = shift_channels(c, shift_ratio)
    if online:
        c2 = c1
    if impl == "op":
        out = F.temporal_shift(x, num_segments, shift_ratio)
        return paddle.concat([out[:, :c1], x[:, c1:]], axis=1) if online else out
    if impl == "gather":
        h, w = x.shape[2], x.shape[3]
        idx, mask = _shift_index(num_segments, c, c1, c2)
        x4 = x.reshape([-1, num_segments * c, h, w])       # free: memory is [N, T, C, H, W]
        out = paddle.gather(x4, paddle.to_tensor(idx), axis=1) * paddle.to_tensor(mask)
        return out.reshape([-1, c, h, w])
    h, w = x.shape[2], x.shape[3]
    x5 = x.reshape([-1, num_segments, c, h, w])
    if num_segments == 1:
        out = paddle.concat([paddle.zeros_like(x5[:, :, :c2]), x5[:, :, c2:]], axis=2)
    else:
        parts = [paddle.concat([paddle.zeros_like(x5[:, :1, :c1]), x5[:, :-1, :c1]], axis=1)]
        if c2 > c1:
            parts.append(paddle.concat([x5[:, 1:, c1:c2], paddle.zeros_like(x5[:, :1, c1:c2])], axis=1))
        out = paddle.concat(parts + [x5[:, :, c2:]], axis=2)
    return out.reshape([-1, c, h, w])


def shift_input(block, x, num_segments):
    """The shifted input of a block's residual branch.  Streaming (``block.stream`` a dict whose ``"in"`` is the
    previous frame's cache ``[N, c1, H, W]``, one frame per call, see engine.online): channels ``[0, c1)`` come from
    the cache and ``"out"`` keeps this frame's for the next call — the online shift unrolled over calls.  (A dict:
    a Tensor attribute of a Layer would become one of its buffers.)"""
    if block.stream is not None:
        c1 = shift_channels(x.shape[1], block.shift_ratio)[0]
        block.stream["out"] = x[:, :c1]
        return paddle.concat([block.stream["in"], x[:, c1:]], axis=1)
    return temporal_shift(x, num_segments, block.shift_ratio, block.shift_impl, block.shift_online)


_SHIFT_INDEX = {}


@paddle.jit.not_to_static
def _shift_index(t, c, c1, c2):
    """For the gather formulation: source channel of each (frame, channel) in the flattened
    ``[T*C]`` axis, and a ``[1, T*C, 1, 1]`` mask that zeroes what would come from outside the clip."""
    key = (t, c, c1, c2)
    if key not in _SHIFT_INDEX:
        src_t = np.repeat(np.arange(t)[:, None], c, 1)
        src_t[:, :c1] -= 1
        src_t[:, c1:c2] += 1
        valid = (src_t >= 0) & (src_t < t)
        src_t = np.where(valid, src_t, np.arange(t)[:, None])
        idx = (src_t * c + np.arange(c)[None, :]).reshape(-1).astype("int64")
        _SHIFT_INDEX[key] = (idx, valid.reshape(1, -1, 1, 1).astype("float32"))
    return _SHIFT_INDEX[key]


def set_shift_impl(model, impl):
    """Choose the temporal shift formulation ("op", "slice" or "gather") for every shifting block of ``model`` (any
    trunk's blocks declare a ``shift_impl``)."""
    for layer in model.sublayers(include_self=True):
        if hasattr(layer, "shift_impl"):
            layer.shift_impl = impl
    return model


class BasicBlock(nn.Layer):
    """3×3 → 3×3 residual block (ResNet-18/34). Names: branch2a, branch2b, branch1."""
    expansion = 1
    shift_impl = "op"
    shift_online = False          # ResNet(shift_mode="online"): the past-only shift
    stream = None                 # streaming cache holder (see shift_input)

    def __init__(self, cin, width, stride, shift_ratio=0.0):
        super().__init__()
        cout = width * self.expansion
        self.branch2a = ConvBN(cin, width, 3, stride)
        self.branch2b = ConvBN(width, cout, 3, act=False)
        self.branch1 = ConvBN(cin, cout, 1, stride, act=False) if stride != 1 or cin != cout else None
        self.shift_ratio = shift_ratio

    def residual(self, x):
        return self.branch2b(self.branch2a(x))

    def forward(self, x, num_segments):
        y = shift_input(self, x, num_segments) if self.shift_ratio else x
        short = self.branch1(x) if self.branch1 is not None else x
        return F.relu(self.residual(y) + short)


class Bottleneck(BasicBlock):
    """1×1 → 3×3 (stride) → 1×1 residual block (ResNet-50/101). Names: branch2a/2b/2c, branch1."""
    expansion = 4

    def __init__(self, cin, width, stride, shift_ratio=0.0):
        nn.Layer.__init__(self)
        cout = width * self.expansion
        self.branch2a = ConvBN(cin, width, 1)
        self.branch2b = ConvBN(width, width, 3, stride)
        self.branch2c = ConvBN(width, cout, 1, act=False)
        self.branch1 = ConvBN(cin, cout, 1, stride, act=False) if stride != 1 or cin != cout else None
        self.shift_ratio = shift_ratio

    def residual(self, x):
        return self.branch2c(self.branch2b(self.branch2a(x)))


def block_names(depth, counts=None):
    """Legacy block names per stage: res2a, res2b, ... (res4b1..res4b22 for depth 101).

    ``counts`` (blocks per stage) overrides the depth's; stages of more than 26 blocks use the
    numbered form (res4a, res4b1, res4b2, ...)."""
    counts = counts or DEPTHS[depth][1]
    names = []
    for stage, n in enumerate(counts):
        s = stage + 2
        if (depth >= 101 and stage == 2) or n > 26:
            names.append(["res{}a".format(s)] + ["res{}b{}".format(s, i) for i in range(1, n)])
        else:
            names.append(["res{}{}".format(s, chr(ord("a") + i)) for i in range(n)])
    return names


def stage_channels(depth, width=64):
    """Output channels of res2..res5 for a trunk of ``depth`` and base ``width``."""
    expansion = 4 if DEPTHS[depth][0] == "bottleneck" else 1
    return [width * 2 ** s * expansion for s in range(4)]


class ResNet(nn.Layer):
    """ResNet trunk without its classifier.

    Args:
        depth: 18, 34, 50 or 101.
        in_channels: input channels (3, or 3*seglen for StNet super-images).
        shift_ratio: residual temporal shift ratio per block (0 = none).
        shift_mode: "bidirectional" (offline TSM) or "online" (past-only, see :func:`temporal_shift`).
        after_stage: {stage (2..5): Layer called as ``layer(x, T)``} inserted after that stage.
        zero_init_residual: start the last BN of every residual branch at zero (each block starts as
            the identity), which makes training from scratch markedly more stable.
        stem: "imagenet" (7×7 stride-2 conv + 3×3 stride-2 max-pool: output at H/32) or "small"
            (3×3 stride-1 conv, no max-pool: output at H/8), for low-resolution video.
        width: base channels (64 in every published ResNet); stage s has ``width * 2**s`` (×4
            for bottlenecks) output channels.
        blocks: blocks per stage (4 numbers), overriding the depth's; the depth still picks the
            block type (18/34 basic, 50/101 bottleneck).
    Input ``[N*T, in_channels, H, W]``; output ``[N*T, out_channels, H/32, W/32]`` (``H/8`` with
    the small stem).
    """

    def __init__(self, depth=50, in_channels=3, shift_ratio=0.0, after_stage=None, zero_init_residual=False,
                 stem="imagenet", width=64, blocks=None, shift_mode="bidirectional"):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError("ResNet depth must be one of {}".format(sorted(DEPTHS)))
        if stem not in STEMS:
            raise ValueError("ResNet stem must be one of {}".format(", ".join(STEMS)))
        kind, _ = DEPTHS[depth]
        block = Bottleneck if kind == "bottleneck" else BasicBlock
        self.depth = depth
        self.stem = stem
        self.conv1 = ConvBN(in_channels, width, 7, stride=2) if stem == "imagenet" else ConvBN(in_channels, width, 3)
        self.stages = []
        self.stage_channels = stage_channels(depth, width)
        cin = width
        for stage, names in enumerate(block_names(depth, blocks)):
            base = width * 2 ** stage
            stage_blocks = []
            for i, name in enumerate(names):
                stride = 2 if i == 0 and stage > 0 else 1
                layer = block(cin, base, stride, shift_ratio)
                layer.shift_online = shift_mode == "online"
                self.add_sublayer(name, layer)
                stage_blocks.append(layer)
                cin = base * block.expansion
            self.stages.append(stage_blocks)
        self.out_channels = cin
        if zero_init_residual:
            for stage_blocks in self.stages:
                for b in stage_blocks:
                    last = b.branch2c if isinstance(b, Bottleneck) else b.branch2b
                    last.bn.weight.set_value(paddle.zeros(last.bn.weight.shape))
        self.after_stage = after_stage or {}
        for stage, layer in self.after_stage.items():
            self.add_sublayer("temporal{}".format(stage), layer)

    def forward(self, x, num_segments):
        x = self.conv1(x)
        if self.stem == "imagenet":
            x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        for stage, blocks in enumerate(self.stages):
            for b in blocks:
                x = b(x, num_segments)
            hook = self.after_stage.get(stage + 2)
            if hook is not None:
                x = hook(x, num_segments)
        return x


def init_fc(fc):
    """Legacy fc init: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the weight, zero bias."""
    stdv = 1.0 / math.sqrt(fc.weight.shape[0])
    fc.weight.set_value(paddle.uniform(fc.weight.shape, min=-stdv, max=stdv))
    fc.bias.set_value(paddle.zeros(fc.bias.shape))
