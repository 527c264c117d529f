"""What the command-line entry points share: the process set-up (:func:`configure_process`, called first by
train.py, eval.py, predict.py, export.py and the scripts) and flag parsing (legacy flag names)."""
import argparse
import contextlib
import io
import os
import sys
import warnings

from .config import PROJECT_ROOT, load_config, network_differences, validate
from .errors import UserError


def configure_process():
    """Process-wide settings, made by an entry point before Paddle is imported (never by an import of ours).

    Paddle's dynamic graph runs on one CPU thread unless ``OMP_NUM_THREADS`` is set before ``import paddle``
    (TSM-R50 training step measured at 20 s vs 11.7 s on 2 cores): every core, split between the node's processes
    under ``paddle.distributed.launch`` (whose own ``import paddle`` leaves ``OMP_NUM_THREADS=1`` in each worker);
    ``PADDLEVIDEO_THREADS`` overrides both.  Paddle's import-time banner about ``OMP_NUM_THREADS`` and two
    warnings meant for other set-ups are hidden (only they)."""
    warnings.filterwarnings("ignore", message="No ccache found")
    warnings.filterwarnings("ignore", message="When training, we now always track")
    local = int(os.environ.get("PADDLE_LOCAL_SIZE", "0") or 0)
    if os.environ.get("PADDLEVIDEO_THREADS"):
        os.environ["OMP_NUM_THREADS"] = os.environ["PADDLEVIDEO_THREADS"]
    elif local > 1:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // local))
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    if "paddle" not in sys.modules:
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                import paddle  # noqa: F401
        finally:
            sys.stderr.write("".join(line for line in err.getvalue().splitlines(True)
                                     if "OMP_NUM_THREADS" not in line))


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


def base_parser(description, config_required=True):
    """The flags every CLI shares.  ``config_required=False`` (eval/predict/export): ``--config`` may be left out
    when ``--weights``/``--exported`` has the config it was trained with beside it (see :func:`config_from_args`)."""
    p = _Parser(description=description)
    p.add_argument("--model_name", default=None, help="model to use (default: MODEL.name of the config)")
    p.add_argument("--config", default=None, required=config_required,
                   help="YAML config file" + ("" if config_required else
                                              " (default: the one beside --weights / --exported)"))
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
    p.add_argument("--cpu_threads", type=int, default=None, help="CPU threads of the fast backends (default: all cores, split between "
                                                                         "the processes of a --nproc launch)")
    p.add_argument("--exported", default=None, help="prefix of a model written by 'run.sh export' (skips --weights)")
    add_precision_args(p)


def add_precision_args(p):
    p.add_argument("--precision", default=None, choices=["fp32", "bf16", "int8"],
                   help="fp32 (default); int8: post-training static quantization run by onnxruntime (needs "
                        "--calibration); bf16: Paddle Inference with oneDNN bfloat16")
    p.add_argument("--calibration", default=None, metavar="LIST",
                   help="int8: clips whose activations set the quantization ranges (default: VALID.filelist)")
    p.add_argument("--calibration_size", type=int, default=None, help="int8: clips used from --calibration (default 32)")


def _config_path(args, default):
    """``(config to load, config beside the weights or None)``: ``--config``, else the config written beside
    ``--weights`` (``W.yaml``) or ``--exported`` (``P.yaml``), else ``default``."""
    from .config import config_beside
    beside = config_beside(getattr(args, "exported", None)) or config_beside(getattr(args, "weights", None))
    path = args.config or beside or default
    if path is None:
        raise UserError("no --config given and no config beside --weights (W.yaml next to W.pdparams, written by "
                        "train.py); pass --config CONFIG.yaml")
    if not os.path.exists(path) and os.path.exists(os.path.join(PROJECT_ROOT, path)):
        path = os.path.join(PROJECT_ROOT, path)
    return path, beside


def config_from_args(args, mode, default=None):
    """Load the config (``--config``, else the one beside ``--weights``/``--exported``, else ``default``) and
    apply, in order: ``-o`` overrides, then the explicit flags.  An explicit ``--config`` that builds another
    network than the config beside the weights (a :data:`~paddlevideo.config.NETWORK_KEYS` value differs) is an
    error naming the keys and both values."""
    path, beside = _config_path(args, default)
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
    if beside:
        diff = network_differences(load_config(beside, args.override), cfg)
        if diff:
            raise UserError("{} builds another network than the one the weights were trained with ({}: {}; their "
                            "config: {}); drop --config/--model_name to use that config, or fix the keys".format(
                                "--config {}".format(args.config) if args.config else "--model_name",
                                ", ".join(k for k, _, _ in diff), "; ".join(
                                    "MODEL.{} {!r} there, {!r} here".format(k, a, b) for k, a, b in diff), beside))
    return cfg
