"""Flag parsing shared by train.py, eval.py and predict.py (legacy flag names)."""
import argparse
import os

from ..config import PROJECT_ROOT, load_config, validate
from ..errors import UserError


def str2bool(v):
    if isinstance(v, bool):
        return v
    if v.lower() in ("true", "1", "yes", "y"):
        return True
    if v.lower() in ("false", "0", "no", "n"):
        return False
    raise argparse.ArgumentTypeError("expected True or False, got {!r}".format(v))


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, like every other user mistake
        raise UserError("{}: {} (see --help)".format(self.prog, message))


def base_parser(description, model_name=None, config=None):
    p = _Parser(description=description)
    p.add_argument("--model_name", default=model_name, help="model to use (default: MODEL.name of the config)")
    p.add_argument("--config", default=config, required=config is None, help="YAML config file")
    p.add_argument("--batch_size", type=int, default=None, help="batch size per process (overrides the config)")
    p.add_argument("--use_gpu", type=str2bool, default=None, help="True/False (default: the config, else False)")
    p.add_argument("--log_interval", type=int, default=10, help="log every N batches")
    p.add_argument("--save_dir", default=None, help="where outputs go")
    p.add_argument("--skip_bad_lines", action="store_true",
                   help="skip list lines that are malformed or point to missing files (with a warning)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="SECTION.key=value",
                   help="override a config key, e.g. -o TRAIN.epoch=5 (repeatable)")
    p.add_argument("--cache_dir", default=None,
                   help="where downloaded weights go (default $PADDLEVIDEO_WEIGHTS_HOME or ~/.paddle/weights)")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    return p


def add_backend_args(p):
    p.add_argument("--backend", default="auto", choices=["auto", "dygraph", "paddle-inference", "onnxruntime"],
                   help="auto: onnxruntime on CPU (else Paddle Inference + oneDNN), the dynamic graph on GPU")
    p.add_argument("--cpu_threads", type=int, default=None, help="CPU threads of the fast backends (default: all cores)")
    p.add_argument("--exported", default=None, help="prefix of a model written by 'run.sh export' (skips --weights)")
    add_precision_args(p)


def add_precision_args(p):
    p.add_argument("--precision", default=None, choices=["fp32", "bf16", "int8"],
                   help="fp32 (default); int8: post-training static quantization run by onnxruntime (needs "
                        "--calibration); bf16: Paddle Inference with oneDNN bfloat16")
    p.add_argument("--calibration", default=None, metavar="LIST",
                   help="int8: clips whose activations set the quantization ranges (default: VALID.filelist)")
    p.add_argument("--calibration_size", type=int, default=None, help="int8: clips used from --calibration (default 32)")


def config_from_args(args, mode):
    """Load ``args.config`` and apply, in order: ``-o`` overrides, then the explicit flags."""
    path = args.config
    if not os.path.exists(path) and os.path.exists(os.path.join(PROJECT_ROOT, path)):
        path = os.path.join(PROJECT_ROOT, path)
    cfg = load_config(path, args.override)
    section = mode.upper()
    if args.model_name:
        cfg.set("MODEL.name", args.model_name.upper(), "--model_name")
    if args.batch_size is not None:
        cfg.set(section + ".batch_size", args.batch_size, "--batch_size")
    if args.use_gpu is not None:
        for s in ("TRAIN", "VALID", "TEST", "INFER"):
            cfg.set(s + ".use_gpu", args.use_gpu, "--use_gpu")
    for flag in ("precision", "calibration", "calibration_size"):
        if getattr(args, flag, None) is not None:
            for s in ("TEST", "INFER"):
                cfg.set("{}.{}".format(s, flag), getattr(args, flag), "--" + flag)
    for flag, key in (("learning_rate", "learning_rate"), ("epoch", "epoch")):
        if getattr(args, flag, None) is not None:
            cfg.set("TRAIN." + key, getattr(args, flag), "--" + flag)
    validate(cfg, path)
    return cfg
