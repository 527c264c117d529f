"""Model registry: a plain dict from ``MODEL.name`` to a constructor taking the MODEL section."""
from ..errors import UserError
from .resnet import ResNet
from .stnet import StNet
from .tsm import TSM, TSN

MODELS = {
    "TSN": lambda m: TSN(m.num_classes, m.num_layers, m.seglen, m.dropout_ratio, 0.0, m.zero_init_residual),
    "TSM": lambda m: TSM(m.num_classes, m.num_layers, m.seglen, m.dropout_ratio, m.shift_ratio,
                         m.zero_init_residual),
    "STNET": lambda m: StNet(m.num_classes, m.num_layers, m.seglen),
}


def build_model(cfg):
    """Build the network named by ``cfg.MODEL.name``; a ``paddle.nn.Layer`` that maps
    ``[N, seg_num, 3*seglen, H, W]`` to logits ``[N, num_classes]``."""
    name = str(cfg.MODEL.name).upper()
    if name not in MODELS:
        raise UserError("unknown model {!r} (MODEL.name / --model_name); available: {}".format(
            cfg.MODEL.name, ", ".join(sorted(MODELS))))
    if cfg.MODEL.num_layers not in (18, 34, 50, 101):
        raise UserError("MODEL.num_layers {} is not supported; use 18, 34, 50 or 101".format(
            cfg.MODEL.num_layers))
    return MODELS[name](cfg.MODEL)


__all__ = ["MODELS", "build_model", "ResNet", "StNet", "TSM", "TSN"]
