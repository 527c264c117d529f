"""The server's live streams: each reads a source (camera, network stream, or a file under ``--data_root``) in its
own :class:`~paddlevideo.apps.stream.FrameReader` and runs the model the way its kind needs:

* ``online`` (an online-mode recognition model, ``MODEL.shift_mode: online``): every stream of the model advances
  in **one batched step per tick** (:class:`OnlineGroup`: one thread per model, each stream its own caches, the
  recognizer's :meth:`~paddlevideo.apps.online.OnlineRecognizer.step_batch`);
* ``window`` (an offline recognition model): every ``stride`` s of stream time the last ``window`` s are sampled
  as the timeline samples a window (``seg_num`` frames) and scored through the model's batcher;
* ``live`` (a detection model): the live pipeline (:class:`~paddlevideo.apps.live.LivePipeline`: person tracks,
  per-person actions) with the model's batcher as its runner.

All kinds write the live pipeline's events (recognition events are whole-frame: ``track_id`` null, the box the
frame) into the :class:`~.events.EventStore` with a JPEG snapshot, and to the stream's webhook when it has one.
Live sources queue at most ``buffer`` frames (older ones are dropped and counted); a file is read at its own fps.
Per stream: frames in/out, fps in/out (the last 2 s), dropped, reconnects, frame-to-label latency p50/p99 over the
last 10 s (from the moment the frame was read to its result), the latest label or tracks, and the latest annotated frame as JPEG.
"""
import threading
import time
import uuid
from collections import deque

import cv2
import numpy as np

from ..errors import UserError
from .errors import ApiError, data_path

NETWORK_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


class Stream:
    """One stream's source, counters and latest picture (the kinds below fill them)."""

    def __init__(self, sid, source, model, every, events, webhook, store, buffer, reconnect, prepare=None):
        from ..apps.stream import FrameReader
        self.id, self.source, self.model, self.every = sid, source, model, every
        self.events_on, self.webhook, self.store = events, webhook, store
        self.state, self.error, self.created = "running", None, time.time()
        self.reader = FrameReader(source, every, reconnect, live_depth=buffer, clock="wall", prepare=prepare)
        self.paced = self.reader.kind == "file"         # a file plays at its own fps, like a camera
        self.processed, self.events_count, self.label, self.score = 0, 0, None, None
        self.latencies = deque(maxlen=4000)             # (wall, ms): the stats cover the last 10 s
        self.marks = deque(maxlen=600)                  # (wall, frames in, frames out)
        self.latest, self.seq, self._jpeg = None, 0, (-1, None)
        self.tracks, self.actions = [], {}
        self.stop_flag = False
        self.lock = threading.Lock()
        self._held = None                               # a file's next frame, read but not yet due

    # -- frames
    def start(self):
        self.reader.start()
        self.t0 = time.time()

    def arrival(self, t):
        """Wall time at which the frame of stream time ``t`` was read (a paced file: when it was due)."""
        return (self.t0 if self.paced else self.reader.t0) + t

    def poll(self):
        """The next frame due now: ``(index, t, frame)``, None (nothing yet) or ``FrameReader.END``."""
        from ..apps.stream import FrameReader
        if self._held is None:
            item = self.reader.poll()
            if item is None or item is FrameReader.END:
                return item
            self._held = item
        if self.paced and self.arrival(self._held[1]) > time.time():
            return None
        item, self._held = self._held, None
        return item

    def wait_next(self, timeout=0.5):
        """Blocking :meth:`poll` for the kinds with their own thread (None on timeout)."""
        end = time.time() + timeout
        while not self.stop_flag:
            item = self.poll()
            if item is not None:
                return item
            due = self.arrival(self._held[1]) - time.time() if self._held is not None else 0.003
            if time.time() > end:
                return None
            time.sleep(min(max(due, 0.001), 0.02))
        return None

    def done_frame(self, frame, t):
        now = time.time()
        self.latencies.append((now, (now - self.arrival(t)) * 1000))
        self.processed += 1
        self.marks.append((now, self.processed + self.reader.dropped, self.processed))
        with self.lock:
            self.latest = frame
            self.seq += 1

    # -- events
    def sink(self, event):
        self.events_count += event["type"] == "start"
        if not self.events_on:          # a detection stream's pipeline still emits (its tracks need the rules)
            return
        snap = None
        if self.latest is not None:
            img = cv2.cvtColor(self.latest, cv2.COLOR_RGB2BGR)
            x1, y1, x2, y2 = [int(round(v)) for v in event["box"]]
            cv2.rectangle(img, (x1, y1), (x2, y2), (0, 255, 255), 2)
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
            snap = buf.tobytes() if ok else None
        if self.store is not None:
            self.store.add(event, self.id, snap)
        if self.webhook is not None:
            self.webhook(dict(event, stream=self.id))

    # -- views
    def jpeg(self):
        """The latest frame with its labels (recognition) or boxes, track ids and actions (detection), as JPEG."""
        with self.lock:
            seq, frame = self.seq, self.latest
        if frame is None:
            return None
        if self._jpeg[0] == seq:
            return self._jpeg[1]
        img = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        scale = 2 if img.shape[0] < 240 else 1
        if scale > 1:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        if self.tracks:
            from ..apps.live import draw_tracks
            draw_tracks(img, self.tracks, self.actions, scale=scale)
        if self.label is not None:
            cv2.putText(img, "{} {:.2f}".format(self.label, self.score or 0), (6, 20), cv2.FONT_HERSHEY_SIMPLEX,
                        0.55, (0, 255, 255), 1, cv2.LINE_AA)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
        self._jpeg = (seq, buf.tobytes() if ok else None)
        return self._jpeg[1]

    def stats(self):
        recent = [ms for w, ms in list(self.latencies) if w >= time.time() - 10.0]
        lat = np.array(recent) if recent else None
        fps_in = fps_out = 0.0
        marks = [m for m in list(self.marks) if m[0] >= time.time() - 2.0]
        if len(marks) >= 2 and marks[-1][0] > marks[0][0]:
            dt = marks[-1][0] - marks[0][0]
            fps_in, fps_out = (marks[-1][1] - marks[0][1]) / dt, (marks[-1][2] - marks[0][2]) / dt
        out = {"id": self.id, "source": self.source, "model": self.model.name, "mode": self.mode, "state": self.state,
               "error": self.error, "every": self.every, "frames_in": self.processed + self.reader.dropped,
               "frames_out": self.processed, "dropped": self.reader.dropped, "reconnects": self.reader.reconnects,
               "fps_in": round(fps_in, 2), "fps_out": round(fps_out, 2),
               "latency_ms_p50": None if lat is None else round(float(np.percentile(lat, 50)), 1),
               "latency_ms_p99": None if lat is None else round(float(np.percentile(lat, 99)), 1),
               "events": self.events_count, "label": self.label,
               "score": None if self.score is None else round(float(self.score), 4),
               "tracks": [{"track_id": int(i), "box": [round(float(v), 1) for v in b]} for i, b in self.tracks],
               "created": round(self.created, 3)}
        if self.webhook is not None:
            out["webhook"] = self.webhook.stats()
        return out

    def end(self, error=None):
        """The source ended (or the stream was deleted): end its events, release the reader."""
        with self.lock:
            if self.state in ("ended", "error", "stopped", "ending"):
                return
            self.state = "ending"
        self.finish_events()
        self.reader.close()
        self.error = error or self.reader.error
        self.state = "stopped" if self.stop_flag else "error" if self.error else "ended"
        if self.webhook is not None:
            self.webhook.close()

    def finish_events(self):
        pass


class RecognitionEvents:
    """Whole-frame events of a recognition stream (the live pipeline's rules; ``track_id`` null)."""

    def __init__(self, stream):
        from ..apps.live import Events
        self.stream = stream
        self.events = Events(stream.model.cfg.live(), stream.model.names, str(stream.source))
        self.box, self.t = [0, 0, 0, 0], 0.0

    def observe(self, probs, frame, t):
        h, w = frame.shape[:2]
        self.box, self.t = [0, 0, w, h], t
        for e in self.events.observe(None, self.box, probs, t):
            self.stream.sink(e)

    def finish(self):
        for e in self.events.end_all(self.t):
            self.stream.sink(e)


class OnlineStream(Stream):
    mode = "online"

    def setup(self, group):
        self.group, self.rstate = group, group.rec.new_state()
        self.rec_events = RecognitionEvents(self)

    def after_step(self, res, frame, t):
        self.label = self.model.names[res["label"]]
        self.score = res["top_k"][0][1] if res["label"] == res["top_k"][0][0] else float(res["probs"][res["label"]])
        if self.events_on:
            self.rec_events.observe(res["probs"], frame, t)
        self.done_frame(frame, t)

    def finish_events(self):
        self.rec_events.finish()


class OnlineGroup(threading.Thread):
    """The streams of one online model, stepped together (see the module doc)."""

    def __init__(self, model):
        super().__init__(daemon=True, name="online-" + model.name)
        self.rec, self.streams, self.lock, self.stop_flag = model.recognizer(), [], threading.Lock(), False
        self.steps = self.batches = 0

    def add(self, stream):
        stream.setup(self)
        with self.lock:
            self.streams.append(stream)

    def remove(self, stream):
        with self.lock:
            if stream in self.streams:
                self.streams.remove(stream)

    def run(self):
        from ..apps.stream import FrameReader
        while not self.stop_flag:
            with self.lock:
                streams = list(self.streams)
            ready = []
            for st in streams:
                item = st.poll()
                if item is FrameReader.END:
                    self.remove(st)
                    st.end()
                elif item is not None:
                    ready.append((st, item))
            if not ready:
                time.sleep(0.002)
                continue
            try:
                results = self.rec.step_batch([st.rstate for st, _ in ready], [item[2] for _, item in ready],
                                              [item[3] for _, item in ready])      # transformed by the readers
            except Exception as e:  # noqa: BLE001  (a step that fails ends these streams with the reason)
                for st, _ in ready:
                    self.remove(st)
                    st.end("the model failed: {}".format(str(e).splitlines()[0] if str(e) else type(e).__name__))
                continue
            self.steps += len(ready)
            self.batches += 1
            for (st, item), res in zip(ready, results):
                st.after_step(res, item[2], item[1])


class ThreadStream(Stream):
    """A stream with its own thread (window and live kinds)."""

    def start(self):
        super().start()
        self.thread = threading.Thread(target=self._run, daemon=True, name="stream-" + self.id)
        self.thread.start()

    def _run(self):
        from ..apps.stream import FrameReader
        error = None
        try:
            while not self.stop_flag:
                item = self.wait_next()
                if item is None:
                    continue
                if item is FrameReader.END:
                    break
                self.process(*item)
        except UserError as e:
            error = str(e)
        except Exception as e:  # noqa: BLE001  (the stream ends with one line; the server stays up)
            error = "{}: {}".format(type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        self.end(error)


class WindowStream(ThreadStream):
    """An offline recognition model on a live stream: every ``stride`` s, the last ``window`` s as one clip."""
    mode = "window"

    def configure(self, window, stride):
        from ..data.transforms import scale_short_side
        self.window, self.stride = window, stride or window / 2
        self.buf, self.next_t = deque(), None
        self.scale = lambda f: scale_short_side(f[None], self.model.m.short_size)[0]     # noqa: E731
        self.rec_events = RecognitionEvents(self)

    def process(self, index, t, frame):
        from ..apps.timeline import window_indices
        from ..data.transforms import transform_clip
        from ..metrics.classification import softmax
        m = self.model.m
        self.buf.append((t, self.scale(frame)))
        while self.buf and self.buf[0][0] < t - self.window:
            self.buf.popleft()
        if self.next_t is None:
            self.next_t = self.buf[0][0] + self.window
        if t + 1e-9 < self.next_t:
            with self.lock:
                self.latest = frame
                self.seq += 1
            self.processed += 1
            return
        self.next_t += self.stride
        idx = window_indices(m, 0, len(self.buf))
        clip = transform_clip(np.stack([self.buf[min(int(i), len(self.buf) - 1)][1] for i in idx]), m, train=False)
        probs = softmax(np.asarray(self.model.batcher(clip[None].astype(np.float32))))[0]
        c = int(np.argmax(probs))
        self.label, self.score = self.model.names[c], float(probs[c])
        if self.events_on:
            self.rec_events.observe(probs, frame, t)
        self.done_frame(frame, t)

    def finish_events(self):
        self.rec_events.finish()


class LiveStream(ThreadStream):
    """A detection model on a stream: the live pipeline (person tracks, per-person action events)."""
    mode = "live"

    def configure(self, detector):
        from ..apps.live import LivePipeline
        self.pipe = LivePipeline(self.model.cfg, detector=detector, source=str(self.source), fps=self.reader.fps,
                                 sinks=[self.sink], runner=self.model.batcher)

    def process(self, index, t, frame):
        self.pipe.feed(frame, t, index)
        self.tracks, self.actions = list(self.pipe.current), self.pipe.active_actions()
        self.done_frame(frame, t)

    def finish_events(self):
        self.pipe.finish(self.pipe.index / self.pipe.fps if self.pipe.index >= 0 else 0.0)


class StreamManager:
    """Streams by id: add (validated: model, source, data roots), list, remove; one :class:`OnlineGroup` per online
    model.  ``max_streams`` bounds the open streams (more: 503); ``buffer``: frames a live source may queue (default
    the model's ``LIVE.buffer``; a stream's ``buffer`` field overrides)."""

    def __init__(self, models, store, data_roots, max_streams=32, buffer=None, reconnect=3):
        self.models, self.store, self.data_roots = models, store, data_roots
        self.max_streams, self.buffer, self.reconnect = max_streams, buffer, reconnect
        self.streams, self.groups, self.lock = {}, {}, threading.Lock()

    def add(self, body):
        from .events import Webhook
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object {\"source\", \"model\", \"every\"?, \"events\"?}")
        unknown = sorted(set(body) - {"source", "model", "every", "events", "webhook", "window", "stride", "buffer"})
        if unknown:
            raise ApiError(400, "unknown field {!r} (known: source, model, every, events, webhook, window, stride, "
                                "buffer)".format(unknown[0]))
        source, name = body.get("source"), body.get("model")
        if not isinstance(source, (str, int)) or isinstance(source, bool) or str(source) == "":
            raise ApiError(400, "source must be a camera index, a stream URL or a file under --data_root")
        if not isinstance(name, str):
            raise ApiError(400, "model must be the name of a served model (GET /v1/models)")
        if name not in self.models:
            raise ApiError(404, "no model named {!r} (served: {})".format(name, ", ".join(sorted(self.models))))
        every = _number(body, "every", 1, int, 1)
        buffer = _number(body, "buffer", self.buffer or self.models[name].cfg.live().buffer, int, 1)
        window = _number(body, "window", 2.0, float, 0.1)
        stride = _number(body, "stride", None, float, 0.05)
        events = body.get("events", True)
        if not isinstance(events, bool):
            raise ApiError(400, "events must be true or false")
        hook = body.get("webhook")
        if hook is not None and not (isinstance(hook, str) and hook.startswith(("http://", "https://"))):
            raise ApiError(400, "webhook must be an http:// or https:// URL")
        source = str(source)
        if not source.isdigit() and not source.startswith(NETWORK_SCHEMES):
            if "://" in source:
                raise ApiError(400, "source {!r}: unsupported scheme (use {})".format(
                    source, ", ".join(s[:-3] for s in NETWORK_SCHEMES)))
            source = data_path(source, self.data_roots)
        model = self.models[name]
        with self.lock:
            if sum(s.state == "running" for s in self.streams.values()) >= self.max_streams:
                raise ApiError(503, "{} streams are running (the limit, --max_streams); delete one first".format(
                    self.max_streams))
        kind = LiveStream if model.task.per_person else OnlineStream if model.online else WindowStream
        sid = uuid.uuid4().hex[:10]
        prepare = model.recognizer().transform if kind is OnlineStream else None
        try:
            st = kind(sid, source, model, every, events, Webhook(hook) if hook else None, self.store, buffer,
                      self.reconnect, prepare)
        except UserError as e:
            raise ApiError(422, str(e))
        try:
            if kind is LiveStream:
                st.configure(model.spec.get("detector"))
            elif kind is WindowStream:
                st.configure(window, stride)
        except UserError as e:
            st.reader.close()
            raise ApiError(422, str(e))
        with self.lock:
            self.streams[sid] = st
            if kind is OnlineStream:
                group = self.groups.get(name)
                if group is None:
                    group = self.groups[name] = OnlineGroup(model)
                    group.start()
                group.add(st)
        st.start()
        return st

    def get(self, sid):
        st = self.streams.get(sid)
        if st is None:
            raise ApiError(404, "no stream {!r}".format(sid))
        return st

    def list(self):
        return [s.stats() for s in list(self.streams.values())]

    def remove(self, sid):
        st = self.get(sid)
        st.stop_flag = True
        group = self.groups.get(st.model.name)
        if group is not None:
            group.remove(st)
        if hasattr(st, "thread"):
            st.thread.join(10)
        st.end()
        with self.lock:
            self.streams.pop(sid, None)
        return st.stats()

    def close(self):
        for sid in list(self.streams):
            try:
                self.remove(sid)
            except ApiError:
                pass
        for g in self.groups.values():
            g.stop_flag = True


def _number(body, key, default, typ, minimum):
    v = body.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (typ is int and not float(v).is_integer()):
        raise ApiError(400, "{} must be a{} number (got {!r})".format(key, "n integer" if typ is int else "", v))
    if v < minimum:
        raise ApiError(400, "{} must be at least {} (got {})".format(key, minimum, v))
    return typ(v)

