"""Spatio-temporal action detection (AVA): a SlowFast trunk + a Fast R-CNN-style RoI head.

Laid out as PaddleVideo's ``FastRCNN`` (``configs/detection/ava/ava.yaml``) so that its released
``SlowFastRCNN_AVA.pdparams`` loads key for key: ``backbone.*`` (the SlowFast trunk of
:mod:`.slowfast` with ``fuse_bn_relu=False`` and res5 spatial stride 1 — output stride 16) and
``roi_head.bbox_head.fc_cls.{weight,bias}``.  There is no RPN: person boxes are an input.

Shapes (R boxes over the N clips of a batch; R50: C = 2048 + 256):
  clip ``[N, T, 3, H, W]`` (the fast pathway's frames; the slow one takes ``linspace(0, T-1, T/α)``)
  → trunk: slow ``[N, 2048, T/α, H/16, W/16]``, fast ``[N, 256, T, H/16, W/16]``
  → temporal mean per pathway, concat slow first ``[N, C, H/16, W/16]``
  → RoIAlign (output 8×8, scale 1/16, adaptive sampling ``ceil(roi/8)``, aligned) on ``boxes [R, 4]``
    (x1, y1, x2, y2 in pixels of the clip's frames; ``boxes_num [N]`` int32 boxes per clip) ``[R, C, 8, 8]``
  → dropout → spatial max ``[R, C]`` (zero-area boxes: 0) → ``fc_cls`` → logits ``[R, num_classes]``
  (column 0 is AVA's unused background slot; scores = sigmoid).

Training target (:meth:`SlowFastAVA.loss`): multi-hot ``[R, num_classes]``; binary cross-entropy with
logits over classes 1.. on the RoIs that carry at least one label (unlabelled proposals are not in the
loss), as the reference.
"""
import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.vision.ops import roi_align

from .slowfast import SlowFastBackbone, slow_indices

AVA_SPATIAL_STRIDES = (1, 2, 2, 1)


class BBoxHeadAVA(nn.Layer):
    """dropout → spatial max → ``fc_cls`` (N(0, 0.01), bias 0); zero-area RoIs give the bias."""

    def __init__(self, in_channels, num_classes, dropout_ratio=0.5):
        super().__init__()
        self.dropout = nn.Dropout(dropout_ratio) if dropout_ratio > 0 else None
        self.fc_cls = nn.Linear(in_channels, num_classes, weight_attr=nn.initializer.Normal(0.0, 0.01),
                                bias_attr=nn.initializer.Constant(0.0))

    @staticmethod
    def pooled(rois, boxes):
        """Spatial max of ``rois [R, C, 8, 8]`` → ``[R, C]``; 0 for the zero-area ``boxes`` (Paddle's roi_align gives
        NaN there).  (``F.adaptive_max_pool2d``: ``Tensor.max``'s backward is ~100× slower on CPU.)"""
        x = F.adaptive_max_pool2d(rois, 1).flatten(1)
        valid = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) > 0).unsqueeze(1)
        return paddle.where(valid, x, paddle.zeros_like(x))

    def forward(self, rois, boxes):
        """rois ``[R, C, 8, 8]`` of ``boxes [R, 4]`` → logits ``[R, num_classes]``."""
        if self.dropout is not None:
            rois = self.dropout(rois)
        return self.fc_cls(self.pooled(rois, boxes))


class AVARoIHead(nn.Layer):
    """Temporal mean per pathway → concat (slow first) → RoIAlign → :class:`BBoxHeadAVA`."""

    def __init__(self, in_channels, num_classes, dropout_ratio=0.5, output_size=8, spatial_scale=1.0 / 16):
        super().__init__()
        self.output_size, self.spatial_scale = output_size, spatial_scale
        self.bbox_head = BBoxHeadAVA(in_channels, num_classes, dropout_ratio)

    def features(self, slow, fast, boxes, boxes_num):
        """``[R, C, 8, 8]`` RoI features of ``boxes`` on the temporally pooled trunk output."""
        fmap = paddle.concat([slow.mean(axis=2), fast.mean(axis=2)], axis=1)     # [N, C, h, w]
        return roi_align(fmap, boxes, boxes_num, self.output_size, spatial_scale=self.spatial_scale,
                         sampling_ratio=0, aligned=True)

    def forward(self, slow, fast, boxes, boxes_num):
        return self.bbox_head(self.features(slow, fast, boxes, boxes_num), boxes)


class SlowFastAVA(nn.Layer):
    """SlowFast-R50 8×8 + RoI head (see the module doc).

    Args: num_classes (81 for AVA: ids 1..80, column 0 unused), depth, width, alpha (4), beta (8),
    fusion_kernel (5 in PaddleVideo's AVA config), dropout_ratio (0.5), blocks (per stage).
    """
    task = "detection"
    onnx_opset = 16      # ONNX RoiAlign has its aligned (half_pixel) mode from opset 16

    def __init__(self, num_classes=81, depth=50, width=64, alpha=4, beta=8, fusion_kernel=5, dropout_ratio=0.5,
                 blocks=None):
        super().__init__()
        self.alpha = alpha
        self.backbone = SlowFastBackbone(depth, width, alpha, beta, fusion_kernel, blocks, fuse_bn_relu=False,
                                         spatial_strides=AVA_SPATIAL_STRIDES)
        self.roi_head = AVARoIHead(sum(self.backbone.out_channels), num_classes, dropout_ratio)

    def pathways(self, clip):
        fast = clip.transpose([0, 2, 1, 3, 4])                              # [N, 3, T, H, W]
        idx = paddle.to_tensor(slow_indices(clip.shape[1], self.alpha))
        return self.backbone(paddle.gather(fast, idx, axis=2), fast)

    def forward(self, clip, boxes, boxes_num):
        """clip ``[N, T, 3, H, W]``, boxes ``[R, 4]`` float32 pixels, boxes_num ``[N]`` int32 → ``[R, num_classes]``."""
        slow, fast = self.pathways(clip)
        return self.roi_head(slow, fast, boxes, boxes_num)

    def forward_features(self, clip, boxes, boxes_num):
        """The fc's input per box ``[R, C]`` (spatially max-pooled RoI features)."""
        slow, fast = self.pathways(clip)
        return self.roi_head.bbox_head.pooled(self.roi_head.features(slow, fast, boxes, boxes_num), boxes)

    @staticmethod
    def loss(logits, targets):
        """BCE with logits over classes 1.. on the RoIs with a label (``targets [R, num_classes]`` multi-hot);
        the mean over those RoIs' elements; 0 (keeping the graph) when no RoI has a label."""
        t = targets[:, 1:]
        pos = paddle.nonzero(t.sum(axis=1) > 0).flatten()
        if pos.shape[0] == 0:
            return logits.sum() * 0.0
        return F.binary_cross_entropy_with_logits(paddle.gather(logits[:, 1:], pos), paddle.gather(t, pos))

    def adapt_state(self, state):
        """Fine-tuning from a Kinetics SlowFast file: its classifier (``head.*``) and lateral kernels of
        another temporal size (the K400 8×8 model's 7 vs AVA's 5) are left out; the model keeps its own
        fresh ones.  Returns ``(state, names kept fresh)``; what was dropped is printed by the loader."""
        own = self.state_dict()
        fresh, kept = set(), {}
        for k, v in state.items():
            if k.startswith("head."):
                continue
            if k in own and tuple(np.shape(v)) != tuple(own[k].shape) and "_fuse." in k:
                fresh.add(k)
                continue
            kept[k] = v
        if not any(k.startswith("roi_head.") for k in kept) and any(k.startswith("backbone.") for k in kept):
            fresh.update(k for k in own if k.startswith("roi_head."))
        self.adapted = sorted(fresh) + sorted(k for k in state if k.startswith("head."))
        return kept, fresh

    def adapt_note(self, path, fresh):
        """The one line the loader prints after :meth:`adapt_state` left tensors fresh."""
        dropped = [k for k in self.adapted if k.startswith("head.")]
        shaped = sorted(k for k in fresh if "_fuse." in k)
        parts = ["took the SlowFast backbone of {}".format(path)]
        if dropped:
            parts.append("skipped its classifier ({})".format(", ".join(dropped)))
        if shaped:
            parts.append("skipped {} lateral kernels of another temporal size ({}) and kept fresh ones".format(
                len(shaped), ", ".join(shaped)))
        if any(k.startswith("roi_head.") for k in fresh):
            parts.append("the RoI head starts fresh")
        return "info: " + "; ".join(parts)
