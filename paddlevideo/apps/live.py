"""The live answer: which person does what, now — person tracks and per-person action events from a camera, a
network stream or a file (``predict.py --live``).

Data flow: source → reader thread (:class:`~.stream.FrameReader`: a live source queues at most ``LIVE.buffer``
frames and drops the oldest when the pipeline falls behind, counted; a file is read at full speed, or at its own
fps with ``realtime``) → :meth:`LivePipeline.feed` per frame → every ``LIVE.stride`` seconds a keyframe → person
boxes on it (``--detector``, :mod:`.persons`) → :class:`~.track.Tracker` (stable ``track_id``) → once half a window
of later frames has arrived, the detection model on the clip around the keyframe (the window it was trained on:
``seg_num`` frames ``frame_interval`` apart at 30 fps) with every tracked person's box, in one call → per track and
class a smoothed score (``LIVE.smooth``) → events.

**Latency.** A keyframe is processed when its clip is complete: half a window after it (``seg_num/2 ×
frame_interval`` frames at 30 fps: 8 frames = 0.27 s for the demo model, 32 frames = 1.07 s for SlowFast 8×8), plus
the processing time.  An event then needs ``LIVE.min_duration`` seconds above its threshold.

**Events** (one JSON object per line; keep the fields — other tools consume them)::

    {"type": "start" | "update" | "end", "event_id": str, "source": str, "track_id": int, "action_id": int,
     "action": str, "score": float, "box": [x1, y1, x2, y2], "t": float, "t_start": float, "t_end": float | null}

``t`` is the stream time of the message (seconds: frame index / fps of the frame that completed the keyframe's
clip), ``box`` the track's current box (pixels) and ``score`` its smoothed score.  An event **starts** when the
smoothed score stays >= the class threshold (``LIVE.threshold`` or ``LIVE.thresholds[action_id]``) for
``LIVE.min_duration`` s (``t_start``: when it went above), is **updated** at least every ``LIVE.update_interval`` s
of stream time while active, and **ends** when the score stays below threshold − ``LIVE.hysteresis`` for
``LIVE.hold`` s (``t_end``: when it went below), when its track ends, or at the stream's end — every start gets
exactly one end.  With zones (a JSON/YAML list of polygons ``[[x, y], ...]`` in pixels, or ``{"zones": [...]}``)
only persons whose box's bottom centre is inside one count; a person outside scores 0.
"""
import json
import os
import sys
import time

import cv2
import numpy as np

from ..errors import UserError
from ..report import log
from .detect import score_boxes
from .persons import check_boxes, load_detector
from .track import Tracker

FPS = 30.0       # the detection models' training frame rate (AVA)


def read_zones(path):
    """``[polygon float32 [k, 2]]`` from a JSON or YAML file; one line names what is wrong."""
    if not path:
        return []
    if not os.path.isfile(path):
        raise UserError("--zones {} not found".format(path))
    try:
        with open(path) as f:
            text = f.read()
        if path.endswith(".json"):
            raw = json.loads(text)
        else:
            import yaml
            raw = yaml.safe_load(text)
    except Exception as e:  # noqa: BLE001  (any parse error is a bad file)
        raise UserError("--zones {}: not valid JSON/YAML ({})".format(path, str(e).splitlines()[0]))
    if isinstance(raw, dict):
        raw = raw.get("zones")
    zones = []
    for k, poly in enumerate(raw if isinstance(raw, list) else [None]):
        try:
            p = np.asarray(poly, np.float32)
            ok = p.ndim == 2 and p.shape[1] == 2 and len(p) >= 3 and np.isfinite(p).all()
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise UserError("--zones {}: zone {} is not a polygon; write a list of polygons, each a list of at least "
                            "3 [x, y] pixel points, e.g. [[[0, 0], [100, 0], [100, 80]]]".format(path, k))
        zones.append(p)
    return zones


def in_zones(box, zones):
    """Whether the box's bottom centre lies in one of ``zones`` (no zones: everywhere counts)."""
    if not zones:
        return True
    pt = (float((box[0] + box[2]) / 2), float(box[3]))
    return any(cv2.pointPolygonTest(z.reshape(-1, 1, 2), pt, False) >= 0 for z in zones)


class Events:
    """Per track and class: the smoothed score and the start/update/end state machine (see the module doc).

    The smoothed scores of a track are one array over the classes; the state machine runs only for the classes
    that are above their threshold or have an event going (or pending), so a 400-class model costs a vector update
    per observation, not 400 Python steps."""

    def __init__(self, live, names, source):
        self.live, self.names, self.source = live, names, source
        self.state = {}            # (track_id, action) -> dict, for the classes in play
        self.scores = {}           # track_id -> smoothed scores [len(ids)]
        self.ids = np.array(sorted(names), np.int64)
        self.thresholds = np.array([self.threshold(int(a)) for a in self.ids], np.float64)
        self.count = 0

    def threshold(self, action):
        th = self.live.thresholds
        return float(th[action]) if th and action < len(th) else float(self.live.threshold)

    def _msg(self, kind, s, track_id, action, t):
        return {"type": kind, "event_id": s["event_id"], "source": self.source,
                "track_id": None if track_id is None else int(track_id),     # None: a whole-frame event
                "action_id": int(action), "action": self.names.get(action, str(action)),
                "score": round(float(s["score"]), 4), "box": [round(float(v), 1) for v in s["box"]],
                "t": round(float(t), 3), "t_start": round(float(s["t_start"]), 3),
                "t_end": None if s.get("t_end") is None else round(float(s["t_end"]), 3)}

    def observe(self, track_id, box, probs, t):
        """A track's action probabilities ``probs [num_classes]`` at stream time ``t`` → messages (``track_id``
        None: the whole frame's, a recognition model's)."""
        probs = np.asarray(probs, np.float64).ravel()
        p = np.where(self.ids < len(probs), probs[np.minimum(self.ids, max(len(probs) - 1, 0))], 0.0) \
            if len(probs) else np.zeros(len(self.ids))
        prev = self.scores.get(track_id)
        a = self.live.smooth
        scores = p if prev is None else a * p + (1 - a) * prev
        self.scores[track_id] = scores
        hot = set(np.flatnonzero(scores >= self.thresholds).tolist())
        hot.update(i for i, action in enumerate(self.ids.tolist()) if (track_id, action) in self.state)
        out = []
        for i in sorted(hot):
            action = int(self.ids[i])
            s = self.state.setdefault((track_id, action), {"active": False, "above": None, "below": None})
            s["score"], s["box"] = float(scores[i]), box
            th = float(self.thresholds[i])
            if not s["active"]:
                if s["score"] >= th:
                    s["above"] = t if s["above"] is None else s["above"]
                    if t - s["above"] >= self.live.min_duration - 1e-9:
                        self.count += 1
                        s.update(active=True, t_start=s["above"], t_end=None, below=None, last=t,
                                 event_id="{}-{}-{}-{}".format(self.source_tag(), "frame" if track_id is None
                                                               else track_id, action, self.count))
                        out.append(self._msg("start", s, track_id, action, t))
                else:
                    del self.state[(track_id, action)]          # below and idle: only its score is kept
            else:
                if s["score"] < th - self.live.hysteresis:
                    s["below"] = t if s["below"] is None else s["below"]
                    if t - s["below"] >= self.live.hold - 1e-9:
                        out.append(self._end(s, track_id, action, t, s["below"]))
                        continue
                else:
                    s["below"] = None
                if t - s["last"] >= self.live.update_interval - 1e-9:
                    s["last"] = t
                    out.append(self._msg("update", s, track_id, action, t))
        return out

    def _end(self, s, track_id, action, t, t_end):
        s.update(active=False, t_end=t_end, above=None, below=None)
        return self._msg("end", s, track_id, action, t)

    def end_track(self, track_id, t):
        """The track ended (left, lost): end its active events at ``t``; forget its scores."""
        out = []
        for (tid, action), s in list(self.state.items()):
            if tid == track_id:
                if s["active"]:
                    out.append(self._end(s, tid, action, t, t))
                del self.state[(tid, action)]
        self.scores.pop(track_id, None)
        return out

    def end_all(self, t):
        out = []
        for tid in sorted({tid for tid, _ in self.state}, key=lambda x: -1 if x is None else x):
            out += self.end_track(tid, t)
        self.scores.clear()
        return out

    def source_tag(self):
        return "".join(c if c.isalnum() else "_" for c in os.path.basename(str(self.source)))[:40] or "stream"


class LivePipeline:
    """``feed(frame, t) -> [events]`` for each frame of a stream; ``run(source)`` reads a source through it.

    Args:
        cfg: a detection config (its INFER reader settings and LIVE section); the model must score person boxes.
        weights / backend / cpu_threads / cache_dir / exported: the model, as for predict.py.
        detector: a person detector callable, or the ``--detector`` spec (:func:`.persons.load_detector`).
        zones: polygons (:func:`read_zones`); source: the name events carry; fps: the source's frame rate.
        sinks: callables receiving each event dict as it is produced (a file writer, the server's store, ...).
        runner: an already-built runner of the model (e.g. the server's batcher shared by its streams).
    """

    def __init__(self, cfg, weights=None, backend="auto", detector=None, zones=None, source="stream", fps=FPS,
                 cpu_threads=None, cache_dir=None, exported=None, sinks=(), runner=None):
        from ..config import label_map_path
        from ..annotations.ava import read_label_map
        from ..runtime.backends import make_runner
        from ..runtime.batches import resolve_weights, set_device
        from ..tasks import task_for
        if not task_for(cfg).per_person:
            raise UserError("--live needs a detection model that scores person boxes (e.g. configs/slowfast_ava.yaml "
                            "or configs/demo_detection.yaml); {} is a {} model".format(cfg.MODEL.name,
                                                                                      task_for(cfg).name))
        self.m, self.live = cfg.mode("infer"), cfg.live()
        set_device(self.m.use_gpu)
        self.names = read_label_map(label_map_path(cfg))[0] if cfg.MODEL.label_map else {
            c: str(c) for c in range(1, cfg.MODEL.num_classes)}
        if runner is None:
            w = None if exported and not weights else resolve_weights(cfg, weights, cache_dir)
            self.runner, self.backend = make_runner(cfg, "infer", w, backend, cpu_threads, cache_dir, exported)
        else:
            self.runner, self.backend = runner, getattr(runner, "backend", backend)
        self.detector_spec = detector if isinstance(detector, str) or detector is None else repr(detector)
        self.detector = load_detector(detector, cache_dir, cpu_threads)
        self.zones = zones or []
        self.source, self.sinks = str(source), list(sinks)
        lv = self.live
        self.tracker = Tracker(lv.track_thresh, lv.new_track_thresh, lv.match_iou, lv.min_hits, lv.max_misses)
        self.events = Events(lv, self.names, self.source)
        self.set_fps(fps)
        self.frames, self.pending, self.next_key = {}, [], 0.0
        self.index = -1
        self.stats = {"frames": 0, "keyframes": 0, "tracks": 0, "events": 0, "bad_detections": 0}
        self.latencies, self.current = [], []          # latency per keyframe (ms); the latest tracks (for render)
        self.started = None                            # wall clock at the first frame

    def set_fps(self, fps):
        """The source's frame rate: the clip's frame offsets around a keyframe follow it (30 fps training rate)."""
        self.fps = float(fps) if fps and 1 <= fps <= 240 else FPS      # a stream's header may hold junk
        step = self.m.frame_interval * self.fps / FPS
        self.offsets = np.round((np.arange(self.m.seg_num) - self.m.seg_num // 2) * step).astype(int)
        self.window_latency = max(int(self.offsets.max()), 0) / self.fps

    def _emit(self, msgs):
        for e in msgs:
            self.stats["events"] += e["type"] == "start"
            for sink in self.sinks:
                sink(e)
        return msgs

    def feed(self, frame, t=None, index=None):
        """One frame (RGB uint8 ``[H, W, 3]``) at stream time ``t`` (default: index / fps) → the events it
        completed (a keyframe is processed once its clip has arrived)."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise UserError("a frame must be an RGB image [H, W, 3] (got shape {})".format(frame.shape))
        arrived = time.perf_counter()
        self.started = self.started or time.time()
        self.index = self.index + 1 if index is None else int(index)
        t = self.index / self.fps if t is None else float(t)
        self.frames[self.index] = frame
        self.stats["frames"] += 1
        if t + 1e-9 >= self.next_key:
            self.pending.append((self.index, t))
            self.next_key = max(self.next_key + self.live.stride, t)
        out = []
        while self.pending and self.pending[0][0] + int(self.offsets.max()) <= self.index:
            out += self._keyframe(*self.pending.pop(0), now=t)
            self.latencies.append((time.perf_counter() - arrived) * 1000)
        keep = (self.pending[0][0] if self.pending else self.index) + int(self.offsets.min())
        for i in [i for i in self.frames if i < keep]:
            del self.frames[i]
        return out

    def _clip(self, key):
        """The frames around ``key`` (a missing one — dropped or before the start — takes the nearest held)."""
        held = np.array(sorted(self.frames))
        idx = key + self.offsets
        return np.stack([self.frames[int(held[np.abs(held - i).argmin()])] for i in idx])

    def _keyframe(self, key, t_key, now):
        self.stats["keyframes"] += 1
        image = self.frames[key]
        h, w = image.shape[:2]
        try:
            raw = self.detector(image)
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001  (a plugin's failure is reported as the plugin's)
            raise UserError("--detector {} raised {}: {}".format(self.detector_spec, type(e).__name__, e))
        dets, bad = check_boxes(raw, self.detector_spec, w, h)
        self.stats["bad_detections"] += bad
        tracks = self.tracker.update(dets)
        out = []
        for ended in self.tracker.ended:
            out += self.events.end_track(ended.track_id, now)
        self.stats["tracks"] = max(self.stats["tracks"], self.tracker.next_id - 1)
        self.current = [(tr.track_id, tr.box.copy()) for tr in tracks]
        if tracks:
            boxes = np.stack([tr.box for tr in tracks])
            probs = score_boxes(self.runner, self._clip(key), boxes, self.m)
            for tr, p in zip(tracks, probs):
                if not in_zones(tr.box, self.zones):
                    p = np.zeros_like(p)
                out += self.events.observe(tr.track_id, tr.box, p, now)
        return self._emit(out)

    def finish(self, t=None):
        """The stream ended at ``t``: every active event ends (each start gets its end)."""
        t = self.index / self.fps if t is None else t
        self.tracker.finish()
        return self._emit(self.events.end_all(t))

    def summary(self, wall=None, dropped=0, reconnects=0):
        """The run's numbers (``wall``: seconds it took; default since the first frame)."""
        wall = wall if wall is not None else (time.time() - self.started if self.started else 0.0)
        lat = np.array(self.latencies) if self.latencies else np.zeros(1)
        seconds = (self.index + 1) / self.fps
        return {"frames_read": self.stats["frames"] + dropped, "frames_processed": self.stats["frames"],
                "frames_dropped": dropped, "dropped_fraction": round(dropped / max(1, self.stats["frames"] + dropped), 4),
                "keyframes": self.stats["keyframes"], "tracks": self.stats["tracks"], "events": self.stats["events"],
                "bad_detections": self.stats["bad_detections"], "reconnects": reconnects,
                "stream_seconds": round(seconds, 2), "wall_seconds": round(wall, 2),
                "processing_fps": round(self.stats["frames"] / max(wall, 1e-9), 1),
                "realtime_factor": round(seconds / max(wall, 1e-9), 3),
                "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
                "latency_ms_p99": round(float(np.percentile(lat, 99)), 1),
                "window_latency_s": round(self.window_latency, 3), "backend": self.backend}

    def run(self, source, realtime=False, reconnect=3, render=None, max_seconds=None):
        """Read ``source`` (camera index, rtsp/http URL or file) through the pipeline; return the summary.  A source
        that dies ends the run with one line after every started event has ended."""
        from .stream import FrameReader
        reader = FrameReader(source, reconnect=reconnect, live_depth=self.live.buffer, clock="frames")
        self.set_fps(reader.fps)
        writer, t0, error = None, time.time(), None
        reader.start()
        try:
            while True:
                item = reader.get()
                if item is None:
                    break
                index, t, frame = item
                if max_seconds is not None and t > max_seconds:
                    break
                if realtime and reader.kind == "file":
                    lag = t - (time.time() - t0)
                    if lag > 0:
                        time.sleep(lag)
                self.feed(frame, t, index)
                if render:
                    writer = self._render(writer, render, frame, t)
        except KeyboardInterrupt:
            error = "interrupted"
        finally:
            reader.close()
            self.finish()
            if writer is not None:
                writer.release()
        summary = self.summary(time.time() - t0, reader.dropped, reader.reconnects)
        summary["error"] = reader.error or error
        return summary

    def _render(self, writer, path, frame, t):
        if writer is None:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (frame.shape[1] * 2,
                                                                                      frame.shape[0] * 2))
        img = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        draw_tracks(img, self.current, self.active_actions(), scale=2)
        cv2.putText(img, "t={:.1f}s".format(t), (4, img.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 255, 255), 1, cv2.LINE_AA)
        writer.write(img)
        return writer

    def active_actions(self):
        """``{track_id: [action names]}`` of the events active now."""
        out = {}
        for (tid, action), s in self.events.state.items():
            if s["active"]:
                out.setdefault(tid, []).append(self.names.get(action, str(action)))
        return out


def draw_tracks(img, tracks, actions, scale=1):
    """Boxes with ``#track_id`` and the track's active actions, on a BGR image."""
    for tid, box in tracks:
        x1, y1, x2, y2 = [int(round(v * scale)) for v in box]
        colour = tuple(int(c) for c in np.random.default_rng(tid).integers(80, 256, 3))
        cv2.rectangle(img, (x1, y1), (x2, y2), colour, 2)
        cv2.putText(img, "#{}".format(tid), (x1 + 3, y1 + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
        for j, name in enumerate(actions.get(tid, [])[:3]):
            cv2.putText(img, name, (x1 + 3, y2 - 6 - 14 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1,
                        cv2.LINE_AA)


def live_cli(cfg, args):
    """``predict.py --live``: the pipeline on ``--source``; events to ``--events`` (``-``: stdout), the summary to
    stderr and ``--output``; returns the exit code.  A source that dies or a bad plugin ends with one line after the
    events written so far have been ended properly."""
    if args.source is None:
        raise UserError("--live needs --source: a camera index (0), rtsp://... / http://..., or a video file")
    if args.stride is not None:
        cfg.set("LIVE.stride", args.stride, "--stride")
    zones = read_zones(args.zones)
    out = sys.stdout if args.events in (None, "-") else None
    if out is None:
        os.makedirs(os.path.dirname(os.path.abspath(args.events)), exist_ok=True)
        out = open(args.events, "w")

    def write(e):
        out.write(json.dumps(e) + "\n")
        out.flush()
    pipe = LivePipeline(cfg, args.weights, args.backend, args.detector, zones, source=args.source,
                        cpu_threads=args.cpu_threads, cache_dir=args.cache_dir, exported=args.exported, sinks=[write])
    summary, failure = None, None
    try:
        summary = pipe.run(args.source, realtime=args.realtime, reconnect=args.reconnect, render=args.render)
    except UserError as e:                          # a plugin's failure: end what started, then report
        failure = str(e)
        pipe.finish()
        summary = pipe.summary()
        summary["error"] = failure
    finally:
        if out is not sys.stdout:
            out.close()
    line = ("[LIVE] {frames_processed} frames ({frames_dropped} dropped), {keyframes} keyframes, {tracks} tracks, "
            "{events} events; {processing_fps} fps, real-time factor {realtime_factor}, latency p50 {latency_ms_p50} "
            "ms p99 {latency_ms_p99} ms (+ {window_latency_s} s for the clip's second half)".format(**summary))
    print(line, file=sys.stderr, flush=True)
    if args.output:
        from ..report import write_json
        write_json(args.output, summary)
    if summary.get("error") and summary["error"] != "interrupted":
        raise UserError("{}; the events so far are in {}".format(summary["error"], args.events or "stdout"))
    if args.events not in (None, "-"):
        log("[LIVE] events written to {}".format(args.events))
    return 0
