"""Clip transforms on ``[K, H, W, 3]`` uint8 RGB frames (the same geometry for every frame).

train: short-side scale → TSM multi-scale crop (resized to ``short_size`` square; ``multi_scale_crop:
false`` skips it) → random crop ``target_size`` → horizontal flip (p=0.5, whole clip; ``flip: false`` turns it off for
direction-sensitive classes) → normalise.
test/valid/infer: short-side scale → centre crop ``target_size`` → normalise.
The result is packed to ``[seg_num, 3*seglen, H, W]`` float32, frame-major channels
``[f0R f0G f0B f1R ...]`` within a segment.
"""
import cv2
import numpy as np

MS_SCALES = (1.0, 0.875, 0.75, 0.66)


def resize_frames(frames, w, h):
    if frames.shape[1] == h and frames.shape[2] == w:
        return frames
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in frames])


def scale_short_side(frames, short_size, fixed_ratio=False):
    """Resize so that the shorter side is ``short_size``, keeping the aspect ratio; ``fixed_ratio``: the long side
    becomes ``int(short_size · 4/3)`` whatever the input's ratio (PaddleVideo's ``Scale(fixed_ratio=True)``, the
    PP-TSM test-time rule: 256 → 341 × 256)."""
    h, w = frames.shape[1:3]
    if min(h, w) == short_size:                   # PaddleVideo's Scale leaves these alone, fixed_ratio or not
        return frames
    if fixed_ratio:
        long_side = int(short_size * 4.0 / 3.0)
        return resize_frames(frames, *((short_size, long_side) if w <= h else (long_side, short_size)))
    if w <= h:
        nw, nh = short_size, int(round(h * short_size / w))
    else:
        nh, nw = short_size, int(round(w * short_size / h))
    return resize_frames(frames, nw, nh)


def multi_scale_crop_box(h, w, out_size, rng, scales=MS_SCALES, max_distort=1):
    """TSN/TSM multi-scale crop: a (x, y, cw, ch) box from 4 scales × 13 fixed offsets."""
    base = min(h, w)
    sizes = [int(base * s) for s in scales]
    crop_h = [out_size if abs(s - out_size) < 3 else s for s in sizes]
    crop_w = [out_size if abs(s - out_size) < 3 else s for s in sizes]
    pairs = [(cw, ch) for i, ch in enumerate(crop_h) for j, cw in enumerate(crop_w)
             if abs(i - j) <= max_distort]
    cw, ch = pairs[int(rng.integers(len(pairs)))]
    ws, hs = (w - cw) // 4, (h - ch) // 4
    offsets = [(0, 0)]
    if ws:
        offsets.append((4 * ws, 0))
    if hs:
        offsets.append((0, 4 * hs))
    if ws and hs:
        offsets.append((4 * ws, 4 * hs))
    if ws or hs:
        offsets.append((2 * ws, 2 * hs))
    offsets += [(0, 2 * hs), (4 * ws, 2 * hs), (2 * ws, 4 * hs), (2 * ws, 0),
                (ws, hs), (3 * ws, hs), (ws, 3 * hs), (3 * ws, 3 * hs)]
    x, y = offsets[int(rng.integers(len(offsets)))]
    return x, y, cw, ch


def crop(frames, x, y, cw, ch):
    return frames[:, y:y + ch, x:x + cw]


def random_crop(frames, size, rng):
    h, w = frames.shape[1:3]
    x = int(rng.integers(0, w - size + 1))
    y = int(rng.integers(0, h - size + 1))
    return crop(frames, x, y, size, size)


def center_crop(frames, size):
    h, w = frames.shape[1:3]
    return crop(frames, int(round((w - size) / 2.0)), int(round((h - size) / 2.0)), size, size)


def normalize_pack(frames, seg_num, seglen, mean, std):
    """``[seg_num*seglen, H, W, C]`` uint8 (C = 3 RGB, 2 flow) → ``[seg_num, C*seglen, H, W]`` float32, normalised."""
    k, h, w, c = frames.shape
    x = frames.astype(np.float32) * (1.0 / 255.0)
    x -= np.asarray(mean, np.float32)
    x /= np.asarray(std, np.float32)
    x = x.reshape(seg_num, seglen, h, w, c).transpose(0, 1, 4, 2, 3)
    return np.ascontiguousarray(x.reshape(seg_num, seglen * c, h, w))


def crop_boxes(h, w, size, num_crops):
    """Test-time crops ``[(x, y, flip)]`` of ``size``² in an ``h``×``w`` frame.

    1: the centre; 3: left/centre/right along a landscape frame's long side (top/centre/bottom for a
    portrait one), centred on the short side — PaddleVideo's and mmaction2's ThreeCrop; 10: the four
    corners and the centre, then the same five flipped horizontally — mmaction2's TenCrop."""
    cx, cy = int(round((w - size) / 2.0)), int(round((h - size) / 2.0))
    if num_crops == 1:
        return [(cx, cy, False)]
    if num_crops == 3:
        if w >= h:
            return [(0, cy, False), (cx, cy, False), (w - size, cy, False)]
        return [(cx, 0, False), (cx, cy, False), (cx, h - size, False)]
    if num_crops == 10:
        five = [(0, 0), (w - size, 0), (0, h - size), (w - size, h - size), (cx, cy)]
        return [(x, y, False) for x, y in five] + [(x, y, True) for x, y in five]
    raise ValueError("num_crops must be 1, 3 or 10 (got {})".format(num_crops))


def hflip(frames, fmt):
    """Mirror a clip left-right; a mirrored flow field points the other way in x."""
    frames = frames[:, :, ::-1]
    if fmt in ("flow", "rgb_flow"):
        x = 0 if fmt == "flow" else 3
        frames = frames.copy()
        frames[..., x] = 255 - frames[..., x]
    return frames


def test_views(frames, cfg):
    """Every crop of ``TEST.num_crops`` of one clip: ``[num_crops, seg_num, C*seglen, H, W]`` float32."""
    frames = scale_short_side(frames, cfg.short_size, cfg.fixed_ratio)
    h, w = frames.shape[1:3]
    out = []
    for x, y, flip in crop_boxes(h, w, cfg.target_size, cfg.num_crops):
        view = crop(frames, x, y, cfg.target_size, cfg.target_size)
        if flip:
            view = hflip(view, cfg.format)
        out.append(normalize_pack(view, cfg.seg_num, cfg.seglen, cfg.image_mean, cfg.image_std))
    return np.stack(out)


def transform_clip(frames, cfg, train, rng=None):
    """Apply the mode's transforms and pack.  ``cfg`` is ``Config.mode(...)``.

    In training ``scale_jitter: [lo, hi]`` scales the short side to a random size in ``[lo, hi]``
    (SlowFast: 256..320) instead of ``short_size``."""
    jitter = cfg.scale_jitter if train else None
    frames = scale_short_side(frames, int(rng.integers(jitter[0], jitter[1] + 1)) if jitter else cfg.short_size,
                              cfg.fixed_ratio)
    if train:
        if cfg.multi_scale_crop:
            h, w = frames.shape[1:3]
            frames = crop(frames, *multi_scale_crop_box(h, w, cfg.short_size, rng))
            frames = resize_frames(frames, cfg.short_size, cfg.short_size)
        frames = random_crop(frames, cfg.target_size, rng)
        if cfg.flip and rng.random() < 0.5:
            frames = hflip(frames, cfg.format)
    else:
        frames = center_crop(frames, cfg.target_size)
    return normalize_pack(frames, cfg.seg_num, cfg.seglen, cfg.image_mean, cfg.image_std)
