"""StNet (He et al., AAAI 2019): super-images, temporal modelling blocks, temporal Xception.

A clip is ``seg_num`` segments of ``seglen`` consecutive frames; the frames of a segment are
stacked on the channel axis frame-major (``[f0R f0G f0B f1R ...]``) into one "super-image".

Shapes (T = seg_num, C_in = 3*seglen):
  input ``[N, T, C_in, H, W]`` → ``[N*T, C_in, H, W]`` → ResNet trunk with conv1
  ``[64, C_in, 7, 7]`` and a :class:`TemporalBlock` after res3 (512 ch) and res4 (1024 ch)
  → ``[N*T, 2048, h, w]`` → global average pool → ``[N, 2048, T, 1]`` → :class:`TemporalXception`
  → ``[N, 1024, T, 1]`` → max over T → ``[N, 1024]`` → fc → logits ``[N, num_classes]``.

T may differ between training and testing (7 vs 25 segments) with the same weights.
"""
import numpy as np
import paddle.nn as nn
import paddle.nn.functional as F

from .resnet import ResNet, init_fc, stage_channels


class TemporalBlock(nn.Layer):
    """conv3d (3,1,1) over time with bias + ReLU → BN → + input.

    ``[N*T, C, h, w]`` → ``[N, C, T, h, w]`` (convolved) → ``[N*T, C, h, w]``.
    """

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv3D(channels, channels, (3, 1, 1), padding=(1, 0, 0),
                              weight_attr=nn.initializer.KaimingNormal(),
                              bias_attr=nn.initializer.Constant(0.0))
        self.bn = nn.BatchNorm3D(channels)

    def forward(self, x, num_segments):
        c, h, w = x.shape[1], x.shape[2], x.shape[3]
        y = x.reshape([-1, num_segments, c, h, w]).transpose([0, 2, 1, 3, 4])    # [N, C, T, h, w]
        y = y + self.bn(F.relu(self.conv(y)))
        return y.transpose([0, 2, 1, 3, 4]).reshape([-1, c, h, w])


def _conv(cin, cout, k, groups=1):
    pad = (1, 0) if k == (3, 1) else 0
    return nn.Conv2D(cin, cout, k, padding=pad, groups=groups,
                     weight_attr=nn.initializer.KaimingNormal(), bias_attr=nn.initializer.Constant(0.0))


class TemporalXception(nn.Layer):
    """Temporal Xception head on ``[N, 2048, T, 1]`` → ``[N, 1024, T, 1]``.

    BN → (A) depthwise (3,1) → 1×1 → BN+ReLU → depthwise (3,1) → 1×1, (B) 1×1; A + B → BN → ReLU.
    Layer names follow the legacy parameters (xception_bn, xception_att_conv, ...).
    """

    def __init__(self, cin=2048, cout=1024):
        super().__init__()
        self.bn = nn.BatchNorm2D(cin)
        self.att_conv = _conv(cin, cin, (3, 1), groups=cin)
        self.att_2 = _conv(cin, cout, 1)
        self.bndw = nn.BatchNorm2D(cout)
        self.att1 = _conv(cout, cout, (3, 1), groups=cout)
        self.att1_2 = _conv(cout, cout, 1)
        self.dw = _conv(cin, cout, 1)
        self.bn2 = nn.BatchNorm2D(cout)

    def forward(self, x):
        x = self.bn(x)
        a = self.att1_2(self.att1(F.relu(self.bndw(self.att_2(self.att_conv(x))))))
        return F.relu(self.bn2(a + self.dw(x)))


class StNet(nn.Layer):
    """StNet with a ResNet trunk (depth 50 in the paper; any trunk depth with ≥ 3 stages works)."""

    def __init__(self, num_classes=400, depth=50, seglen=5, **trunk):
        """``trunk``: ResNet options (stem, width, blocks)."""
        super().__init__()
        self.seglen = seglen
        channels = stage_channels(depth, trunk.get("width", 64))
        self.backbone = ResNet(depth, in_channels=3 * seglen, after_stage={
            3: TemporalBlock(channels[1]), 4: TemporalBlock(channels[2])}, **trunk)
        c = self.backbone.out_channels
        self.xception = TemporalXception(c, c // 2)
        self.fc = nn.Linear(c // 2, num_classes)
        init_fc(self.fc)

    def forward(self, x):
        """x: ``[N, T, 3*seglen, H, W]`` → logits ``[N, num_classes]``."""
        return self.fc(self.forward_features(x))

    def forward_features(self, x):
        """x: ``[N, T, 3*seglen, H, W]`` → the pre-classifier feature ``[N, C/2]`` (1024 for R50)."""
        t = x.shape[1]
        feat = self.backbone(x.reshape([-1] + list(x.shape[2:])), t)        # [N*T, C, h, w]
        feat = F.adaptive_avg_pool2d(feat, 1).reshape([-1, t, feat.shape[1]])  # [N, T, C]
        feat = feat.transpose([0, 2, 1]).unsqueeze(-1)                      # [N, C, T, 1]
        return self.xception(feat).max(axis=2).flatten(1)                   # [N, C/2]

    def adapt_state(self, state):
        """Let 2D weights initialise StNet: inflate a ``[64, 3, 7, 7]`` conv1 to ``3*seglen``
        input channels (legacy rule) and report the StNet-only layers that stay fresh.

        Returns ``(state, fresh)``: the adapted dict and the names allowed to be missing from it.
        """
        key = "backbone.conv1.conv.weight"
        w = state.get(key)
        if w is None or w.shape[1] == 3 * self.seglen:
            return state, set()
        state = dict(state)
        state[key] = inflate_conv1(np.asarray(w), self.seglen)
        fresh = {k for k in self.state_dict()
                 if k.startswith(("backbone.temporal", "xception.")) and k not in state}
        return state, fresh


def inflate_conv1(w, seglen):
    """Legacy StNet rule: ``[64, 3, k, k]`` → mean over RGB, / seglen, repeated ``3*seglen`` times.

    For a segment whose seglen frames are identical and grey (R = G = B), the inflated conv gives
    exactly the 2D conv's response on one frame; for colour frames it gives the response of the
    2D conv with RGB-averaged kernels.
    """
    m = w.mean(axis=1, keepdims=True) / seglen
    return np.repeat(m, 3 * seglen, axis=1).astype(w.dtype)
