"""Train a video model: python train.py --model_name TSM --config configs/tsm.yaml [flags]."""
from paddlevideo.cli import configure_process  # noqa: E402
configure_process()   # threads before paddle is imported
from paddlevideo.cli import base_parser, config_from_args, str2bool
from paddlevideo.errors import run_cli


def main(argv):
    p = base_parser(__doc__)
    p.add_argument("--learning_rate", type=float, default=None, help="overrides TRAIN.learning_rate")
    p.add_argument("--epoch", type=int, default=None, help="number of epochs (overrides TRAIN.epoch)")
    p.add_argument("--pretrain", default=None,
                   help="weights to initialise from (default: MODEL.pretrain); 'none' = from scratch")
    p.add_argument("--resume", default=None,
                   help="checkpoint to continue (NAME_epochN.pdparams), 'auto' = latest in --save_dir; "
                        "a params-only file starts a fine-tune")
    p.add_argument("--valid_interval", type=int, default=1, help="validate every N epochs (0 = never)")
    p.add_argument("--fix_random_seed", type=str2bool, default=False, help="reproducible run (TRAIN.seed)")
    p.add_argument("--vdl_dir", default=None,
                   help="also write VisualDL scalars here (needs 'pip install visualdl'; view: visualdl --logdir DIR)")
    args = p.parse_args(argv)
    cfg = config_from_args(args, "train")
    from paddlevideo.training.loop import train
    train(cfg, cfg.MODEL.name, save_dir=args.save_dir or "./checkpoints", pretrain=args.pretrain,
          resume=args.resume, valid_interval=args.valid_interval, log_interval=args.log_interval,
          fix_random_seed=args.fix_random_seed, skip_bad_lines=args.skip_bad_lines,
          cache_dir=args.cache_dir, vdl_dir=args.vdl_dir)
    return 0


if __name__ == "__main__":
    run_cli(main)
