"""Export a model for Paddle Inference: python export.py --model_name TSM --config configs/tsm.yaml --weights W."""
import os

from paddlevideo.cli import configure_process  # noqa: E402
configure_process()   # threads before paddle is imported
from paddlevideo.cli import add_precision_args, base_parser, config_from_args
from paddlevideo.errors import run_cli


def main(argv):
    p = base_parser(__doc__, config_required=False)
    p.add_argument("--weights", default=None, help="weights to export (default: MODEL.weights)")
    p.add_argument("--mode", default="infer", choices=["infer", "test"],
                   help="whose seg_num/seglen/target_size fix the input shape (default infer)")
    add_precision_args(p)
    args = p.parse_args(argv)
    cfg = config_from_args(args, args.mode)
    from paddlevideo import build_model, load_weights
    from paddlevideo.config import save_config
    from paddlevideo.runtime.backends import export_model, int8_model, to_onnx
    from paddlevideo.tasks import task_for
    from paddlevideo.models import onnx_opset
    from paddlevideo.runtime.batches import resolve_weights
    w = resolve_weights(cfg, args.weights, args.cache_dir)
    model = build_model(cfg)
    load_weights(model, w)
    specs = task_for(cfg).input_specs(cfg.mode(args.mode))
    prefix = os.path.join(args.save_dir or "./inference", cfg.MODEL.name)
    export_model(model, prefix, specs)
    save_config(cfg, prefix + ".yaml", "written by export.py")
    print("[EXPORT] {} -> {}.{{json,pdiparams}} with input {} (use predict.py --exported {})".format(
        w, prefix, ", ".join("{} {}".format(s.name, [d if d and d > 0 else None for d in s.shape]) for s in specs),
        prefix))
    m = cfg.mode(args.mode)
    if m.precision == "int8":     # the ONNX model and its int8 version beside it (predict.py --exported P --precision int8)
        q = int8_model(to_onnx(prefix, onnx_opset(cfg)), m, cfg.mode("valid").filelist, cfg)
        print("[EXPORT] int8 (ONNX Runtime QDQ): {} (use predict.py --exported {} --precision int8 --calibration "
              "<the same list>)".format(q, prefix))
    elif m.precision == "bf16":
        print("[EXPORT] bf16 is chosen when the model runs: predict.py --exported {} --precision bf16".format(prefix))
    return 0


if __name__ == "__main__":
    run_cli(main)
