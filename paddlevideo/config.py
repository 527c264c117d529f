"""YAML configs in the legacy PaddleVideo layout, validated.

A config has the sections MODEL, TRAIN, VALID, TEST and INFER.  MODEL holds what defines the
network (name, num_classes, seg_num, seglen, ...); the mode sections hold reader and optimiser
settings and may override any MODEL key for that mode (e.g. ``TEST.seg_num: 25``).

``load_config(path, overrides=["TRAIN.batch_size=4"])`` returns a :class:`Config`;
``cfg.mode("train")`` gives the flat view a reader or the trainer uses: MODEL keys, overridden
by the TRAIN section.  Unknown sections or keys and wrongly typed values raise a
:class:`~paddlevideo.errors.UserError` naming the key, the file and the closest valid key.
"""
import copy
import difflib
import os

import yaml

from .errors import UserError

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODES = ("train", "valid", "test", "infer")
SECTIONS = ("MODEL", "TRAIN", "VALID", "TEST", "INFER", "LIVE")

FORMATS = ("mp4", "pkl", "frames", "flow", "rgb_flow")


class Key:
    """One config key, declared once: its type (int, float, bool, str, ``"floats"``/``"ints"`` lists, ``"str?"``
    a string or null), default, allowed values, lower bound, whether it defines the network (a checkpoint's config
    that differs on it builds another network), and what it means.  Validation, the network comparison,
    ``NAME.yaml`` and the README's configuration reference (:func:`reference_markdown`) all come from the table."""

    def __init__(self, kind, default, doc, choices=None, minimum=None, network=False):
        self.kind, self.default, self.doc = kind, default, doc
        self.choices, self.minimum, self.network = choices, minimum, network


# MODEL: the network and the reader's defaults for every mode (a mode section may override the reader's ones)
MODEL_TABLE = {
    "name": Key(str, None, "the model family: TSM, TSN, STNET, SLOWFAST, I3D, SLOWFAST_AVA", network=True),
    "format": Key(str, "mp4", "input: mp4 (any video file), pkl (legacy pickles), frames (JPEG folders), flow, "
                  "rgb_flow (RGB + optical flow)", choices=FORMATS, network=True),
    "num_classes": Key(int, 400, "classes of the classifier", minimum=1, network=True),
    "seg_num": Key(int, 8, "segments (frames) per clip; a mode section may change it (e.g. TEST.seg_num: 25)",
                   minimum=1, network=True),
    "seglen": Key(int, 1, "frames per segment (StNet: 5, stacked as channels)", minimum=1, network=True),
    "image_mean": Key("floats", [0.485, 0.456, 0.406], "per-channel mean (3 RGB, 2 flow, 5 RGB + flow)"),
    "image_std": Key("floats", [0.229, 0.224, 0.225], "per-channel standard deviation"),
    "num_layers": Key(int, 50, "ResNet depth: the block type and default block counts", choices=(18, 34, 50, 101),
                      network=True),
    "topk": Key(int, 5, "predictions printed per video", minimum=1),
    "dropout_ratio": Key(float, 0.5, "dropout before the classifier"),
    "shift_ratio": Key(float, 0.125, "TSM: the channels shifted each way", network=True),
    "shift_mode": Key(str, "bidirectional", "TSM: bidirectional (offline) or online (past frames only; per-frame "
                      "logits average to the clip's)", choices=("bidirectional", "online"), network=True),
    "backbone": Key(str, "resnet", "TSM's trunk: resnet or mobilenet_v2 (PP-TSM MobileNetV2)",
                    choices=("resnet", "mobilenet_v2"), network=True),
    "zero_init_residual": Key(bool, False, "start each residual branch's last BatchNorm at zero"),
    "freeze_bn": Key(str, "none", "fine-tuning: BatchNorm statistics frozen in none, all, or all_but_first layers",
                     choices=("none", "all", "all_but_first")),
    "sync_bn": Key(bool, False, "BatchNorm statistics synchronised across GPUs (data parallel)"),
    "stem": Key(str, "imagenet", "imagenet: 7x7/2 conv + max-pool (every published checkpoint); small: 3x3 stride-1 "
                "conv, no pool (low-resolution video: 1/8 instead of 1/32 of the input)",
                choices=("imagenet", "small"), network=True),
    "width": Key(int, 64, "base channels (stage s has width x 2^s, x4 in bottlenecks)", minimum=1, network=True),
    "blocks": Key("ints", [], "blocks per stage, e.g. [2, 2, 2, 2]; [] = the depth's", network=True),
    "sampling": Key(str, "segments", "segments: seg_num segments of seglen frames (TSN/TSM/StNet); dense: one clip "
                    "of seg_num frames frame_interval apart", choices=("segments", "dense")),
    "flow_method": Key(str, "tvl1", "optical flow computed on the fly: tvl1 or farneback",
                       choices=("tvl1", "farneback")),
    "flow_root": Key("str?", None, "rgb_flow: the folder of extract_frames.py --flow output (null: compute now)"),
    "frame_interval": Key(int, 1, "dense sampling: frames between sampled frames", minimum=1),
    "alpha": Key(int, 8, "SlowFast: frame-rate ratio of the pathways", minimum=1, network=True),
    "beta": Key(int, 8, "SlowFast: channel ratio of the pathways", minimum=1, network=True),
    "fusion_kernel": Key(int, 5, "SlowFast: temporal kernel of the lateral connections", minimum=1, network=True),
    "pool_size": Key("ints", [], "SlowFast/I3D head pool [T, H, W]; [] = global", network=True),
    "label_list": Key("str?", os.path.join(PROJECT_ROOT, "data", "dataset", "kinetics400_label_list.txt"),
                      "class names, one per line (null: print class ids)"),
    "label_map": Key("str?", None, "detection: the AVA label-map pbtxt (names and evaluated ids)"),
    "pretrain": Key("str?", None, "weights (path or URL) the trunk starts from when training"),
    "pretrain_md5": Key("str?", None, "md5 of the downloaded pretrain file"),
    "weights": Key("str?", None, "weights (path or URL) for eval/predict when --weights is not given"),
    "weights_md5": Key("str?", None, "md5 of the downloaded weights file"),
}
# TRAIN, VALID, TEST, INFER: the reader and the run (plus any MODEL key the reader uses, for that mode)
READER_TABLE = {
    "short_size": Key(int, 256, "the short side frames are scaled to", minimum=1),
    "target_size": Key(int, 224, "the crop size (<= short_size)", minimum=1),
    "batch_size": Key(int, 1, "clips per batch per process", minimum=1),
    "filelist": Key("str?", None, "the list file (or the AVA GT CSV)"),
    "data_root": Key("str?", None, "relative paths of the list are taken against it (default: the list's folder, "
                     "then the working directory); AVA: the frame folders"),
    "proposal_file": Key("str?", None, "detection: person proposals pickle {\"video,%04d\": [n, 4|5]}"),
    "exclude_file": Key("str?", None, "detection: excluded timestamps CSV (video_id,timestamp)"),
    "capacity": Key(int, 50, "detection evaluation: detections kept per keyframe (50: the official AVA "
                    "evaluation; 0: every row, as PaddleVideo/mmaction2 score)", minimum=0),
    "num_reader_threads": Key(int, 2, "loader worker processes (capped at the core count)", minimum=0),
    "buf_size": Key(int, 1024, "accepted for legacy configs, unused"),
    "use_gpu": Key(bool, False, "run on the GPU"),
    "num_gpus": Key(int, 1, "accepted for legacy configs, unused: the number of processes is --nproc"),
    "flip": Key(bool, True, "TRAIN: random horizontal flip"),
    "multi_scale_crop": Key(bool, True, "TRAIN: TSM's multi-scale crop"),
    "scale_jitter": Key("ints", [], "TRAIN: [min, max] random short side instead of short_size (SlowFast: "
                        "[256, 320])"),
    "decode_timeout": Key(float, 60.0, "seconds one video may take to decode before it counts as broken"),
    "decoder": Key(str, "auto", "video files: auto (the cheapest exact path: PyAV decoding only what the chosen frames "
                   "need, else decord; the same frames as decord) or decord (decord, then OpenCV)",
                   choices=("auto", "decord")),
    "fixed_ratio": Key(bool, False, "the long side to 4/3 of the short one (PP-TSM's test scale)"),
    "num_clips": Key(int, 1, "test views: temporal clips per video", minimum=1),
    "num_crops": Key(int, 1, "test views: spatial crops per clip (1 centre, 3, 10 with flips)", choices=(1, 3, 10)),
    "average": Key(str, "prob", "how views combine: prob (mean softmax) or logit (mean logits)",
                   choices=("prob", "logit")),
    "precision": Key(str, "fp32", "fp32, int8 (ONNX Runtime, calibrated) or bf16 (Paddle Inference + oneDNN)",
                     choices=("fp32", "bf16", "int8")),
    "calibration": Key("str?", None, "int8: the list of calibration clips (default: VALID.filelist)"),
    "calibration_size": Key(int, 32, "int8: calibration clips used", minimum=1),
}
TRAIN_TABLE = {
    "epoch": Key(int, 1, "epochs to train", minimum=0),
    "learning_rate": Key(float, 0.01, "base learning rate"),
    "learning_rate_decay": Key(float, 0.1, "step schedule: the factor at each decay epoch"),
    "decay_epochs": Key("ints", [], "step schedule: the epochs where the rate decays"),
    "l2_weight_decay": Key(float, 1e-4, "L2 weight decay"),
    "momentum": Key(float, 0.9, "Momentum's momentum"),
    "optimizer": Key(str, "momentum", "momentum or adamw", choices=("momentum", "adamw")),
    "lr_schedule": Key(str, "step", "step or cosine", choices=("step", "cosine")),
    "warmup_epochs": Key(float, 0.0, "linear warm-up epochs"),
    "total_videos": Key(int, 0, "legacy, informational"),
    "clip_norm": Key(float, 0.0, "gradient clipping by global norm (0: off)"),
    "fix_random_seed": Key(bool, False, "seed every random stream from seed (bit-identical reruns and resumes)"),
    "accumulate_steps": Key(int, 1, "batches accumulated per optimizer step", minimum=1),
    "amp": Key("str?", None, "GPU mixed precision: null, O1 or O2", choices=(None, "O1", "O2")),
    "seed": Key(int, 0, "the seed with fix_random_seed", minimum=0),
}
# LIVE: the live pipeline (predict.py --live): keyframes, tracking, per-person action events
LIVE_TABLE = {
    "stride": Key(float, 0.5, "seconds between keyframes (person boxes, tracking and the action model)", minimum=0.05),
    "buffer": Key(int, 30, "frames a live source may queue while the pipeline is busy; older ones are dropped and "
                  "counted", minimum=1),
    "track_thresh": Key(float, 0.5, "tracking: detections at least this score are the high set", minimum=0.0),
    "new_track_thresh": Key(float, 0.6, "tracking: the score a detection needs to start a track", minimum=0.0),
    "match_iou": Key(float, 0.2, "tracking: least IoU of a track's predicted box and a detection", minimum=0.0),
    "min_hits": Key(int, 2, "tracking: keyframes in a row with a box before a track is born (gets its id)",
                    minimum=1),
    "max_misses": Key(int, 4, "tracking: keyframes without a box before a track ends", minimum=0),
    "smooth": Key(float, 0.6, "weight of the newest keyframe in a track's smoothed action scores (1: none)",
                  minimum=0.0),
    "threshold": Key(float, 0.5, "an event starts when a smoothed score stays at least this", minimum=0.0),
    "thresholds": Key("floats", [], "per-class thresholds by action id (index 0 unused); [] = threshold for all"),
    "hysteresis": Key(float, 0.15, "an event ends when its score stays below threshold - hysteresis", minimum=0.0),
    "min_duration": Key(float, 0.5, "seconds a score must stay above the threshold before an event starts",
                        minimum=0.0),
    "hold": Key(float, 1.0, "seconds a score must stay below threshold - hysteresis before an event ends",
                minimum=0.0),
    "update_interval": Key(float, 1.0, "seconds of stream time between an active event's update messages",
                           minimum=0.1),
}
# the views that older code reads: key -> (type, default)
MODEL_KEYS = {k: (v.kind, v.default) for k, v in MODEL_TABLE.items()}
READER_KEYS = {k: (v.kind, v.default) for k, v in READER_TABLE.items()}
TRAIN_KEYS = {k: (v.kind, v.default) for k, v in TRAIN_TABLE.items()}
LIVE_KEYS = {k: (v.kind, v.default) for k, v in LIVE_TABLE.items()}
ALL_KEYS = dict(MODEL_TABLE, **READER_TABLE, **TRAIN_TABLE)

# keys holding a file or folder: a relative value is resolved when it is read — against the folder of the config
# file that names it, against the current directory for a command-line override — and kept absolute, so a config
# (and a checkpoint's NAME.yaml) means the same files from any directory
PATH_KEYS = ("label_list", "label_map", "filelist", "data_root", "proposal_file", "exclude_file", "flow_root",
             "calibration", "pretrain", "weights")


def absolute_path(value, base):
    """``value`` (a config path) made absolute against the folder ``base``; None, URLs, ``none`` and absolute
    paths unchanged."""
    if not isinstance(value, str) or not value or "://" in value or value.lower() == "none":
        return value
    return os.path.normpath(os.path.join(base, os.path.expanduser(value)))


def input_channels(fmt):
    """Channels per frame of an input format: 2 for flow, 5 for RGB + flow, else 3 (RGB)."""
    return {"flow": 2, "rgb_flow": 5}.get(fmt, 3)


def _schema(section):
    if section == "MODEL":
        return MODEL_KEYS
    if section == "LIVE":
        return LIVE_KEYS
    keys = dict(MODEL_KEYS)
    keys.update(READER_KEYS)
    if section == "TRAIN":
        keys.update(TRAIN_KEYS)
    return keys


def _closest(word, choices):
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.0)
    return match[0] if match else None


def _coerce(value, kind, where):
    """Check ``value`` against ``kind``; return it converted (ints to floats, '1e-4' to float)."""
    def bad():
        raise UserError("{}: expected {}, got {!r}".format(where, _kind_name(kind), value))

    if value is None:
        if kind == "str?":
            return None
        bad()
    if kind == "str?" or kind is str:
        if isinstance(value, str):
            return value
        bad()
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        bad()
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        bad()
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        bad()
    if kind in ("floats", "ints"):
        if not isinstance(value, (list, tuple)):
            bad()
        inner = float if kind == "floats" else int
        return [_coerce(v, inner, where) for v in value]
    raise AssertionError(kind)


def _kind_name(kind):
    return {"floats": "a list of numbers", "ints": "a list of integers", "str?": "a string or null",
            int: "an integer", float: "a number", bool: "true/false", str: "a string"}[kind]


class AttrDict(dict):
    """A dict whose keys are also attributes: ``cfg.MODEL.seg_num``."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key)

    def __setattr__(self, key, value):
        self[key] = value


class Config(AttrDict):
    """A validated config: ``cfg.MODEL``, ``cfg.TRAIN``, ... (each an :class:`AttrDict`)."""

    def mode(self, mode):
        """Flat settings for ``mode`` (train/valid/test/infer): defaults < MODEL < the mode section."""
        section = mode.upper()
        if section not in SECTIONS[1:5]:
            raise ValueError("mode must be one of {}".format(MODES))
        out = AttrDict({k: copy.deepcopy(d) for k, (_, d) in _schema(section).items()})
        out.update(copy.deepcopy(self.MODEL))
        out.update(copy.deepcopy(self.get(section, {})))
        out["mode"] = mode
        return out

    def live(self):
        """The live pipeline's settings: defaults < the LIVE section."""
        out = AttrDict({k: copy.deepcopy(d) for k, (_, d) in LIVE_KEYS.items()})
        out.update(copy.deepcopy(self.get("LIVE", {})))
        return out

    def set(self, dotted, value, source="command line", base=None):
        """Set ``SECTION.key`` to ``value`` after validating it; a relative path (:data:`PATH_KEYS`) is made
        absolute against ``base`` (default: the current directory)."""
        if "." not in dotted:
            raise UserError("{}: override {!r} must look like SECTION.key=value, e.g. TRAIN.batch_size=4"
                            .format(source, dotted))
        section, key = dotted.split(".", 1)
        _check_key(section, key, source)
        kind = _schema(section)[key][0]
        value = _coerce(value, kind, "{}: {}".format(source, dotted))
        if key in PATH_KEYS:
            value = absolute_path(value, base or os.getcwd())
        self.setdefault(section, AttrDict())[key] = value


def _check_key(section, key, source):
    if section not in SECTIONS:
        raise UserError("{}: unknown section {!r}; did you mean {!r}? (sections: {})".format(
            source, section, _closest(section, SECTIONS), ", ".join(SECTIONS)))
    if key not in _schema(section):
        raise UserError("{}: unknown key {}.{}; did you mean {}.{}?".format(
            source, section, key, section, _closest(key, _schema(section))))


def resolve_path(path, base_dir=None):
    """Resolve a relative path given on a command line (``--weights``): against the cwd, else ``base_dir``, else
    the project root.  Config paths are absolute already (:data:`PATH_KEYS`)."""
    if path is None or os.path.isabs(path) or "://" in path:
        return path
    for base in (os.getcwd(), base_dir, PROJECT_ROOT):
        if base and os.path.exists(os.path.join(base, path)):
            return os.path.normpath(os.path.join(base, path))
    return path


def load_config(path, overrides=()):
    """Load and validate a YAML config.

    Args:
        path: the YAML file.
        overrides: strings ``SECTION.key=value`` (value parsed as YAML), applied in order.
    Returns:
        :class:`Config` with every section present.
    """
    if not os.path.isfile(path):
        raise UserError("config file {} not found; pass an existing YAML file with --config "
                        "(examples are in configs/)".format(path))
    try:
        with open(path) as f:
            text = f.read()
        raw = yaml.safe_load(text) or {}
        lines = _key_lines(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = " line {}".format(mark.line + 1) if mark else ""
        raise UserError("{}{}: not valid YAML ({})".format(path, line, getattr(e, "problem", e)))
    if not isinstance(raw, dict):
        raise UserError("{}: expected sections MODEL/TRAIN/VALID/TEST/INFER at the top level".format(path))
    cfg = Config({s: AttrDict() for s in SECTIONS})
    cfg["_path"] = os.path.abspath(path)
    for section, body in raw.items():
        if body is None:
            body = {}
        where = "{} line {}".format(path, lines.get((section, None), "?"))
        if section not in SECTIONS:
            _check_key(section, "", where)
        if not isinstance(body, dict):
            raise UserError("{}: section {} must be a mapping of key: value".format(where, section))
        for key, value in body.items():
            cfg.set("{}.{}".format(section, key), value,
                    source="{} line {}".format(path, lines.get((section, key), "?")),
                    base=os.path.dirname(os.path.abspath(path)))
    for item in overrides or ():
        if "=" not in item:
            raise UserError("-o {!r}: expected SECTION.key=value, e.g. -o TRAIN.batch_size=4".format(item))
        dotted, text = item.split("=", 1)
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        cfg.set(dotted.strip(), value, source="-o {}".format(item))
    for key, (_, default) in MODEL_KEYS.items():
        cfg.MODEL.setdefault(key, copy.deepcopy(default))
    validate(cfg, path)
    return cfg


def _key_lines(text):
    """{(section, key): 1-based line} for error messages; key None is the section itself."""
    lines = {}
    root = yaml.compose(text)
    if isinstance(root, yaml.MappingNode):
        for snode, body in root.value:
            lines[(snode.value, None)] = snode.start_mark.line + 1
            if isinstance(body, yaml.MappingNode):
                for knode, _ in body.value:
                    lines[(snode.value, knode.value)] = knode.start_mark.line + 1
    return lines


CHOICES = {k: v.choices for k, v in ALL_KEYS.items() if v.choices is not None}
# the MODEL keys that define the network a checkpoint holds (a config that differs on one builds another network)
NETWORK_KEYS = tuple(k for k, v in MODEL_TABLE.items() if v.network)
# MODEL keys a mode section may change for that mode (the reader's frames per clip and file format; every model
# takes T from its input); the other network keys build the network, which is one for every mode
MODE_NETWORK_KEYS = ("seg_num", "format")


def validate(cfg, path):
    """Check every mode alike: choice keys, network keys in mode sections (see :data:`MODE_NETWORK_KEYS`), ranges."""
    for mode in MODES:
        m, section = cfg.mode(mode), mode.upper()
        for key, choices in CHOICES.items():
            if key in m and m[key] not in choices:
                where = section if key in cfg.get(section, {}) else "MODEL" if key in cfg.MODEL else section
                raise UserError("{}: {}.{} {!r} is not supported; use one of {}".format(
                    path, where, key, m[key], ", ".join(str(c) if c else "null" for c in choices)))
        for key, value in cfg.get(section, {}).items():
            if key in NETWORK_KEYS and key not in MODE_NETWORK_KEYS and value != cfg.MODEL.get(key):
                raise UserError("{}: {}.{} {!r} differs from MODEL.{} {!r}: the network is built from MODEL for every "
                                "mode, so a mode section cannot change it (only {}); set it in MODEL".format(
                                    path, section, key, value, key, cfg.MODEL.get(key), ", ".join(MODE_NETWORK_KEYS)))
        if input_channels(m["format"]) != input_channels(cfg.MODEL.format):
            raise UserError("{}: {}.format {!r} has other input channels than MODEL.format {!r} (the network's); "
                            "set the format in MODEL".format(path, section, m["format"], cfg.MODEL.format))
    live = cfg.live()
    for key, spec in LIVE_TABLE.items():
        if spec.minimum is not None and live[key] < spec.minimum:
            raise UserError("{}: LIVE.{} must be >= {} (got {})".format(path, key, spec.minimum, live[key]))
    if not cfg.MODEL.get("name"):
        raise UserError("{}: MODEL.name is missing; set it to one of the model names, e.g. TSM".format(path))
    for mode in MODES:
        m = cfg.mode(mode)
        for key, spec in ALL_KEYS.items():
            if spec.minimum is not None and key in m and m[key] < spec.minimum:
                where = mode.upper() if key in cfg.get(mode.upper(), {}) or key not in cfg.MODEL else "MODEL"
                raise UserError("{}: {}.{} must be >= {} (got {})".format(path, where, key, spec.minimum, m[key]))
        if m["format"] not in FORMATS:
            raise UserError("{}: MODEL.format {!r} is not supported; use one of {}".format(
                path, m["format"], ", ".join(FORMATS)))
        channels = input_channels(m["format"])
        if len(m["image_mean"]) != channels or len(m["image_std"]) != channels:
            raise UserError("{}: image_mean and image_std need {} values ({})".format(
                path, channels, {2: "x, y flow", 3: "RGB", 5: "R, G, B, flow x, flow y"}[channels]))
        jitter = m["scale_jitter"]
        if jitter and (len(jitter) != 2 or not m["target_size"] <= jitter[0] <= jitter[1]):
            raise UserError("{}: {}.scale_jitter must be [min, max] short sides with target_size <= min <= max "
                            "(got {})".format(path, mode.upper(), jitter))
        if m["target_size"] > m["short_size"]:
            raise UserError("{}: {}.target_size ({}) must not exceed short_size ({})".format(
                path, mode.upper(), m["target_size"], m["short_size"]))


def reference_markdown():
    """The README's configuration reference: one row per key, from the key table."""
    def value(v):
        if isinstance(v, str) and v.startswith(PROJECT_ROOT):
            v = os.path.relpath(v, PROJECT_ROOT)
        return "`{}`".format("null" if v is None else str(v).lower() if isinstance(v, bool) else v)
    rows = ["| key | sections | type | default | allowed | network | meaning |", "|---|---|---|---|---|---|---|"]
    for sections, table in (("MODEL (+ modes)", MODEL_TABLE), ("TRAIN VALID TEST INFER", READER_TABLE),
                            ("TRAIN", TRAIN_TABLE), ("LIVE", LIVE_TABLE)):
        for k, spec in table.items():
            allowed = " / ".join(value(c) for c in spec.choices) if spec.choices else (
                ">= {}".format(spec.minimum) if spec.minimum is not None else "")
            rows.append("| `{}` | {} | {} | {} | {} | {} | {} |".format(
                k, sections, _kind_name(spec.kind), value(spec.default), allowed, "yes" if spec.network else "",
                spec.doc.replace("|", "/")))
    return "\n".join(rows) + "\n"


def complete(cfg):
    """Every section with every key at its effective value: MODEL whole; each mode section every reader (and
    training) key — defaults included — plus the MODEL keys it overrides.  What :func:`save_config` writes, so a
    later change of a default cannot change what a saved config means."""
    body = {"MODEL": {k: copy.deepcopy(cfg.MODEL.get(k, d)) for k, (_, d) in MODEL_KEYS.items()}}
    for mode in MODES:
        section, m = mode.upper(), cfg.mode(mode)
        own = cfg.get(section, {})
        body[section] = {k: copy.deepcopy(m[k]) for k in _schema(section) if k not in MODEL_KEYS or k in own}
    body["LIVE"] = dict(cfg.live())
    return body


def config_beside(weights):
    """The config written beside a checkpoint or an exported model (``W.pdparams`` → ``W.yaml``; an export prefix
    P → ``P.yaml``), or None."""
    if not weights or "://" in weights:
        return None
    path = (weights[:-len(".pdparams")] if weights.endswith(".pdparams") else weights) + ".yaml"
    return path if os.path.isfile(path) else None


def save_config(cfg, path, note="written by train.py"):
    """Write the complete config (:func:`complete`: every section and key, overrides applied, paths absolute) as
    YAML to ``path`` (atomically)."""
    body = complete(cfg)
    tmp = "{}.tmp{}".format(path, os.getpid())
    with open(tmp, "w") as f:
        f.write("# the resolved config of this model ({}; from {})\n".format(note, cfg.get("_path", "?")))
        yaml.safe_dump(body, f, sort_keys=False, default_flow_style=None)
    os.replace(tmp, path)
    return path


def network_differences(a, b):
    """``[(key, a's value, b's value)]`` for the :data:`NETWORK_KEYS` on which two configs' MODEL sections differ."""
    def norm(k, v):
        return str(v).upper() if k == "name" else v
    return [(k, a.MODEL.get(k), b.MODEL.get(k)) for k in NETWORK_KEYS
            if norm(k, a.MODEL.get(k)) != norm(k, b.MODEL.get(k))]


def label_names(cfg):
    """Class names from ``MODEL.label_list`` (one per line), or the class ids as strings."""
    n = cfg.MODEL.num_classes
    path = cfg.MODEL.label_list
    if not path:
        return [str(i) for i in range(n)]
    full = resolve_path(path, os.path.dirname(cfg.get("_path", "")))
    if not os.path.isfile(full):
        raise UserError("label list {} not found (MODEL.label_list); point it at a file with one "
                        "class name per line, or set it to null".format(path))
    with open(full, encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    if len(names) != n:
        raise UserError("label list {} has {} names but MODEL.num_classes is {}; use a list with one "
                        "name per class (or MODEL.label_list: null)".format(path, len(names), n))
    return names


def label_map_path(cfg):
    """``MODEL.label_map`` resolved like the other config paths (cwd, the config's folder, the project)."""
    return resolve_path(cfg.MODEL.label_map, os.path.dirname(cfg.get("_path", "")))


if __name__ == "__main__":        # python -m paddlevideo.config --markdown: the README's reference table
    import sys
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m paddlevideo.config --markdown")
    sys.stdout.write(reference_markdown())
