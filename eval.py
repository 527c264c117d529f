"""Evaluate a video model: python eval.py --model_name TSM --config configs/tsm.yaml --weights W."""
from paddlevideo.cli import configure_process  # noqa: E402
configure_process()   # threads before paddle is imported
from paddlevideo.cli import add_backend_args, base_parser, config_from_args
from paddlevideo.errors import run_cli


def main(argv):
    p = base_parser(__doc__, config_required=False)
    p.add_argument("--weights", default=None, help="weights to evaluate (default: MODEL.weights)")
    p.add_argument("--filelist", default=None, help="list to evaluate (overrides TEST.filelist)")
    p.add_argument("--resume", action="store_true",
                   help="finish an interrupted evaluation of the same list and --save_dir: videos with a line in "
                        "NAME_predictions.json.parts/ are not run again")
    p.add_argument("--capacity", type=int, default=None,
                   help="detection: detections kept per keyframe when scoring (overrides TEST.capacity; default 50 = "
                        "the official ActivityNet evaluation, 0 = every row as PaddleVideo/mmaction2 score)")
    add_backend_args(p)
    args = p.parse_args(argv)
    if args.filelist:
        args.override.append("TEST.filelist={}".format(args.filelist))
    if args.capacity is not None:
        args.override.append("TEST.capacity={}".format(args.capacity))
    cfg = config_from_args(args, "test")
    from paddlevideo.apps.evaluate import evaluate
    evaluate(cfg, cfg.MODEL.name, weights=args.weights, save_dir=args.save_dir or "./output",
             log_interval=args.log_interval, skip_bad_lines=args.skip_bad_lines, cache_dir=args.cache_dir,
             backend=args.backend, cpu_threads=args.cpu_threads, exported=args.exported,
             resume=args.resume)
    return 0


if __name__ == "__main__":
    run_cli(main)
