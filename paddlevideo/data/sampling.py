"""Segment sampling with the legacy PaddleVideo formulas (pure functions).

A clip of ``num_frames`` frames is cut into ``seg_num`` equal parts of ``avg = num_frames //
seg_num`` frames; from each part ``seglen`` consecutive frames are taken:

* train: ``start = randint(0, avg - seglen) + i*avg`` (random, both ends inclusive);
* test/valid/infer: ``start = (avg - seglen) // 2 + i*avg`` (centred);
* if ``avg < seglen``: ``start = i*avg``; if ``avg < 1``: ``start = i``;
* indices are taken modulo ``num_frames`` (short clips loop).

``sampling: dense`` (3-D models such as SlowFast) takes instead one clip of ``clip_len``
frames, ``interval`` apart: a random start in training, the centred one otherwise.
"""


def segment_indices(num_frames, seg_num, seglen, train, rng=None):
    """Frame indices, ``seg_num * seglen`` of them, segment-major.

    Args:
        num_frames: frames in the video (>= 1).
        train: random offsets (needs ``rng`` with ``integers(lo, hi_exclusive)``) or centred.
    """
    avg = num_frames // seg_num
    out = []
    for i in range(seg_num):
        if avg >= seglen:
            if train:
                start = int(rng.integers(0, avg - seglen + 1)) + i * avg
            else:
                start = (avg - seglen) // 2 + i * avg
        elif avg >= 1:
            start = i * avg
        else:
            start = i
        out.extend((start + j) % num_frames for j in range(seglen))
    return out


def dense_indices(num_frames, clip_len, interval, train, rng=None):
    """``clip_len`` frame indices ``start, start + interval, ...``; the clip spans
    ``(clip_len - 1) * interval + 1`` frames, starting at random in ``[0, num_frames - span]`` in
    training and at ``(num_frames - span) // 2`` otherwise (0 when the video is shorter; indices
    are then taken modulo ``num_frames``, so short clips loop)."""
    span = (clip_len - 1) * interval + 1
    room = max(num_frames - span, 0)
    start = int(rng.integers(0, room + 1)) if train else room // 2
    return [(start + i * interval) % num_frames for i in range(clip_len)]
