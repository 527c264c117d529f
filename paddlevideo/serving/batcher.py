"""One model, many callers: requests coalesced into batched runner calls, a bounded queue, deadlines.

:class:`Batcher` owns a model's runner (``runner(*inputs) -> outputs``, see :mod:`paddlevideo.runtime.backends`)
and one thread that calls it.  Callers :meth:`~Batcher.submit` inputs and get a
:class:`concurrent.futures.Future`; the thread takes the oldest job and, when its inputs are one array
``[n, ...]`` (a classification model's views ``[V, T, C, H, W]``), adds later jobs with the same trailing shape
until ``max_batch`` rows or ``max_wait_ms`` after the first job's arrival, runs them as one call
``[sum n, ...]`` and hands each job its rows of the output.  Multi-input calls (a detection model's clip + boxes
+ boxes_num) run one by one.  A job whose future was cancelled (its client went away) or whose deadline passed
before its turn is not run.  The batcher is itself a runner (``batcher(*inputs)`` blocks), so code written for a
runner (the timeline, keyframe detection, the live pipeline) shares the model and its batches unchanged.
"""
import queue
import threading
import time
from concurrent.futures import Future

import numpy as np


class DeadlineExceeded(Exception):
    """The job's deadline passed before the model could run it."""


class _Job:
    __slots__ = ("inputs", "future", "deadline", "rows", "key")

    def __init__(self, inputs, deadline):
        self.inputs, self.deadline, self.future = inputs, deadline, Future()
        single = len(inputs) == 1 and isinstance(inputs[0], np.ndarray) and inputs[0].ndim >= 1
        self.rows = int(inputs[0].shape[0]) if single else 1
        self.key = (inputs[0].dtype.str,) + tuple(inputs[0].shape[1:]) if single else None


class Batcher:
    """Batched, serialised calls of ``runner`` (see the module doc).

    Args:
        runner: ``runner(*inputs) -> array`` or a list of arrays (first dimension = rows of the inputs).
        max_batch: most rows per call (a single job with more rows is run in chunks of ``max_batch``).
        max_wait_ms: how long the first job of a batch waits for others (0: only those already queued).
        observe: ``observe(rows, jobs, seconds)`` after every call (metrics).
    """

    def __init__(self, runner, max_batch=8, max_wait_ms=5.0, observe=None, name="model"):
        self.runner, self.max_batch, self.max_wait = runner, max(1, int(max_batch)), max(0.0, max_wait_ms) / 1000
        self.backend = getattr(runner, "backend", None)
        self.observe = observe
        self.q = queue.Queue()
        self.calls = self.rows = 0
        self._stop = False
        self.thread = threading.Thread(target=self._loop, name="batcher-" + name, daemon=True)
        self.thread.start()

    def depth(self):
        """Jobs waiting for the model."""
        return self.q.qsize()

    def submit(self, *inputs, deadline=None):
        """Queue one call; returns a Future of its outputs (``deadline``: a ``time.monotonic()`` value)."""
        if self._stop:
            raise RuntimeError("the batcher is closed")
        job = _Job(inputs, deadline)
        self.q.put(job)
        return job.future

    def __call__(self, *inputs):
        return self.submit(*inputs).result()

    def close(self):
        self._stop = True
        self.q.put(None)
        self.thread.join(10)

    def _loop(self):
        carry = None
        while True:
            job = carry if carry is not None else self.q.get()
            carry = None
            if job is None:
                return
            batch, rows = [job], job.rows
            if job.key is not None:
                end = time.monotonic() + self.max_wait
                while rows < self.max_batch:
                    try:
                        left = end - time.monotonic()
                        nxt = self.q.get(timeout=left) if left > 0 else self.q.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None or nxt.key != job.key or rows + nxt.rows > self.max_batch:
                        carry = nxt
                        break
                    batch.append(nxt)
                    rows += nxt.rows
            self._run(batch)
            if carry is None and self._stop:
                return

    def _run(self, batch):
        now = time.monotonic()
        live = []
        for job in batch:
            if not job.future.set_running_or_notify_cancel():
                continue                                       # cancelled: its client went away
            if job.deadline is not None and now > job.deadline:
                job.future.set_exception(DeadlineExceeded("the deadline passed while queued"))
                continue
            live.append(job)
        if not live:
            return
        t0 = time.perf_counter()
        try:
            if live[0].key is None:
                outs = [self.runner(*live[0].inputs)]
            else:
                x = np.concatenate([j.inputs[0] for j in live]) if len(live) > 1 else live[0].inputs[0]
                parts = [self.runner(x[k:k + self.max_batch]) for k in range(0, len(x), self.max_batch)]
                whole = _concat(parts)
                outs, start = [], 0
                for j in live:
                    outs.append(_rows(whole, start, start + j.rows))
                    start += j.rows
        except BaseException as e:  # noqa: BLE001  (every waiting caller gets the model's error)
            for j in live:
                j.future.set_exception(e)
            return
        self.calls += 1
        self.rows += sum(j.rows for j in live)
        if self.observe is not None:
            self.observe(sum(j.rows for j in live), len(live), time.perf_counter() - t0)
        for j, out in zip(live, outs):
            j.future.set_result(out)


def _concat(parts):
    if isinstance(parts[0], (list, tuple)):
        return [np.concatenate([np.asarray(p[i]) for p in parts]) for i in range(len(parts[0]))]
    return np.concatenate([np.asarray(p) for p in parts])


def _rows(out, a, b):
    return [o[a:b] for o in out] if isinstance(out, list) else out[a:b]
