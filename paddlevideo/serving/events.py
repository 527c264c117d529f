"""Where the streams' events go: a SQLite store (WAL; survives restarts; a JPEG snapshot per event; retention by
age and count) that also wakes the server-sent-event readers, and per-stream webhooks that never block a pipeline.

Table ``events``: ``id`` (increasing: the SSE id and the pagination cursor), ``stream``, ``type``, ``event_id``,
``track_id``, ``action``, ``action_id``, ``t`` (stream seconds), ``wall`` (unix seconds when stored), ``body`` (the
live pipeline's event JSON, :mod:`paddlevideo.apps.live`), ``snapshot`` (JPEG bytes or NULL).  An event is
acknowledged (its id returned, readers woken) only after its transaction committed, so a killed server keeps every
acknowledged event (tested with ``kill -9``).
"""
import json
import queue
import sqlite3
import threading
import time
import urllib.request

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL, type TEXT NOT NULL, event_id TEXT NOT NULL, track_id INTEGER, action TEXT,
    action_id INTEGER, t REAL, wall REAL NOT NULL, body TEXT NOT NULL, snapshot BLOB);
CREATE INDEX IF NOT EXISTS events_stream ON events (stream, id);
CREATE INDEX IF NOT EXISTS events_action ON events (action, id);
CREATE INDEX IF NOT EXISTS events_wall ON events (wall);
"""


class EventStore:
    """Thread-safe event storage (see the module doc).  ``max_age_s`` / ``max_count``: retention (None: keep)."""

    def __init__(self, path, max_age_s=None, max_count=None):
        self.path, self.max_age_s, self.max_count = path, max_age_s, max_count
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")       # WAL: a process kill loses no committed transaction
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()
        self.listeners = []                                 # callables run after each stored event
        self.added = 0
        self.prune()

    def check(self):
        """``PRAGMA integrity_check``: "ok" for a sound database."""
        with self.lock:
            return self.db.execute("PRAGMA integrity_check").fetchone()[0]

    def add(self, event, stream, snapshot=None):
        """Store one event (the live pipeline's dict); return its id once committed."""
        row = (stream, event["type"], event["event_id"], event.get("track_id"), event.get("action"),
               event.get("action_id"), event.get("t"), time.time(), json.dumps(event), snapshot)
        with self.lock:
            cur = self.db.execute("INSERT INTO events (stream, type, event_id, track_id, action, action_id, t, wall, "
                                  "body, snapshot) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            new_id = cur.lastrowid
            self.added += 1
        if self.added % 200 == 0:
            self.prune()
        for fn in list(self.listeners):
            fn(new_id)
        return new_id

    def prune(self):
        """Apply the retention: events older than ``max_age_s`` and all but the newest ``max_count`` go."""
        with self.lock:
            if self.max_age_s:
                self.db.execute("DELETE FROM events WHERE wall < ?", (time.time() - self.max_age_s,))
            if self.max_count:
                self.db.execute("DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC "
                                "LIMIT 1 OFFSET ?)", (int(self.max_count),))

    def query(self, stream=None, action=None, track=None, since=None, until=None, after=None, limit=100,
              descending=False):
        """Events matching every given filter (``since``/``until``: unix seconds of storage; ``after``: ids above
        it), ``limit`` of them in id order (newest first with ``descending``): ``[dict]`` — the event's fields plus
        ``id``, ``stream``, ``wall``, ``has_snapshot``."""
        where, args = [], []
        for col, v in (("stream", stream), ("action", action), ("track_id", track)):
            if v is not None:
                where.append("{} = ?".format(col))
                args.append(v)
        if since is not None:
            where.append("wall >= ?")
            args.append(since)
        if until is not None:
            where.append("wall <= ?")
            args.append(until)
        if after is not None:
            where.append("id {} ?".format("<" if descending else ">"))
            args.append(after)
        sql = "SELECT id, stream, wall, body, snapshot IS NOT NULL FROM events{} ORDER BY id {} LIMIT ?".format(
            " WHERE " + " AND ".join(where) if where else "", "DESC" if descending else "ASC")
        with self.lock:
            rows = self.db.execute(sql, args + [int(limit)]).fetchall()
        out = []
        for i, stream_id, wall, body, snap in rows:
            e = json.loads(body)
            e.update(id=i, stream=stream_id, wall=round(wall, 3), has_snapshot=bool(snap))
            out.append(e)
        return out

    def snapshot(self, event_id):
        with self.lock:
            row = self.db.execute("SELECT snapshot FROM events WHERE id = ?", (int(event_id),)).fetchone()
        return row[0] if row else None

    def count(self):
        with self.lock:
            return self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def close(self):
        with self.lock:
            self.db.close()


class Webhook:
    """POSTs each event (JSON, with its ``stream``) to ``url`` from its own thread: at most ``attempts`` tries with a
    doubling back-off, ``timeout`` s each; a queue of ``depth`` events (when full the oldest is dropped and counted)
    — the pipeline that emits never waits.  ``sent``, ``failed``, ``dropped`` count the outcomes."""

    def __init__(self, url, attempts=3, timeout=2.0, backoff=0.5, depth=1000):
        self.url, self.attempts, self.timeout, self.backoff = url, attempts, timeout, backoff
        self.q = queue.Queue(maxsize=depth)
        self.sent = self.failed = self.dropped = 0
        self._stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True, name="webhook")
        self.thread.start()

    def __call__(self, event):
        while True:
            try:
                self.q.put_nowait(event)
                return
            except queue.Full:
                try:
                    self.q.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _loop(self):
        while not (self._stop and self.q.empty()):          # a closing webhook still sends what is queued
            try:
                event = self.q.get(timeout=0.2)
            except queue.Empty:
                continue
            data = json.dumps(event).encode()
            for k in range(self.attempts):
                try:
                    req = urllib.request.Request(self.url, data=data, headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(req, timeout=self.timeout) as r:
                        r.read()
                    self.sent += 1
                    break
                except Exception:  # noqa: BLE001  (any failure: retry, then count)
                    if k + 1 == self.attempts:
                        self.failed += 1
                        break
                    time.sleep(self.backoff * 2 ** k)

    def stats(self):
        return {"url": self.url, "sent": self.sent, "failed": self.failed, "dropped": self.dropped}

    def close(self, timeout=5.0):
        """Stop after sending what is queued (at most ``timeout`` seconds)."""
        self._stop = True
        self.thread.join(timeout)
