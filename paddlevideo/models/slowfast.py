"""SlowFast (Feichtenhofer et al., ICCV 2019): a slow and a fast pathway joined by lateral connections.

Laid out exactly as PaddleVideo's ``ResNetSlowFast`` + ``SlowFastHead`` so that its released
``SlowFast.pdparams`` (and ``SlowFast_8*8.pdparams``) load name for name: ``backbone.s1.pathway{0,1}_stem``,
``backbone.s{1..4}_fuse``, ``backbone.s{2..5}.pathway{p}_res{i}.branch1/branch2.{a,b,c}`` (+ ``_bn``),
``head.projection``.  Pathway 0 is the slow one, 1 the fast one.  The depth and block counts come
from the shared trunk's table (``resnet.DEPTHS``); the blocks are 3-D here (kT×1×1 → 1×3×3 → 1×1×1).

Shapes (T fast frames, α frame-rate ratio, β channel ratio, width w = 64):
  input ``[N, T, 3, H, W]`` (the fast pathway's frames) → ``[N, 3, T, H, W]``; the slow pathway takes
  the T/α frames ``linspace(0, T-1, T/α)`` (PaddleVideo's PackOutput rule: T=32, α=8 → 0, 10, 20, 31)
  → stems (slow 1×7×7 w ch, fast 5×7×7 w/β ch, stride 1×2×2, max-pool 1×3×3/1×2×2) → fuse → s2 → fuse
  → s3 → fuse → s4 → fuse → s5: slow ``[N, 32w, T/α, H/32, W/32]``, fast ``[N, 32w/β, T, H/32, W/32]``
  → average pools (fixed ``[T/α, 7, 7]`` / ``[T, 7, 7]`` stride 1 as the reference at 224 px, or global)
  → concat (slow first) → channels-last → dropout → fc → ``[N, t, h, w, classes]``.
  Training returns the logits (one pooled position at the training size); evaluation returns
  ``log(mean over pooled positions of softmax)`` — whose softmax is exactly the reference's output.
"""
import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .resnet import DEPTHS, stage_channels

EPS = 1e-5
# temporal kernel of the stem and of conv "a" in res2..res5, per pathway (slow, fast)
TEMPORAL_KERNELS = [(1, 5), (1, 3), (1, 3), (3, 3), (3, 3)]


def _conv3d(cin, cout, kernel, stride=1, padding=0):
    return nn.Conv3D(cin, cout, kernel, stride=stride, padding=padding, bias_attr=False,
                     weight_attr=nn.initializer.KaimingNormal())


def _bn(c, zero=False):
    """BatchNorm3D (eps 1e-5); ``zero`` starts its scale at 0 (the last BN of a residual branch)."""
    return nn.BatchNorm3D(c, epsilon=EPS, weight_attr=nn.initializer.Constant(0.0 if zero else 1.0))


def slow_indices(t, alpha):
    """Frames of the slow pathway among the ``t`` fast frames: ``linspace(0, t-1, t // alpha)``
    truncated to integers, as PaddleVideo's PackOutput."""
    return np.linspace(0, t - 1, max(t // alpha, 1)).astype("int64")


class Stem(nn.Layer):
    """conv kT×7×7 (stride 1×2×2) → BN → ReLU → max-pool 1×3×3 stride 1×2×2."""

    def __init__(self, cin, cout, kt):
        super().__init__()
        self._conv = _conv3d(cin, cout, (kt, 7, 7), (1, 2, 2), (kt // 2, 3, 3))
        self._bn = _bn(cout)

    def forward(self, x):
        x = F.relu(self._bn(self._conv(x)))
        return F.max_pool3d(x, kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))


class Fuse(nn.Layer):
    """Fast → slow lateral connection: conv k×1×1 stride α×1×1 (2× the fast channels) → BN → ReLU,
    concatenated after the slow channels.  ``bn_relu=False`` (PaddleVideo's AVA backbone,
    ``fuse_bn_relu: 0``): the conv alone; the BN tensors still exist (the checkpoint has them) but are unused."""

    def __init__(self, cin, alpha, kernel, ratio=2, bn_relu=True):
        super().__init__()
        self._conv_f2s = _conv3d(cin, cin * ratio, (kernel, 1, 1), (alpha, 1, 1), (kernel // 2, 0, 0))
        self._bn = _bn(cin * ratio)
        self.bn_relu = bn_relu

    def forward(self, slow, fast):
        lateral = self._conv_f2s(fast)
        if self.bn_relu:
            lateral = F.relu(self._bn(lateral))
        return paddle.concat([slow, lateral], axis=1), fast


class Branch2(nn.Layer):
    """a: kT×1×1 → BN → ReLU, b: 1×3×3 (spatial stride) → BN → ReLU, c: 1×1×1 → BN."""

    def __init__(self, cin, cout, inner, kt, stride):
        super().__init__()
        self.a = _conv3d(cin, inner, (kt, 1, 1), 1, (kt // 2, 0, 0))
        self.a_bn = _bn(inner)
        self.b = _conv3d(inner, inner, (1, 3, 3), (1, stride, stride), (0, 1, 1))
        self.b_bn = _bn(inner)
        self.c = _conv3d(inner, cout, 1)
        self.c_bn = _bn(cout, zero=True)

    def forward(self, x):
        x = F.relu(self.a_bn(self.a(x)))
        x = F.relu(self.b_bn(self.b(x)))
        return self.c_bn(self.c(x))


class ResBlock3D(nn.Layer):
    """Bottleneck with a projection shortcut (``branch1``) when the shape changes."""

    def __init__(self, cin, cout, inner, kt, stride):
        super().__init__()
        if cin != cout or stride != 1:
            self.branch1 = _conv3d(cin, cout, 1, (1, stride, stride))
            self.branch1_bn = _bn(cout)
        else:
            self.branch1 = None
        self.branch2 = Branch2(cin, cout, inner, kt, stride)

    def forward(self, x):
        short = x if self.branch1 is None else self.branch1_bn(self.branch1(x))
        return F.relu(short + self.branch2(x))


class Stage(nn.Layer):
    """One res stage of both pathways: sublayers ``pathway{p}_res{i}``."""

    def __init__(self, cins, couts, inners, kts, stride, blocks):
        super().__init__()
        self.blocks = []
        for p in range(2):
            layers = []
            for i in range(blocks):
                layer = ResBlock3D(cins[p] if i == 0 else couts[p], couts[p], inners[p], kts[p], stride if i == 0 else 1)
                self.add_sublayer("pathway{}_res{}".format(p, i), layer)
                layers.append(layer)
            self.blocks.append(layers)

    def forward(self, slow, fast):
        for b in self.blocks[0]:
            slow = b(slow)
        for b in self.blocks[1]:
            fast = b(fast)
        return slow, fast


class SlowFastBackbone(nn.Layer):
    """The two pathways with lateral fusion after the stem and after s2, s3, s4.

    Options of the AVA detector's variant (PaddleVideo ``configs/detection/ava/ava.yaml``):
    ``fuse_bn_relu=False`` (lateral convs without BN/ReLU) and ``spatial_strides=(1, 2, 2, 1)`` (res5 keeps
    the resolution: output stride 16 instead of 32).  The fusion conv's temporal stride is α in both."""

    def __init__(self, depth=50, width=64, alpha=8, beta=8, fusion_kernel=5, blocks=None, fuse_bn_relu=True,
                 spatial_strides=(1, 2, 2, 2)):
        super().__init__()
        if DEPTHS[depth][0] != "bottleneck":
            raise ValueError("SlowFast needs a bottleneck depth (50 or 101)")
        counts = blocks or DEPTHS[depth][1]
        self.s1 = nn.Layer()
        self.s1.add_sublayer("pathway0_stem", Stem(3, width, TEMPORAL_KERNELS[0][0]))
        self.s1.add_sublayer("pathway1_stem", Stem(3, width // beta, TEMPORAL_KERNELS[0][1]))
        fast_out = width // beta
        self.s1_fuse = Fuse(fast_out, alpha, fusion_kernel, bn_relu=fuse_bn_relu)
        slow_in = width + 2 * fast_out
        self.stages, self.fuses = [], []
        for s, out in enumerate(stage_channels(depth, width)):
            inner = width * 2 ** s
            stage = Stage([slow_in, fast_out], [out, out // beta], [inner, inner // beta], TEMPORAL_KERNELS[s + 1],
                          spatial_strides[s], counts[s])
            self.add_sublayer("s{}".format(s + 2), stage)
            self.stages.append(stage)
            fast_out = out // beta
            if s < 3:
                fuse = Fuse(fast_out, alpha, fusion_kernel, bn_relu=fuse_bn_relu)
                self.add_sublayer("s{}_fuse".format(s + 2), fuse)
                self.fuses.append(fuse)
                slow_in = out + 2 * fast_out
        self.out_channels = (width * 32, width * 32 // beta)

    def forward(self, slow, fast):
        slow, fast = self.s1_fuse(self.s1.pathway0_stem(slow), self.s1.pathway1_stem(fast))
        for i, stage in enumerate(self.stages):
            slow, fast = stage(slow, fast)
            if i < 3:
                slow, fast = self.fuses[i](slow, fast)
        return slow, fast


class SlowFastHead(nn.Layer):
    """Average pools per pathway → concat → channels-last → dropout → ``projection`` (fc)."""

    def __init__(self, channels, num_classes, pool_sizes=None, dropout_ratio=0.5):
        super().__init__()
        self.pools = ([nn.AvgPool3D(k, stride=1) for k in pool_sizes] if pool_sizes
                      else [nn.AdaptiveAvgPool3D(1), nn.AdaptiveAvgPool3D(1)])
        self.dropout = nn.Dropout(dropout_ratio) if dropout_ratio > 0 else None
        self.projection = nn.Linear(sum(channels), num_classes,
                                    weight_attr=nn.initializer.Normal(0.0, 0.01), bias_attr=nn.initializer.Constant(0.0))

    def pooled(self, slow, fast):
        """``[N, t, h, w, C_slow + C_fast]``: the pathways' pooled features, channels last."""
        return paddle.concat([self.pools[0](slow), self.pools[1](fast)], axis=1).transpose([0, 2, 3, 4, 1])

    def forward(self, slow, fast):
        x = self.pooled(slow, fast)
        if self.dropout is not None:
            x = self.dropout(x)
        x = self.projection(x)                                          # [N, t, h, w, classes]
        if self.training:
            return x.reshape([x.shape[0], -1, x.shape[-1]]).mean(axis=1)
        prob = F.softmax(x, axis=-1).mean(axis=[1, 2, 3])              # the reference's eval output
        return paddle.log(paddle.clip(prob, min=1e-30))


class SlowFast(nn.Layer):
    """SlowFast-R50.

    Args:
        num_classes, depth (50), width (64), dropout_ratio (0.5), blocks (per stage; default the depth's)
        alpha: frame-rate ratio (8 for 4×16, 4 for 8×8); beta: channel ratio (8).
        fusion_kernel: temporal kernel of the lateral convs (5 for 4×16, 7 for 8×8).
        pool_size: ``[T, H, W]`` of the fast pathway's fixed average pool (the slow one uses T/α) —
            ``[32, 7, 7]`` as the 4×16 reference at 224 px; empty for global pooling (8×8).
    """

    def __init__(self, num_classes=400, depth=50, width=64, alpha=8, beta=8, fusion_kernel=5, pool_size=None,
                 dropout_ratio=0.5, blocks=None):
        super().__init__()
        self.alpha = alpha
        self.backbone = SlowFastBackbone(depth, width, alpha, beta, fusion_kernel, blocks)
        pools = None
        if pool_size:
            t, h, w = pool_size
            pools = [[max(t // alpha, 1), h, w], [t, h, w]]
        self.head = SlowFastHead(self.backbone.out_channels, num_classes, pools, dropout_ratio)

    def pathways(self, x):
        fast = x.transpose([0, 2, 1, 3, 4])                              # [N, 3, T, H, W]
        idx = paddle.to_tensor(slow_indices(x.shape[1], self.alpha))
        return self.backbone(paddle.gather(fast, idx, axis=2), fast)

    def forward(self, x):
        """x: ``[N, T, 3, H, W]`` fast-pathway frames → ``[N, num_classes]`` (see the module doc)."""
        return self.head(*self.pathways(x))

    def forward_features(self, x):
        """x: ``[N, T, 3, H, W]`` → the head's pooled feature averaged over positions ``[N, 2304]`` (R50)."""
        f = self.head.pooled(*self.pathways(x))
        return f.reshape([f.shape[0], -1, f.shape[-1]]).mean(axis=1)
