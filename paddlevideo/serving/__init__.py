"""Serving: the HTTP API and web page (``serve.py``).

``models`` (the served models and their batched runners), ``batcher`` (request coalescing), ``streams`` (live
streams: online, sliding-window and live-pipeline kinds), ``events`` (SQLite store, webhooks), ``metrics``
(Prometheus), ``app`` (FastAPI routes, admission, errors), ``static/`` (the web page).
"""
