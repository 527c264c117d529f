"""TSN and TSM: a 2D ResNet over the sampled frames, averaged over segments.

TSM (Lin et al., 2019) adds a residual temporal shift of 1/8 of the channels in every block;
TSN (Wang et al., 2016) is the same network without the shift.

Shapes: input ``[N, T, 3, H, W]`` (seglen 1) → trunk ``[N*T, C, h, w]`` → pooled ``[N*T, C]``
→ dropout → mean over T ``[N, C]`` → fc → logits ``[N, num_classes]``.
"""
import paddle.nn as nn
import paddle.nn.functional as F

from .resnet import ResNet, init_fc


class TSN(nn.Layer):
    """Temporal Segment Network with a ResNet trunk.

    Args:
        num_classes, depth, seglen: from the config (seglen frames per segment are stacked on
            the channel axis, so the trunk sees ``3*seglen`` input channels).
        dropout_ratio: dropout on per-frame features (Paddle's upscale-in-train semantics).
        shift_ratio: temporal shift per block (0 for TSN).
        shift_mode (keyword, TSM): "bidirectional" (offline) or "online" (past-only: frame t never sees a later
            frame; the clip logits are the mean of per-frame logits, so it can run one frame at a time).
        zero_init_residual, stem, width, blocks: trunk options, see :class:`ResNet`.
    """
    shift_ratio = 0.0

    def __init__(self, num_classes=400, depth=50, seglen=1, dropout_ratio=0.5, shift_ratio=None,
                 zero_init_residual=False, **trunk):
        super().__init__()
        ratio = self.shift_ratio if shift_ratio is None else shift_ratio
        self.backbone = ResNet(depth, in_channels=3 * seglen, shift_ratio=ratio, zero_init_residual=zero_init_residual,
                               **trunk)
        self.dropout = nn.Dropout(dropout_ratio) if dropout_ratio > 0 else None
        self.fc = nn.Linear(self.backbone.out_channels, num_classes)
        init_fc(self.fc)

    def forward(self, x):
        """x: ``[N, T, 3*seglen, H, W]`` float32 → logits ``[N, num_classes]``."""
        return self.fc(self.forward_features(x))

    def forward_features(self, x):
        """x: ``[N, T, 3*seglen, H, W]`` → the pooled pre-classifier feature ``[N, C]`` (2048 for R50)."""
        t = x.shape[1]
        feat = self.backbone(x.reshape([-1] + list(x.shape[2:])), t)      # [N*T, C, h, w]
        feat = F.adaptive_avg_pool2d(feat, 1).flatten(1)                   # [N*T, C]
        if self.dropout is not None:
            feat = self.dropout(feat)
        return feat.reshape([-1, t, feat.shape[-1]]).mean(axis=1)          # [N, C]

    def forward_frames(self, x):
        """x: ``[N, T, 3*seglen, H, W]`` → per-frame logits ``[N, T, num_classes]`` (eval mode: their mean over T is
        :meth:`forward`'s output, the fc being linear).  With ``shift_mode: online`` frame t's logits depend on
        frames 0..t only — what a streaming recognizer produces one frame at a time."""
        t = x.shape[1]
        feat = F.adaptive_avg_pool2d(self.backbone(x.reshape([-1] + list(x.shape[2:])), t), 1).flatten(1)
        return self.fc(feat).reshape([-1, t, self.fc.weight.shape[1]])


class TSM(TSN):
    """Temporal Shift Module network: TSN with a residual shift of ``shift_ratio`` (1/8)."""
    shift_ratio = 0.125
