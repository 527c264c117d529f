"""TSM on a MobileNetV2 trunk, laid out as PaddleVideo's PP-TSM MobileNetV2 (``PPTSM_MobileNetV2``).

Names are the released ``ppTSM_mv2_k400.pdparams`` keys, so it loads key for key: ``backbone.conv1`` (3×3/2 conv
3→32), stages ``backbone.conv2 … conv8`` (first block ``convK._first_block``, the others ``convK.convK_i``), each
block ``_expand_conv`` (1×1) → ``_bottleneck_conv`` (3×3 depthwise) → ``_linear_conv`` (1×1, no activation), each a
``_conv`` + ``_batch_norm`` (eps 1e-5) with ReLU6; ``backbone.conv9`` 1×1 320→1280; ``backbone.out`` the classifier
(inside the backbone, as in PaddleVideo; no dropout).  (t, c, n, s) = (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2)
(6,96,3,1) (6,160,3,2) (6,320,1,1); unlike torchvision the t = 1 block also has its 1×1 expand conv.

The temporal shift sits where PaddleVideo (and the TSM authors' online demo) put it: on the input of the residual
branch of the 10 blocks with a shortcut (every non-first block of a stage), ratio 1/8, the shortcut adding the
unshifted input; ``shift_mode: online`` takes 1/8 of the channels from the previous frame only.

Shapes: ``[N, T, 3, H, W]`` → trunk ``[N*T, 1280, H/32, W/32]`` → spatial mean ``[N*T, 1280]`` → mean over T →
``backbone.out`` → ``[N, num_classes]``.
"""
import paddle.nn as nn
import paddle.nn.functional as F

from .resnet import shift_input

# (expansion t, output channels c, blocks n, first stride s) of stages conv2..conv8
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
            (6, 320, 1, 1))


class ConvBN(nn.Layer):
    """``_conv`` (no bias) → ``_batch_norm`` → ReLU6 (unless ``act`` is False)."""

    def __init__(self, cin, cout, k, stride=1, groups=1, act=True):
        super().__init__()
        self._conv = nn.Conv2D(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias_attr=False,
                               weight_attr=nn.initializer.KaimingNormal())
        self._batch_norm = nn.BatchNorm2D(cout, epsilon=1e-5)
        self.act = act

    def forward(self, x):
        x = self._batch_norm(self._conv(x))
        return F.relu6(x) if self.act else x


class InvertedResidual(nn.Layer):
    """1×1 expand → 3×3 depthwise (stride) → 1×1 linear; with a shortcut (stride 1, same channels) the input of the
    branch is temporally shifted and the unshifted input is added back."""
    shift_impl = "op"
    shift_online = False
    stream = None

    def __init__(self, cin, cout, t, stride, shortcut, shift_ratio):
        super().__init__()
        mid = int(round(cin * t))
        self._expand_conv = ConvBN(cin, mid, 1)
        self._bottleneck_conv = ConvBN(mid, mid, 3, stride, groups=mid)
        self._linear_conv = ConvBN(mid, cout, 1, act=False)
        self.shortcut, self.shift_ratio = shortcut, shift_ratio

    def forward(self, x, num_segments):
        y = x
        if self.shortcut and self.shift_ratio:
            y = shift_input(self, x, num_segments)
        y = self._linear_conv(self._bottleneck_conv(self._expand_conv(y)))
        return x + y if self.shortcut else y


class Stage(nn.Layer):
    """``_first_block`` then ``convK_2 …`` (shortcut blocks)."""

    def __init__(self, name, cin, t, c, n, s, shift_ratio):
        super().__init__()
        self._first_block = InvertedResidual(cin, c, t, s, False, shift_ratio)
        self.rest = []
        for i in range(1, n):
            block = InvertedResidual(c, c, t, 1, True, shift_ratio)
            self.add_sublayer("{}_{}".format(name, i + 1), block)
            self.rest.append(block)

    def forward(self, x, num_segments):
        x = self._first_block(x, num_segments)
        for block in self.rest:
            x = block(x, num_segments)
        return x


class MobileNetV2Backbone(nn.Layer):
    """conv1 → conv2..conv8 → conv9 (1280) and the classifier ``out``, PaddleVideo's names."""

    def __init__(self, num_classes, shift_ratio=0.125, shift_mode="bidirectional"):
        super().__init__()
        self.conv1 = ConvBN(3, 32, 3, 2)
        self.stages, cin = [], 32
        for i, (t, c, n, s) in enumerate(SETTINGS):
            name = "conv{}".format(i + 2)
            stage = Stage(name, cin, t, c, n, s, shift_ratio)
            self.add_sublayer(name, stage)
            self.stages.append(stage)
            cin = c
        self.conv9 = ConvBN(cin, 1280, 1)
        self.out = nn.Linear(1280, num_classes)
        for layer in self.sublayers():
            if isinstance(layer, InvertedResidual):
                layer.shift_online = shift_mode == "online"

    def frame_features(self, x, num_segments):
        """``[N*T, 3, H, W]`` → pooled per-frame features ``[N*T, 1280]``."""
        x = self.conv1(x)
        for stage in self.stages:
            x = stage(x, num_segments)
        return F.adaptive_avg_pool2d(self.conv9(x), 1).flatten(1)


class TSMMobileNetV2(nn.Layer):
    """PP-TSM MobileNetV2 (``MODEL.name: TSM``, ``MODEL.backbone: mobilenet_v2``)."""

    def __init__(self, num_classes=400, shift_ratio=0.125, shift_mode="bidirectional"):
        super().__init__()
        self.backbone = MobileNetV2Backbone(num_classes, shift_ratio, shift_mode)

    def _frames(self, x):
        t = x.shape[1]
        return self.backbone.frame_features(x.reshape([-1] + list(x.shape[2:])), t), t

    def forward_features(self, x):
        """``[N, T, 3, H, W]`` → the clip feature ``[N, 1280]`` (the mean over frames)."""
        feat, t = self._frames(x)
        return feat.reshape([-1, t, feat.shape[-1]]).mean(axis=1)

    def forward(self, x):
        """``[N, T, 3, H, W]`` → logits ``[N, num_classes]``."""
        return self.backbone.out(self.forward_features(x))

    def forward_frames(self, x):
        """``[N, T, 3, H, W]`` → per-frame logits ``[N, T, num_classes]`` (their mean is :meth:`forward`)."""
        feat, t = self._frames(x)
        out = self.backbone.out(feat)
        return out.reshape([-1, t, out.shape[-1]])

