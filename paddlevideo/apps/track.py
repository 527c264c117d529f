"""Multi-object tracking of person boxes across keyframes: ByteTrack's two-stage association with a Kalman motion
model, in NumPy.

Why our own ~150 lines rather than a package: the maintained trackers on PyPI either pull a deep-learning stack
(``boxmot``: PyTorch) or compiled assignment solvers (``lap``/``lapx``, ``cython-bbox``); the few persons of a camera
view need neither.  Matching is greedy by IoU (highest first): with tens of boxes it gives the same pairs as the
Hungarian/lapjv solution except in rare ties of crossing tracks.

Per update (one keyframe, ByteTrack's steps, ``ifzhang/ByteTrack`` ``byte_tracker.py``):

1. every track's box is predicted by its Kalman filter (state: centre x, y, aspect w/h, height + velocities);
2. confirmed and lost tracks take the high-score boxes (score >= ``track_thresh``) at IoU >= ``match_iou``;
3. confirmed tracks still unmatched take the low-score boxes (0.1 <= score < ``track_thresh``) at IoU >= 0.5;
4. tentative tracks take the leftover high boxes (IoU >= ``match_iou``) or are dropped;
5. a leftover high box with score >= ``new_track_thresh`` starts a tentative track; a track is confirmed (gets an id
   the user sees, ``track_id``) after ``min_hits`` consecutive hits and ends after ``max_misses`` keyframes
   without a box (``ended`` lists it once).
"""
import numpy as np


def iou_matrix(a, b):
    """IoU of ``[n, 4]`` and ``[m, 4]`` pixel boxes (x1, y1, x2, y2) → ``[n, m]``."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def greedy_match(iou, threshold):
    """``[(row, col)]`` pairs, highest IoU first, each row and column once, IoU >= ``threshold``."""
    pairs, used_r, used_c = [], set(), set()
    if iou.size == 0:
        return pairs
    for flat in np.argsort(-iou, axis=None):
        r, c = divmod(int(flat), iou.shape[1])
        if iou[r, c] < threshold:
            break
        if r not in used_r and c not in used_c:
            pairs.append((r, c))
            used_r.add(r)
            used_c.add(c)
    return pairs


class KalmanBox:
    """Constant-velocity Kalman filter on (cx, cy, a, h) with ByteTrack's noise weights (1/20 position, 1/160
    velocity, relative to the height)."""

    def __init__(self, box):
        self.x = np.r_[_xyah(box), np.zeros(4)]
        h = self.x[3]
        std = np.array([2 * h / 20, 2 * h / 20, 1e-2, 2 * h / 20, 10 * h / 160, 10 * h / 160, 1e-5, 10 * h / 160])
        self.P = np.diag(std ** 2)
        self.F = np.eye(8)
        self.F[:4, 4:] = np.eye(4)
        self.H = np.eye(4, 8)

    def predict(self):
        h = self.x[3]
        q = np.r_[[h / 20, h / 20, 1e-2, h / 20], [h / 160, h / 160, 1e-5, h / 160]] ** 2
        self.x = self.F @ self.x
        self.P = self.F @ self.P @ self.F.T + np.diag(q)
        return self.box()

    def update(self, box):
        h = self.x[3]
        r = np.diag(np.array([h / 20, h / 20, 1e-1, h / 20]) ** 2)
        s = self.H @ self.P @ self.H.T + r
        k = self.P @ self.H.T @ np.linalg.inv(s)
        self.x = self.x + k @ (_xyah(box) - self.H @ self.x)
        self.P = (np.eye(8) - k @ self.H) @ self.P
        return self.box()

    def box(self):
        cx, cy, a, h = self.x[:4]
        w = a * h
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def _xyah(box):
    x1, y1, x2, y2 = [float(v) for v in box[:4]]
    h = max(y2 - y1, 1e-6)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / h, h])


class Track:
    """One person: ``track_id`` (0 until confirmed), the latest ``box`` (the detection's, pixels), ``score``,
    ``hits`` in a row, ``misses`` in a row, and ``state`` tentative | confirmed | lost | removed."""

    def __init__(self, box, score):
        self.kf = KalmanBox(box)
        self.box, self.score = np.asarray(box[:4], float), float(score)
        self.track_id, self.hits, self.misses, self.state, self.age = 0, 1, 0, "tentative", 0

    def hit(self, box, score):
        self.kf.update(box)
        self.box, self.score = np.asarray(box[:4], float), float(score)
        self.hits, self.misses = self.hits + 1, 0


class Tracker:
    """ByteTrack-style tracker; :meth:`update` once per keyframe with that keyframe's detections."""

    def __init__(self, track_thresh=0.5, new_track_thresh=0.6, match_iou=0.2, min_hits=2, max_misses=4):
        self.track_thresh, self.new_track_thresh, self.match_iou = track_thresh, new_track_thresh, match_iou
        self.min_hits, self.max_misses = max(1, int(min_hits)), max(0, int(max_misses))
        self.tracks, self.next_id, self.ended = [], 1, []

    def _confirm(self, t):
        if t.state == "tentative" and t.hits >= self.min_hits:
            t.state, t.track_id = "confirmed", self.next_id
            self.next_id += 1

    def update(self, detections):
        """``detections [n, 5]`` (x1, y1, x2, y2, score) → the confirmed tracks matched on this keyframe (their
        ``box`` is the detection's).  Tracks that ended on this keyframe are in ``self.ended``."""
        dets = np.asarray(detections, np.float64).reshape(-1, 5)
        self.ended = []
        for t in self.tracks:
            t.kf.predict()
            t.age += 1
        high = [i for i in range(len(dets)) if dets[i, 4] >= self.track_thresh]
        low = [i for i in range(len(dets)) if 0.1 <= dets[i, 4] < self.track_thresh]
        active = [t for t in self.tracks if t.state in ("confirmed", "lost")]
        matched = set()

        def associate(tracks, pool, threshold):
            if not tracks or not pool:
                return tracks, pool
            iou = iou_matrix([t.kf.box() for t in tracks], dets[pool, :4])
            pairs = greedy_match(iou, threshold)
            for r, c in pairs:
                tracks[r].hit(dets[pool[c]], dets[pool[c], 4])
                tracks[r].state = "confirmed"
                matched.add(id(tracks[r]))
            used_r, used_c = {r for r, _ in pairs}, {c for _, c in pairs}
            return [t for k, t in enumerate(tracks) if k not in used_r], [d for k, d in enumerate(pool)
                                                                           if k not in used_c]
        rest, high = associate(active, high, self.match_iou)
        rest_confirmed = [t for t in rest if t.state == "confirmed"]
        unmatched, _ = associate(rest_confirmed, low, 0.5)
        for t in [t for t in rest if t.state == "lost"] + unmatched:
            t.misses += 1
            t.state = "lost"
        tentative = [t for t in self.tracks if t.state == "tentative"]
        left, high = associate(tentative, high, self.match_iou)
        for t in tentative:
            if id(t) in matched:
                t.state = "tentative"
                self._confirm(t)
        removed = {id(t) for t in left}                                   # a tentative track needs hits in a row
        for i in high:
            if dets[i, 4] >= self.new_track_thresh:
                t = Track(dets[i], dets[i, 4])
                self.tracks.append(t)
                self._confirm(t)
                if t.state == "confirmed":
                    matched.add(id(t))
        for t in self.tracks:
            if t.state == "lost" and t.misses > self.max_misses:
                removed.add(id(t))
                if t.track_id:
                    self.ended.append(t)
        self.tracks = [t for t in self.tracks if id(t) not in removed]
        return [t for t in self.tracks if t.state == "confirmed" and id(t) in matched]

    def finish(self):
        """End every track (the stream's end): returns the confirmed ones."""
        self.ended = [t for t in self.tracks if t.track_id]
        self.tracks = []
        return self.ended
