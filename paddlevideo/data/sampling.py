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


def clip_windows(num_frames, num_clips):
    """``num_clips`` temporal windows ``(start, length)`` spread uniformly over the video: window k
    covers frames ``[k*n // num_clips, (k+1)*n // num_clips)`` (at least one frame each; with
    ``num_clips = 1`` the whole video)."""
    out = []
    for k in range(num_clips):
        lo = k * num_frames // num_clips
        hi = (k + 1) * num_frames // num_clips
        lo = min(lo, num_frames - 1)
        out.append((lo, max(hi - lo, 1)))
    return out


def multiview_indices(num_frames, num_clips, sampling, seg_num, seglen, interval=1):
    """Test-time indices of ``num_clips`` clips: ``[num_clips][seg_num * seglen]``.

    Each clip is sampled inside its window (:func:`clip_windows`) with the model's own test rule:
    ``segments`` → :func:`segment_indices` over the window; ``dense`` → a clip of ``seg_num*seglen``
    frames ``interval`` apart centred on the window's centre, kept inside the video.  With one clip
    both equal the single-view test indices."""
    out = []
    for lo, length in clip_windows(num_frames, num_clips):
        if sampling == "dense":
            clip_len = seg_num * seglen
            span = (clip_len - 1) * interval + 1
            start = lo + (length - span) // 2
            start = max(0, min(start, num_frames - span))
            out.append([(start + i * interval) % num_frames for i in range(clip_len)])
        else:
            out.append([lo + i for i in segment_indices(length, seg_num, seglen, train=False)])
    return out


def clip_indices(num_frames, m, train=False, rng=None):
    """One clip's indices under the settings ``m`` (``Config.mode(...)``): ``dense`` sampling (a clip of
    ``seg_num*seglen`` frames ``frame_interval`` apart) or segments (:func:`segment_indices`)."""
    if m.sampling == "dense":
        return dense_indices(num_frames, m.seg_num * m.seglen, m.frame_interval, train, rng)
    return segment_indices(num_frames, m.seg_num, m.seglen, train, rng)
