"""Model registry: a plain dict from ``MODEL.name`` to a constructor taking the MODEL section."""
from ..config import input_channels
from ..errors import UserError
from .ava import SlowFastAVA
from .i3d import I3D, I3DTwoStream
from .mobilenet_v2 import TSMMobileNetV2
from .resnet import ResNet
from .slowfast import SlowFast
from .stnet import StNet
from .tsm import TSM, TSN


def trunk_options(m):
    """The ResNet trunk options of a MODEL section (see :class:`ResNet`)."""
    return {"stem": m.stem, "width": m.width, "blocks": m.blocks or None}


MODELS = {
    "TSN": lambda m: TSN(m.num_classes, m.num_layers, m.seglen, m.dropout_ratio, 0.0, m.zero_init_residual,
                         **trunk_options(m)),
    "TSM": lambda m: (TSMMobileNetV2(m.num_classes, m.shift_ratio, m.shift_mode) if m.backbone == "mobilenet_v2"
                      else TSM(m.num_classes, m.num_layers, m.seglen, m.dropout_ratio, m.shift_ratio,
                               m.zero_init_residual, shift_mode=m.shift_mode, **trunk_options(m))),
    "STNET": lambda m: StNet(m.num_classes, m.num_layers, m.seglen, **trunk_options(m)),
    "I3D": lambda m: (I3DTwoStream(m.num_classes, m.dropout_ratio, m.pool_size or (2, 7, 7)) if m.format == "rgb_flow"
                      else I3D(m.num_classes, input_channels(m.format), m.dropout_ratio, m.pool_size or (2, 7, 7))),
    "SLOWFAST": lambda m: SlowFast(m.num_classes, m.num_layers, m.width, m.alpha, m.beta, m.fusion_kernel,
                                   m.pool_size or None, m.dropout_ratio, m.blocks or None),
    "SLOWFAST_AVA": lambda m: SlowFastAVA(m.num_classes, m.num_layers, m.width, m.alpha, m.beta, m.fusion_kernel,
                                          m.dropout_ratio, m.blocks or None),
}
ALIASES = {"AVA_SLOWFAST_FASTRCNN": "SLOWFAST_AVA"}     # PaddleVideo's export name
# the class behind each name, for what the family declares (``task``, ``onnx_opset``) before it is built
CLASSES = {"TSN": TSN, "TSM": TSM, "STNET": StNet, "I3D": I3D, "SLOWFAST": SlowFast, "SLOWFAST_AVA": SlowFastAVA}


def model_name(cfg):
    """``MODEL.name`` upper-cased, aliases resolved."""
    name = str(cfg.MODEL.name).upper()
    return ALIASES.get(name, name)


def task_of(cfg):
    """``classification`` or ``detection``: what the family's batches, loss and metrics are (a model class's
    ``task`` attribute; the engine's :mod:`~paddlevideo.tasks` owns each)."""
    return getattr(CLASSES.get(model_name(cfg)), "task", "classification")


def onnx_opset(cfg):
    """The ONNX opset the family exports with (RoIAlign's aligned mode needs 16; the rest use 13)."""
    return getattr(CLASSES.get(model_name(cfg)), "onnx_opset", 13)


def build_model(cfg):
    """Build the network named by ``cfg.MODEL.name``; a ``paddle.nn.Layer`` that maps
    ``[N, seg_num, 3*seglen, H, W]`` to logits ``[N, num_classes]``."""
    name = model_name(cfg)
    if name not in MODELS:
        raise UserError("unknown model {!r} (MODEL.name / --model_name); available: {}".format(
            cfg.MODEL.name, ", ".join(sorted(MODELS))))
    if cfg.MODEL.num_layers not in (18, 34, 50, 101):
        raise UserError("MODEL.num_layers {} is not supported; use 18, 34, 50 or 101".format(
            cfg.MODEL.num_layers))
    m = cfg.MODEL
    if m.width < 1:
        raise UserError("MODEL.width must be >= 1 (got {})".format(m.width))
    if name in ("SLOWFAST", "SLOWFAST_AVA"):
        if m.num_layers not in (50, 101) or m.seglen != 1 or m.width % m.beta or m.alpha < 1:
            raise UserError("SlowFast needs MODEL.num_layers 50 or 101, seglen 1 (seg_num = the fast pathway's "
                            "frames) and a width divisible by beta (got {}, {}, {}/{})".format(
                                m.num_layers, m.seglen, m.width, m.beta))
        if m.pool_size and len(m.pool_size) != 3:
            raise UserError("MODEL.pool_size must be [T, H, W] of the fast pathway's pool, or [] for global "
                            "pooling (got {})".format(m.pool_size))
    if name == "I3D" and (m.seglen != 1 or (m.pool_size and len(m.pool_size) != 3)):
        raise UserError("I3D needs MODEL.seglen 1 (seg_num = the clip's frames) and pool_size [kT, kH, kW] or [] "
                        "for the reference's [2, 7, 7] (got seglen {}, pool_size {})".format(m.seglen, m.pool_size))
    if m.backbone != "resnet" and (name != "TSM" or m.seglen != 1):
        raise UserError("MODEL.backbone {} is a TSM trunk for one frame per segment: use it with MODEL.name TSM and "
                        "seglen 1 (got {}, seglen {})".format(m.backbone, name, m.seglen))
    if m.blocks and (len(m.blocks) != 4 or min(m.blocks) < 1):
        raise UserError("MODEL.blocks must be 4 positive block counts, one per stage, e.g. [2, 2, 2, 2] "
                        "(got {}); leave it empty for the depth's own".format(m.blocks))
    return MODELS[name](m)


__all__ = ["MODELS", "CLASSES", "build_model", "model_name", "task_of", "onnx_opset", "SlowFastAVA", "I3D", "ResNet",
           "SlowFast", "StNet", "TSM", "TSN"]
