"""The HTTP service (FastAPI on uvicorn): the ``/v1`` API, the web page, health, readiness and metrics.

Request path of a clip: upload (or a path under ``--data_root``) → admission (at most ``max_queue`` requests of a
model in flight, else **503** with ``Retry-After`` at once) → decoding in a thread pool outside the event loop
(a file that is not a decodable video: **422**) → the model's :class:`~.batcher.Batcher` (coalesced with other
requests up to ``max_batch`` clips, waiting at most ``max_wait_ms``) → ``predict.py``'s JSON.  Past ``timeout_s``:
**504**; a client that disconnects cancels its queued work; an upload over ``--max_upload_mb``: **413**; an unknown
model, stream or route: **404**; a bad parameter: **400**; request headers over 32 KB: **431**.  Every error body
is ``{"error": "<one line>"}``.
With a token (``--token`` or ``PADDLEVIDEO_TOKEN``) every route but ``/healthz`` needs ``Authorization: Bearer
<token>`` (or ``?access_token=<token>``, for the browser's ``<img>`` and ``EventSource``): **401** otherwise.
"""
import asyncio
import hmac
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import UserError
from .batcher import DeadlineExceeded
from .errors import ApiError, data_path
from .metrics import Metrics

MAX_HEADER_BYTES = 32 << 10
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


class Server:
    """What the app serves: models (``{name: ServedModel}``), the event store, the stream manager, the decode pool.

    Args:
        models: ``{name: spec}`` (:func:`~.models.read_models`) — loaded here, in order.
        db: the SQLite file of the events (its folder is created).
        data_roots: folders whose files requests may name (``path``, a stream's file ``source``).
        token: required bearer token (None: none).
        decode_workers: threads decoding uploads (default: the cores).
    """

    def __init__(self, models, db, data_roots=(), token=None, max_upload_mb=200, decode_workers=None,
                 max_streams=32, retention_days=30, retention_count=100000, cache_dir=None, tmp_dir=None):
        from .events import EventStore
        from .models import ServedModel
        from .streams import StreamManager
        self.metrics = Metrics()
        self.data_roots = [os.path.realpath(r) for r in data_roots]
        self.token, self.max_upload = token or None, int(max_upload_mb * 2 ** 20)
        self.pool = ThreadPoolExecutor(decode_workers or os.cpu_count() or 2, thread_name_prefix="decode")
        os.makedirs(os.path.dirname(os.path.abspath(db)), exist_ok=True)
        self.store = EventStore(db, retention_days * 86400 if retention_days else None, retention_count)
        self.tmp_dir = tmp_dir or tempfile.mkdtemp(prefix="pv_serve_")
        self.models = {}
        for name, spec in models.items():
            self.models[name] = ServedModel(name, spec, cache_dir, observe=self.metrics.observer(name))
        self.streams = StreamManager(self.models, self.store, self.data_roots, max_streams)
        self.metrics.server = self
        self.ready = True
        self.loop, self.wake = None, None
        self.store.listeners.append(self._stored)
        self.started = time.time()

    def _stored(self, _id):
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._wake_readers)

    def _wake_readers(self):
        wake, self.wake = self.wake, asyncio.Event()
        wake.set()

    def close(self):
        self.streams.close()
        for m in self.models.values():
            m.close()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.store.close()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)


def _error(status, reason, headers=None):
    return JSONResponse({"error": reason}, status_code=status, headers=headers)


class Guard:
    """ASGI middleware: the token, the upload limit, and the request metrics (route template, status, latency)."""

    def __init__(self, app, server):
        self.app, self.server = app, server

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        server, t0, status = self.server, time.perf_counter(), [500]

        async def sent(msg):
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
            await send(msg)
        try:
            if server.token and scope["path"] != "/healthz" and not self._authorized(scope):
                return await _error(401, "missing or wrong token: send Authorization: Bearer <token>",
                                    {"WWW-Authenticate": "Bearer"})(scope, receive, sent)
            if sum(len(k) + len(v) for k, v in scope["headers"]) > MAX_HEADER_BYTES:
                return await _error(431, "the request headers are larger than {} KB".format(MAX_HEADER_BYTES >> 10))(
                    scope, receive, sent)
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > server.max_upload):
                return await _error(413 if length.isdigit() else 400,
                                    "the body is larger than the server's limit ({} MB, --max_upload_mb)".format(
                                        server.max_upload >> 20) if length.isdigit() else "bad Content-Length")(
                    scope, receive, sent)
            seen = [0]

            async def counted():
                msg = await receive()
                if msg["type"] == "http.request":
                    seen[0] += len(msg.get("body", b""))
                    if seen[0] > server.max_upload:
                        scope["pv.too_large"] = True
                        return {"type": "http.request", "body": b"", "more_body": False}
                return msg
            await self.app(scope, counted, sent)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            server.metrics.requests.labels(path, scope.get("method", ""), str(status[0])).inc()
            server.metrics.latency.labels(path).observe(time.perf_counter() - t0)

    def _authorized(self, scope):
        auth = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        given = auth[7:] if auth.startswith("Bearer ") else None
        if given is None:
            given = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("access_token") or [None])[0]
        return given is not None and hmac.compare_digest(given.encode(), self.server.token.encode())


PREDICT_DOC = {"requestBody": {"content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {"video": {"type": "string",
                                                                                   "format": "binary"}},
                                       "required": ["video"]}},
    "application/json": {"schema": {"type": "object", "properties": {"path": {"type": "string"}},
                                    "required": ["path"]}}}}}


def create_app(server):
    """The FastAPI app of ``server`` (:class:`Server`)."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        server.loop, server.wake = asyncio.get_running_loop(), asyncio.Event()
        yield
    app = FastAPI(title="PaddleVideo serving", version="1", lifespan=lifespan,
                  description="Action recognition and per-person action detection over HTTP: clips, live streams, "
                              "events.  Errors are {\"error\": \"one line\"}.")

    @app.exception_handler(ApiError)
    async def _api_error(request, e):
        return _error(e.status, e.reason, e.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request, e):
        err = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in err.get("loc", ())[1:]) or "request"
        return _error(400, "{}: {}".format(where, err.get("msg", "invalid")))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, e):
        reason = {404: "no such route: {} {}".format(request.method, request.url.path),
                  405: "method {} not allowed on {}".format(request.method, request.url.path)}.get(
            e.status_code, str(e.detail))
        return _error(e.status_code, reason, getattr(e, "headers", None))

    def model_of(name):
        if name not in server.models:
            raise ApiError(404, "no model named {!r} (served: {})".format(name, ", ".join(sorted(server.models))))
        return server.models[name]

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz():
        body = {"ready": server.ready, "models": sorted(server.models)}
        return JSONResponse(body, status_code=200 if server.ready else 503)

    @app.get("/metrics")
    def metrics():
        from prometheus_client import CONTENT_TYPE_LATEST
        return Response(server.metrics.text(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    def models():
        return {"models": [m.describe() for m in server.models.values()]}

    @app.post("/v1/models/{name}/predict", openapi_extra=PREDICT_DOC)
    async def predict(name: str, request: Request, timeline: int = 0, window: float = None, stride: float = None,
                      threshold: float = 0.5, topk: int = None):
        """A video (multipart field ``video``, or JSON ``{"path"}`` under ``--data_root``) → ``predict.py``'s
        JSON for it: ``{"index", "video", "top_k"}`` (recognition), keyframes → persons → actions (detection),
        or with ``timeline=1`` (``window``, ``stride`` seconds) the timeline JSON."""
        model = model_of(name)
        if timeline and (model.task.per_person or not window or window <= 0):
            raise ApiError(400, "timeline=1 needs a recognition model and window=SECONDS > 0" if not
                           model.task.per_person else "timeline=1 is for recognition models; {} detects "
                           "per person (use stride= for keyframes)".format(name))
        if (stride is not None and stride <= 0) or (topk is not None and topk < 1):
            raise ApiError(400, "stride must be > 0 and topk >= 1")
        if not model.admit():
            server.metrics.rejected.labels(name).inc()
            raise ApiError(503, "model {} is busy ({} requests in flight, max_queue); retry shortly".format(
                name, model.spec["max_queue"]), {"Retry-After": "1"})
        tmp = None
        try:
            path, video, tmp = await _input(request, server)
            timeout = model.spec["timeout_s"]
            deadline = time.monotonic() + timeout
            loop = asyncio.get_running_loop()

            async def work():
                if timeline:
                    return await loop.run_in_executor(server.pool, model.timeline, path, video, window, stride,
                                                      threshold, topk)
                if model.task.per_person:
                    return await loop.run_in_executor(server.pool, model.detect, path, video, stride or 1.0,
                                                      threshold)
                views = await loop.run_in_executor(server.pool, model.decode, path)
                out = await asyncio.wrap_future(model.batcher.submit(views, deadline=deadline))
                return model.record(out, video, topk)
            return await _until_done(request, asyncio.ensure_future(work()), deadline, {path: video})
        finally:
            model.release()
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)

    @app.post("/v1/streams", status_code=201)
    def add_stream(body: dict):
        """``{"source", "model", "every"?, "events"?, "webhook"?, "window"?, "stride"?, "buffer"?}`` → ``{"id"}``."""
        st = server.streams.add(body)
        return {"id": st.id, "mode": st.mode, "model": st.model.name, "source": st.source}

    @app.get("/v1/streams")
    def list_streams():
        return {"streams": server.streams.list()}

    @app.get("/v1/streams/{sid}")
    def get_stream(sid: str):
        return server.streams.get(sid).stats()

    @app.delete("/v1/streams/{sid}")
    def delete_stream(sid: str):
        return server.streams.remove(sid)

    @app.get("/v1/streams/{sid}/frame.jpg")
    def frame(sid: str):
        jpg = server.streams.get(sid).jpeg()
        if jpg is None:
            raise ApiError(404, "stream {} has no frame yet".format(sid))
        return Response(jpg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/v1/streams/{sid}/mjpeg")
    async def mjpeg(sid: str, fps: float = 10.0):
        st = server.streams.get(sid)
        period = 1.0 / min(max(fps, 0.5), 30.0)

        async def parts():
            last = None
            while sid in server.streams.streams:
                jpg = st.jpeg()
                if jpg is not None and jpg is not last:
                    last = jpg
                    yield b"--frame\r\nContent-Type: image/jpeg\r\n\r\n" + jpg + b"\r\n"
                if st.state not in ("running",):
                    break
                await asyncio.sleep(period)
        return StreamingResponse(parts(), media_type="multipart/x-mixed-replace; boundary=frame")

    def _filters(stream, action, track, since, until):
        return dict(stream=stream, action=action, track=track, since=since, until=until)

    @app.get("/v1/events")
    def events(stream: str = None, action: str = None, track: int = None, since: float = None, until: float = None,
               after: int = None, limit: int = 100, order: str = "asc"):
        """Stored events (filters: stream id, action name, track id, ``since``/``until`` unix seconds), ``limit``
        per page (≤ 1000) in id order; ``next`` is the ``after`` of the next page (null at the end)."""
        if not 1 <= limit <= 1000 or order not in ("asc", "desc"):
            raise ApiError(400, "limit must be 1..1000 and order asc or desc")
        rows = server.store.query(after=after, limit=limit + 1, descending=order == "desc",
                                  **_filters(stream, action, track, since, until))
        more = len(rows) > limit
        rows = rows[:limit]
        return {"events": rows, "next": rows[-1]["id"] if more else None}

    @app.get("/v1/events/stream")
    async def events_stream(request: Request, stream: str = None, action: str = None, track: int = None,
                            since: float = None, until: float = None, after: int = None):
        """The events as server-sent events (``id:`` = the event's id; ``Last-Event-ID`` or ``after`` resumes after
        it with no gap); a comment every 15 s keeps the connection open."""
        last = request.headers.get("last-event-id", after)
        try:
            last = int(last) if last is not None else None
        except ValueError:
            raise ApiError(400, "Last-Event-ID must be an event id (an integer)")
        if last is None:                        # a new reader starts with what arrives from now on
            newest = server.store.query(limit=1, descending=True)
            last = newest[0]["id"] if newest else 0
        loop = asyncio.get_running_loop()
        filters = _filters(stream, action, track, since, until)

        async def gen():
            nonlocal last
            yield "retry: 2000\n\n"
            while True:
                wake = server.wake
                rows = await loop.run_in_executor(None, lambda: server.store.query(after=last, limit=200, **filters))
                for e in rows:
                    last = e["id"]
                    yield "id: {}\nevent: {}\ndata: {}\n\n".format(e["id"], e["type"], json.dumps(e))
                if not rows:
                    try:
                        await asyncio.wait_for(wake.wait(), 15)
                    except asyncio.TimeoutError:
                        yield ": keep-alive\n\n"
        return StreamingResponse(gen(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.get("/v1/events/{eid}/snapshot.jpg")
    def snapshot(eid: int):
        jpg = server.store.snapshot(eid)
        if jpg is None:
            raise ApiError(404, "no snapshot for event {}".format(eid))
        return Response(jpg, media_type="image/jpeg")

    @app.get("/", include_in_schema=False)
    def index(request: Request):
        """The web page; opened as ``/?access_token=T`` its assets carry the token too (every route needs it)."""
        with open(os.path.join(STATIC, "index.html")) as f:
            html = f.read()
        token = request.query_params.get("access_token")
        if token:
            from urllib.parse import quote
            for asset in ("static/app.js", "static/style.css"):
                html = html.replace('"{}"'.format(asset), '"{}?access_token={}"'.format(asset, quote(token)))
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(Guard, server=server)
    return app


async def _input(request, server):
    """``(path, name shown as "video", temporary folder or None)`` of a predict request's video."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=1, max_fields=10, max_part_size=1 << 20)
        except Exception as e:  # noqa: BLE001  (a truncated or malformed upload)
            if request.scope.get("pv.too_large"):
                raise ApiError(413, "the upload is larger than the server's limit ({} MB, --max_upload_mb)".format(
                    server.max_upload >> 20))
            raise ApiError(400, "the multipart body cannot be read ({})".format(str(e).splitlines()[0] if str(e)
                                                                                 else type(e).__name__))
        if request.scope.get("pv.too_large"):
            raise ApiError(413, "the upload is larger than the server's limit ({} MB, --max_upload_mb)".format(
                server.max_upload >> 20))
        up = form.get("video")
        if up is None or isinstance(up, str):
            raise ApiError(400, "the multipart body needs a file field named video")
        name = os.path.basename(up.filename or "upload.mp4") or "upload.mp4"
        tmp = tempfile.mkdtemp(dir=server.tmp_dir)
        path = os.path.join(tmp, "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[-100:])

        def save():
            with open(path, "wb") as f:
                shutil.copyfileobj(up.file, f, 1 << 20)
        await asyncio.get_running_loop().run_in_executor(server.pool, save)
        await up.close()
        return path, name, tmp
    if ctype.startswith("application/json"):
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "the JSON body cannot be parsed")
        if request.scope.get("pv.too_large"):
            raise ApiError(413, "the body is larger than the server's limit")
        if not isinstance(body, dict) or not isinstance(body.get("path"), str):
            raise ApiError(400, "the JSON body must be {\"path\": \"FILE under --data_root\"}")
        path = data_path(body["path"], server.data_roots)
        return path, body["path"], None
    raise ApiError(415, "send the video as multipart/form-data (field video) or JSON {\"path\": ...}")


async def _until_done(request, task, deadline, names=None):
    """The task's result; 504 past ``deadline``, cancelled when the client disconnects, the model's errors mapped."""
    from ..data.video import VideoError
    try:
        while True:
            left = deadline - time.monotonic()
            done, _ = await asyncio.wait({task}, timeout=max(0.0, min(0.25, left)))
            if done:
                return task.result()
            if left <= 0:
                task.cancel()
                raise ApiError(504, "no answer within the model's timeout_s")
            if await request.is_disconnected():
                task.cancel()
                raise ApiError(499, "the client disconnected")
    except (VideoError, UserError) as e:
        reason = str(e).splitlines()[0] if str(e) else "no frames"
        for path, name in (names or {}).items():         # the upload's name, not the server's temporary path
            reason = reason.replace(path, name)
        raise ApiError(422, "not a decodable video: {}".format(reason))
    except DeadlineExceeded:
        raise ApiError(504, "no answer within the model's timeout_s (queued too long)")
