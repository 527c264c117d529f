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
SECTIONS = ("MODEL", "TRAIN", "VALID", "TEST", "INFER")

# key -> (type, default).  Types: int, float, bool, str, "floats" (list of float),
# "ints" (list of int), "str?" (string or null).
MODEL_KEYS = {
    "name": (str, None),
    "format": (str, "mp4"),
    "num_classes": (int, 400),
    "seg_num": (int, 8),
    "seglen": (int, 1),
    "image_mean": ("floats", [0.485, 0.456, 0.406]),
    "image_std": ("floats", [0.229, 0.224, 0.225]),
    "num_layers": (int, 50),
    "topk": (int, 5),
    "dropout_ratio": (float, 0.5),
    "shift_ratio": (float, 0.125),
    "shift_mode": (str, "bidirectional"),   # TSM: bidirectional (offline) | online (past-only shift)
    "backbone": (str, "resnet"),            # TSM trunk: resnet | mobilenet_v2 (PP-TSM MobileNetV2)
    "zero_init_residual": (bool, False),
    "freeze_bn": (str, "none"),
    "sync_bn": (bool, False),
    "stem": (str, "imagenet"),
    "width": (int, 64),
    "blocks": ("ints", []),
    "sampling": (str, "segments"),
    "flow_method": (str, "tvl1"),
    "flow_root": ("str?", None),
    "frame_interval": (int, 1),
    "alpha": (int, 8),
    "beta": (int, 8),
    "fusion_kernel": (int, 5),
    "pool_size": ("ints", []),
    "label_list": ("str?", os.path.join(PROJECT_ROOT, "data", "dataset", "kinetics400_label_list.txt")),
    "label_map": ("str?", None),          # detection: the AVA label-map pbtxt (names + evaluated ids)
    "pretrain": ("str?", None),
    "pretrain_md5": ("str?", None),
    "weights": ("str?", None),
    "weights_md5": ("str?", None),
}
READER_KEYS = {
    "short_size": (int, 256),
    "target_size": (int, 224),
    "batch_size": (int, 1),
    "filelist": ("str?", None),
    "data_root": ("str?", None),
    "proposal_file": ("str?", None),      # detection: person proposals pickle {"video,%04d": [n, 4|5]}
    "exclude_file": ("str?", None),       # detection: excluded timestamps CSV (video_id,timestamp)
    "capacity": (int, 50),                # detection eval: detections kept per keyframe (50 official, 0 no cap)
    "num_reader_threads": (int, 2),
    "buf_size": (int, 1024),
    "use_gpu": (bool, False),
    "num_gpus": (int, 1),
    "flip": (bool, True),
    "multi_scale_crop": (bool, True),
    "scale_jitter": ("ints", []),
    "decode_timeout": (float, 60.0),
    "fixed_ratio": (bool, False),         # short side -> short_size, long side -> 4/3 of it (PP-TSM's test Scale)
    "num_clips": (int, 1),
    "num_crops": (int, 1),
    "average": (str, "prob"),
    "precision": (str, "fp32"),
    "calibration": ("str?", None),
    "calibration_size": (int, 32),
}
TRAIN_KEYS = {
    "epoch": (int, 1),
    "learning_rate": (float, 0.01),
    "learning_rate_decay": (float, 0.1),
    "decay_epochs": ("ints", []),
    "l2_weight_decay": (float, 1e-4),
    "momentum": (float, 0.9),
    "optimizer": (str, "momentum"),
    "lr_schedule": (str, "step"),
    "warmup_epochs": (float, 0.0),
    "total_videos": (int, 0),
    "clip_norm": (float, 0.0),
    "fix_random_seed": (bool, False),
    "accumulate_steps": (int, 1),
    "amp": ("str?", None),
    "seed": (int, 0),
}
FORMATS = ("mp4", "pkl", "frames", "flow", "rgb_flow")
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
        if section not in SECTIONS[1:]:
            raise ValueError("mode must be one of {}".format(MODES))
        out = AttrDict({k: copy.deepcopy(d) for k, (_, d) in _schema(section).items()})
        out.update(copy.deepcopy(self.MODEL))
        out.update(copy.deepcopy(self.get(section, {})))
        out["mode"] = mode
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


CHOICES = {"optimizer": ("momentum", "adamw"), "lr_schedule": ("step", "cosine"), "stem": ("imagenet", "small"),
           "sampling": ("segments", "dense"), "flow_method": ("tvl1", "farneback"), "average": ("prob", "logit"),
           "freeze_bn": ("none", "all", "all_but_first"), "amp": (None, "O1", "O2"),
           "precision": ("fp32", "bf16", "int8"), "shift_mode": ("bidirectional", "online"),
           "backbone": ("resnet", "mobilenet_v2")}


# the MODEL keys that define the network a checkpoint holds (a config that differs on one builds another network)
NETWORK_KEYS = ("name", "format", "num_classes", "num_layers", "width", "blocks", "stem", "seg_num", "seglen",
                "shift_ratio", "shift_mode", "backbone", "alpha", "beta", "fusion_kernel", "pool_size")
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
    if cfg.mode("train")["accumulate_steps"] < 1:
        raise UserError("{}: TRAIN.accumulate_steps must be >= 1 (got {})".format(
            path, cfg.mode("train")["accumulate_steps"]))
    if not cfg.MODEL.get("name"):
        raise UserError("{}: MODEL.name is missing; set it to one of the model names, e.g. TSM".format(path))
    for mode in MODES:
        m = cfg.mode(mode)
        for key in ("num_classes", "seg_num", "seglen", "batch_size", "target_size", "short_size"):
            if m[key] < 1:
                raise UserError("{}: {}.{} must be >= 1 (got {})".format(path, mode.upper(), key, m[key]))
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
        if m["num_clips"] < 1 or m["num_crops"] not in (1, 3, 10):
            raise UserError("{}: {}.num_clips must be >= 1 and num_crops 1, 3 or 10 (got {} and {})".format(
                path, mode.upper(), m["num_clips"], m["num_crops"]))
        if m["capacity"] < 0:
            raise UserError("{}: {}.capacity must be >= 0 (50: the official AVA evaluation, 0: no cap; got {})".format(
                path, mode.upper(), m["capacity"]))
        if m["frame_interval"] < 1:
            raise UserError("{}: {}.frame_interval must be >= 1 (got {})".format(path, mode.upper(), m["frame_interval"]))
        if m["target_size"] > m["short_size"]:
            raise UserError("{}: {}.target_size ({}) must not exceed short_size ({})".format(
                path, mode.upper(), m["target_size"], m["short_size"]))


def complete(cfg):
    """Every section with every key at its effective value: MODEL whole; each mode section every reader (and
    training) key — defaults included — plus the MODEL keys it overrides.  What :func:`save_config` writes, so a
    later change of a default cannot change what a saved config means."""
    body = {"MODEL": {k: copy.deepcopy(cfg.MODEL.get(k, d)) for k, (_, d) in MODEL_KEYS.items()}}
    for mode in MODES:
        section, m = mode.upper(), cfg.mode(mode)
        own = cfg.get(section, {})
        body[section] = {k: copy.deepcopy(m[k]) for k in _schema(section) if k not in MODEL_KEYS or k in own}
    return body


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
