"""Predict the action in videos: python predict.py --video_path clip.mp4 (TSM, configs/tsm.yaml)."""
from paddlevideo.cli import configure_process  # noqa: E402
configure_process()   # threads before paddle is imported
from paddlevideo.cli import add_backend_args, base_parser, config_from_args
from paddlevideo.errors import UserError, run_cli


def main(argv):
    p = base_parser(__doc__, config_required=False)   # the model: MODEL.name of the config
    p.add_argument("--weights", default=None, help="weights (default: MODEL.weights of the config)")
    p.add_argument("--video_path", default=None, help="one video file")
    p.add_argument("--filelist", default=None, help="a list of videos (overrides INFER.filelist)")
    p.add_argument("--infer_topk", type=int, default=None, help="how many classes to show (default MODEL.topk)")
    p.add_argument("--output", default=None, help="write the results as JSON here")
    p.add_argument("--features", default=None, metavar="DIR",
                   help="instead of classes, write each video's pooled pre-classifier feature to DIR/<name>.npy "
                        "plus DIR/features.json (an index); with --output the predictions are written there too")
    p.add_argument("--window", type=float, default=None, metavar="SEC",
                   help="long video: score sliding windows of SEC seconds over --video_path (a timeline)")
    p.add_argument("--stride", type=float, default=None, metavar="SEC",
                   help="seconds between windows (default: --window); detection: between keyframes (default 1)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="timeline segments join windows whose top-1 probability is at least this; detection: "
                        "actions with at least this score are reported (default 0.5)")
    p.add_argument("--render", default=None, metavar="OUT.mp4",
                   help="timeline/detection: write a copy of the video with the labels (and boxes)")
    p.add_argument("--proposals", default=None, metavar="FILE",
                   help="detection: person boxes per keyframe, a pickle/JSON {'<video stem>,<seconds %%04d>': "
                        "[[x1, y1, x2, y2, score], ...]} (normalised); keys are whole seconds: a keyframe between "
                        "two (--stride 0.5: 1.5 s) reads no key and takes --detector's boxes if given, else none; "
                        "default: the person detector")
    p.add_argument("--detector", default=None, metavar="MODULE:ATTR",
                   help="detection/live: person boxes from MODULE:ATTR (a callable frame -> [n, 5] pixel boxes + "
                        "score), ppdet:DIR|URL[#md5=HEX] (a PaddleDetection exported model, e.g. PP-Human's pedestrian "
                        "detector), or by default OpenCV's HOG people detector (finds nobody in close-ups or seated)")
    p.add_argument("--resume", action="store_true",
                   help="finish an interrupted run with the same list and --output/--features: videos already "
                        "written are not run again")
    p.add_argument("--online", action="store_true",
                   help="stream --source through an online TSM (MODEL.shift_mode: online) one frame at a time")
    p.add_argument("--source", default=None, help="online: a camera index (0), rtsp://... or http://..., or a file")
    p.add_argument("--every", type=int, default=1, help="online: process every K-th frame (default 1)")
    p.add_argument("--smooth", type=int, default=12,
                   help="online: the smoothed label is the arg-max of the summed logits of the last N steps (12)")
    p.add_argument("--reconnect", type=int, default=3, help="online: reopen a stopped network stream up to N times")
    p.add_argument("--live", action="store_true",
                   help="the live pipeline on --source with a detection model: person tracks and per-person action "
                        "events (see --events, --zones, --realtime; LIVE section of the config)")
    p.add_argument("--events", default=None, metavar="OUT.jsonl",
                   help="live: the events, one JSON object per line ('-' or unset: stdout)")
    p.add_argument("--zones", default=None, metavar="FILE",
                   help="live: a JSON/YAML list of polygons [[x, y], ...] (pixels); only persons whose box's bottom "
                        "centre lies in one count")
    p.add_argument("--realtime", action="store_true", help="live: read a file at its own fps instead of full speed")
    add_backend_args(p)
    args = p.parse_args(argv)
    cfg = config_from_args(args, "infer", default="configs/tsm.yaml")
    if args.live:
        from paddlevideo.apps.live import live_cli
        return live_cli(cfg, args)
    if args.online:
        if args.source is None:
            raise UserError("--online needs --source: a camera index (0), rtsp://... / http://..., or a video file")
        from paddlevideo.apps.stream import run_stream
        run_stream(cfg, args.source, args.weights, args.backend, args.every, args.smooth, args.output, args.render,
                   args.infer_topk or 5, args.reconnect, args.cache_dir, args.cpu_threads)
        return 0
    from paddlevideo.tasks import task_for
    return task_for(cfg).predict_app(cfg, args)      # top-k / timeline / features, or detection per keyframe


if __name__ == "__main__":
    run_cli(main)
