"""Prometheus metrics of one server (its own registry, so several apps in one process never mix):
requests by route and status, request latency, batch sizes and model-call seconds, requests in flight and queued
per model, events stored, and per stream fps in/out, dropped frames, reconnects and latency (read at scrape time).
"""
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("pv_requests", "HTTP requests by route template, method and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("pv_request_seconds", "HTTP request latency by route template", ["route"],
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60), registry=r)
        self.batch_rows = Histogram("pv_batch_rows", "model input rows (clips) per model call", ["model"],
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.batch_jobs = Histogram("pv_batch_requests", "requests coalesced per model call", ["model"],
                                    buckets=(1, 2, 4, 8, 16, 32), registry=r)
        self.model_seconds = Histogram("pv_model_call_seconds", "seconds per model call", ["model"],
                                       buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10), registry=r)
        self.rejected = Counter("pv_rejected", "requests answered 503 because the model's queue was full", ["model"],
                                registry=r)
        self.server = None
        r.register(_Live(self))

    def observer(self, model):
        rows, jobs, secs = (self.batch_rows.labels(model), self.batch_jobs.labels(model),
                            self.model_seconds.labels(model))

        def observe(n_rows, n_jobs, seconds):
            rows.observe(n_rows)
            jobs.observe(n_jobs)
            secs.observe(seconds)
        return observe

    def text(self):
        return generate_latest(self.registry)


class _Live:
    """Values read from the running server at scrape time."""

    def __init__(self, metrics):
        self.metrics = metrics

    def collect(self):
        server = self.metrics.server
        if server is None:
            return
        inflight = GaugeMetricFamily("pv_model_inflight", "requests admitted and not yet answered", labels=["model"])
        queued = GaugeMetricFamily("pv_model_queue_depth", "calls waiting for the model", labels=["model"])
        for name, m in server.models.items():
            inflight.add_metric([name], m.inflight)
            queued.add_metric([name], m.batcher.depth())
        yield inflight
        yield queued
        fams = {k: GaugeMetricFamily("pv_stream_" + k, doc, labels=["stream", "model"]) for k, doc in (
            ("fps_in", "frames per second read (last 2 s)"), ("fps_out", "frames per second processed (last 2 s)"),
            ("latency_p50_ms", "frame-to-label latency, median"), ("latency_p99_ms", "frame-to-label latency, p99"))}
        dropped = CounterMetricFamily("pv_stream_dropped_frames", "frames dropped (the pipeline was behind)",
                                      labels=["stream", "model"])
        reconnects = CounterMetricFamily("pv_stream_reconnects", "reconnect attempts", labels=["stream", "model"])
        for s in server.streams.list():
            key = [s["id"], s["model"]]
            fams["fps_in"].add_metric(key, s["fps_in"])
            fams["fps_out"].add_metric(key, s["fps_out"])
            fams["latency_p50_ms"].add_metric(key, s["latency_ms_p50"] or 0)
            fams["latency_p99_ms"].add_metric(key, s["latency_ms_p99"] or 0)
            dropped.add_metric(key, s["dropped"])
            reconnects.add_metric(key, s["reconnects"])
        yield from fams.values()
        yield dropped
        yield reconnects
        if server.store is not None:
            ev = GaugeMetricFamily("pv_events_stored", "events in the store")
            ev.add_metric([], server.store.count())
            yield ev
