"""``predict.py --online``: a streaming recognizer on a camera, a network stream or a file.

``--source 0`` (camera index) | ``rtsp://…`` / ``http://…`` (network) | ``FILE``.  A reader thread decodes while the
model runs (:class:`FrameReader`): a file is read completely, in order (a bounded queue makes the reader wait); a
live source (camera, network) keeps only the newest frame when the model is slower than the source — the frames
dropped that way are counted and reported.  ``--every K`` processes every K-th frame.  A network stream that stops
is reopened up to ``--reconnect`` times in a row (each attempt reported; a frame read resets the count); a camera that cannot be opened or a stream that
stays down ends with one line (``error: ...``) and what was written is kept.

One JSON line per step (stdout, or ``--output F.jsonl`` flushed per line): ``{"t": seconds (the frame's time in a
file, the time since the start for a live source), "frame": index of the source frame, "top_k": [{"label",
"score"}], "label": the smoothed label, "latency_ms": transform + model + smoothing}``; ``--render OUT.mp4`` writes the
processed frames with the smoothed label.
"""
import json
import queue
import sys
import threading
import time

import cv2

from ..errors import UserError
from .online import OnlineRecognizer

_END = object()


def source_kind(source):
    """``camera``, ``network`` or ``file``."""
    if str(source).isdigit():
        return "camera"
    return "network" if "://" in str(source) else "file"


class FrameReader(threading.Thread):
    """Decodes ``source`` in its own thread; :meth:`get` returns ``(index, t, RGB frame)`` or None at the end
    (``(index, t, RGB frame, prepare(frame))`` with ``prepare``: per-frame work done in the reader's thread, in
    parallel with the consumer, e.g. the model's transforms).

    Live sources keep a queue of ``live_depth`` frames (when it is full the oldest unread frame is dropped:
    ``dropped`` counts them, so a slow consumer never falls behind by more than the queue); files queue up to
    ``depth`` frames and the reader waits (nothing dropped).  Only every ``every``-th frame is queued.
    A network stream that stops is reopened; ``reconnect`` bounds the **consecutive** failed attempts (a frame
    read resets the count, so a stream that glitches now and then runs for days), with a back-off of
    ``retry_delay`` doubling up to ``max_delay`` seconds between attempts; ``reconnects`` counts every attempt.
    :meth:`close` (also on an exception or Ctrl-C in the consumer) stops the thread and releases the capture:
    nothing stays blocked or open.  ``FrameReader.open_captures`` counts the captures open in this process.
    """
    open_captures = 0
    _lock = threading.Lock()
    END = "end of the source"

    def __init__(self, source, every=1, reconnect=3, depth=8, retry_delay=1.0, max_delay=10.0, live_depth=1,
                 clock="wall", prepare=None):
        super().__init__(daemon=True)
        self.source, self.every, self.reconnect, self.retry_delay = source, max(1, int(every)), reconnect, retry_delay
        self.max_delay = max_delay
        self.kind = source_kind(source)
        self.live = self.kind != "file"
        self.clock = clock         # a live source's t: "wall" (seconds since the start) or "frames" (index / fps)
        self.prepare = prepare     # prepare(RGB frame) runs in this thread; items become (index, t, frame, prepared)
        self.q = queue.Queue(maxsize=max(1, int(live_depth)) if self.live else depth)
        self.dropped = self.reconnects = self.failures = 0
        self.error = None
        self.stop_flag = False
        self.t0 = time.time()
        self.cap = self._open()
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 30.0

    def _capture(self):
        cap = cv2.VideoCapture(int(self.source) if self.kind == "camera" else self.source)
        with FrameReader._lock:
            FrameReader.open_captures += 1
        return cap

    def _release(self):
        if self.cap is not None:
            self.cap.release()
            self.cap = None
            with FrameReader._lock:
                FrameReader.open_captures -= 1

    def _open(self):
        cap = self._capture()
        if not cap.isOpened():
            self.cap = cap
            self._release()
            what = {"camera": "camera {} cannot be opened (is it connected, and free?)",
                    "network": "stream {} cannot be opened (check the URL and that it is running)",
                    "file": "video {} cannot be opened (missing or not a video)"}[self.kind]
            raise UserError(what.format(self.source))
        return cap

    def _put(self, item):
        """Queue ``item`` without ever blocking past a stop: False when the consumer has gone."""
        while not self.stop_flag:
            try:
                self.q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _reopen(self):
        """One reconnect attempt after a back-off; False when the consecutive budget is spent."""
        if self.kind != "network" or self.failures >= self.reconnect:
            return False
        self.failures += 1
        self.reconnects += 1
        delay = min(self.max_delay, self.retry_delay * 2 ** (self.failures - 1))
        print("warning: stream {} stopped; reconnect attempt {}/{} in {:.1f} s ({} in total)".format(
            self.source, self.failures, self.reconnect, delay, self.reconnects), file=sys.stderr, flush=True)
        deadline = time.time() + delay
        while time.time() < deadline and not self.stop_flag:
            time.sleep(min(0.05, delay))
        self._release()
        self.cap = self._capture()
        return True

    def run(self):
        index, t0 = 0, time.time()
        self.t0 = t0               # a live source's frame t was read at wall time t0 + t (clock "wall")
        try:
            while not self.stop_flag:
                ok, img = self.cap.read() if self.cap is not None else (False, None)
                if not ok:
                    if self.stop_flag:
                        break
                    if self._reopen():
                        continue
                    if self.kind != "file":
                        self.error = "{} {} stopped delivering frames{}".format(
                            self.kind, self.source, " after {} consecutive failed reconnect attempts ({} in total)"
                            .format(self.failures, self.reconnects) if self.kind == "network" else "")
                    break
                self.failures = 0
                if index % self.every == 0:
                    t = index / self.fps if not self.live or self.clock == "frames" else time.time() - t0
                    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
                    item = (index, t, rgb) if self.prepare is None else (index, t, rgb, self.prepare(rgb))
                    if self.live and self.q.full():        # the consumer is behind: drop the oldest frame
                        try:
                            self.q.get_nowait()
                            self.dropped += 1
                        except queue.Empty:
                            pass
                    if not self._put(item):
                        break
                index += 1
        finally:
            self._release()
            self._put(_END)

    def get(self):
        item = self.q.get()
        return None if item is _END else item

    def poll(self):
        """Non-blocking :meth:`get`: ``(index, t, frame)``, None when no frame is queued yet, or
        :attr:`FrameReader.END` once the source has ended."""
        try:
            item = self.q.get_nowait()
        except queue.Empty:
            return None
        return FrameReader.END if item is _END else item

    def close(self, timeout=5.0):
        """Stop reading: the thread ends (a full queue no longer holds it) and the capture is released."""
        self.stop_flag = True
        while True:                    # free the queue so a put in flight returns at once
            try:
                self.q.get_nowait()
            except queue.Empty:
                break
        if self.is_alive():
            self.join(timeout)
        elif self.ident is None:       # never started: release here
            self._release()


def run_stream(cfg, source, weights=None, backend="auto", every=1, window=12, output=None, render=None, topk=5,
               reconnect=3, cache_dir=None, cpu_threads=None, max_steps=None, recognizer=None, retry_delay=1.0):
    """Stream ``source`` through an :class:`~.online.OnlineRecognizer` (``recognizer``: one already built, reset
    here); return a summary dict (``steps``, ``dropped``, ``reconnects``, ``error``).  However the loop ends
    (``max_steps``, the source's end, an exception, Ctrl-C) the reader thread stops and the capture is released."""
    rec = recognizer or OnlineRecognizer(cfg, weights, backend, cpu_threads, cache_dir, window, topk)
    rec.reset()
    names = rec.names
    reader = FrameReader(source, every, reconnect, retry_delay=retry_delay)
    out = open(output, "w") if output else sys.stdout
    writer, steps = None, 0
    reader.start()
    try:
        while max_steps is None or steps < max_steps:
            item = reader.get()
            if item is None:
                break
            index, t, frame = item
            t0 = time.perf_counter()
            res = rec.step(frame)
            latency = (time.perf_counter() - t0) * 1000
            label = names[res["label"]] if names else res["label"]
            line = {"t": round(t, 3), "frame": index, "label": label, "latency_ms": round(latency, 2),
                    "top_k": [{"label": names[c] if names else c, "score": round(p, 5)} for c, p in res["top_k"]]}
            out.write(json.dumps(line) + "\n")
            out.flush()
            if render:
                if writer is None:
                    writer = cv2.VideoWriter(render, cv2.VideoWriter_fourcc(*"mp4v"), reader.fps / reader.every,
                                             (frame.shape[1], frame.shape[0]))
                img = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
                scale = max(0.4, frame.shape[0] / 600)
                cv2.putText(img, "{}  t={:.1f}s".format(label, t), (6, int(24 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX,
                            scale, (0, 255, 255), 1, cv2.LINE_AA)
                writer.write(img)
            steps += 1
    finally:
        reader.close()
        if writer is not None:
            writer.release()
        if output:
            out.close()
    summary = {"steps": steps, "dropped": reader.dropped, "reconnects": reader.reconnects, "error": reader.error,
               "backend": rec.backend}
    print("[ONLINE] {} steps from {} ({} frames dropped while the model was busy, {} reconnects){}".format(
        steps, source, reader.dropped, reader.reconnects, "; output kept in {}".format(output) if output else ""),
        file=sys.stderr)
    if reader.error:
        raise UserError(reader.error + ("; the {} steps before are in {}".format(steps, output) if output else ""))
    return summary
