"""Serve models over HTTP: python serve.py [--models FILE] [--host 127.0.0.1] [--port 8080] (bash run.sh serve).

The /v1 API (clips, streams, events), the web page at /, /docs, /healthz, /readyz, /metrics; see README "Serving".
"""
from paddlevideo.cli import configure_process  # noqa: E402
configure_process()   # threads before paddle is imported
import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from paddlevideo.config import PROJECT_ROOT  # noqa: E402
from paddlevideo.errors import UserError, run_cli  # noqa: E402


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UserError("serve.py: {} (see --help)".format(message))


def main(argv):
    p = _Parser(description=__doc__)
    p.add_argument("--models", default=None, metavar="FILE",
                   help="YAML: name: {weights | exported | config, backend, precision, max_batch, max_wait_ms, "
                        "max_queue, timeout_s, threads, overrides, detector} (default: the demos' models under "
                        "--output_root)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--token", default=os.environ.get("PADDLEVIDEO_TOKEN"),
                   help="require Authorization: Bearer TOKEN on every route but /healthz (default "
                        "$PADDLEVIDEO_TOKEN; unset: no token)")
    p.add_argument("--data_root", action="append", default=[], metavar="DIR",
                   help="a folder whose files requests may name ({\"path\"} and file stream sources); repeatable")
    p.add_argument("--db", default=os.path.join(PROJECT_ROOT, "output", "serve", "events.db"),
                   help="the events database (SQLite; default output/serve/events.db)")
    p.add_argument("--output_root", default=os.path.join(PROJECT_ROOT, "output"),
                   help="where the demos' models are looked for without --models (default output/)")
    p.add_argument("--max_upload_mb", type=float, default=200.0, help="largest upload (default 200 MB): 413 above")
    p.add_argument("--decode_workers", type=int, default=None, help="threads decoding uploads (default: the cores)")
    p.add_argument("--max_streams", type=int, default=32, help="streams open at once (default 32): 503 above")
    p.add_argument("--retention_days", type=float, default=30.0, help="events older than this are deleted (30)")
    p.add_argument("--retention_count", type=int, default=100000, help="at most this many events are kept")
    p.add_argument("--cache_dir", default=None, help="the weights/export cache (default $PADDLEVIDEO_WEIGHTS_HOME)")
    p.add_argument("--debug", action="store_true", help="tracebacks for errors")
    args = p.parse_args(argv)
    from paddlevideo.serving.models import default_models, read_models
    specs = read_models(args.models) if args.models else default_models(args.output_root)
    for d in args.data_root:
        if not os.path.isdir(d):
            raise UserError("--data_root {} is not a folder".format(d))
    import uvicorn
    from paddlevideo.serving.app import Server, create_app
    print("[SERVE] loading {} model(s): {}".format(len(specs), ", ".join(specs)), file=sys.stderr, flush=True)
    server = Server(specs, args.db, args.data_root, args.token, args.max_upload_mb, args.decode_workers,
                    args.max_streams, args.retention_days, args.retention_count, args.cache_dir)
    try:
        app = create_app(server)
        print("[SERVE] http://{}:{}/ (API /v1, docs /docs){}".format(
            args.host, args.port, "; token required" if args.token else ""), file=sys.stderr, flush=True)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5)
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    run_cli(main)
