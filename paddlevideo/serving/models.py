"""The served models: the ``--models`` file, the demos' models as the default, and one :class:`ServedModel` each
(its config from the checkpoint, its runner behind a :class:`~.batcher.Batcher`, decoding and result records
identical to ``predict.py``'s).

``--models`` is YAML, one entry per model::

    tsm:                                   # the name in /v1/models/{name}/...
      weights: output/demo/TSM_final.pdparams   # or exported: PREFIX (export.py); the config beside it is used
      config: configs/tsm.yaml             # optional: only when no W.yaml lies beside the weights
      backend: auto                        # auto | onnxruntime | paddle-inference | dygraph
      precision: fp32                      # fp32 | int8 | bf16
      max_batch: 8                         # clips (model input rows) per model call
      max_wait_ms: 10                      # how long a batch waits for more requests
      max_queue: 16                        # requests admitted at once (decoding + waiting); more -> 503
      timeout_s: 60                        # a request not answered by then -> 504
      threads: 2                           # the backend's CPU threads
      overrides: ["INFER.num_clips=1"]     # -o style config overrides
      detector: ppdet:DIR                  # detection models: the person detector (--detector), default HOG

Relative paths are read against the models file's folder.
"""
import os
import threading

import numpy as np

from ..errors import UserError

SPEC_KEYS = {
    "weights": (str, None), "exported": (str, None), "config": (str, None), "backend": (str, "auto"),
    "precision": (str, None), "max_batch": (int, 8), "max_wait_ms": (float, 10.0), "max_queue": (int, 16),
    "timeout_s": (float, 60.0), "threads": (int, None), "overrides": (list, []), "detector": (str, None),
}
BACKENDS = ("auto", "onnxruntime", "paddle-inference", "dygraph")


def check_spec(name, spec, where, base_dir=None):
    """One ``--models`` entry with defaults filled and paths made absolute; a bad key or value is one line naming
    ``where`` (the file), the model and the key."""
    if not isinstance(spec, dict):
        raise UserError("{}: model {!r} must be a mapping of keys ({}), got {!r}".format(
            where, name, ", ".join(sorted(SPEC_KEYS)), spec))
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise UserError("{}: model {!r}: unknown key {} (known: {})".format(where, name, unknown[0],
                                                                            ", ".join(sorted(SPEC_KEYS))))
    out = {}
    for key, (typ, default) in SPEC_KEYS.items():
        v = spec.get(key, default)
        if v is not None and typ is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if v is not None and not isinstance(v, typ) or isinstance(v, bool):
            raise UserError("{}: model {!r}: {} must be {} (got {!r})".format(where, name, key, typ.__name__, v))
        if key in ("weights", "exported", "config") and v and "://" not in v:
            v = os.path.abspath(os.path.join(base_dir or ".", os.path.expanduser(v)))
        out[key] = v
    if not out["weights"] and not out["exported"]:
        raise UserError("{}: model {!r} needs weights: PATH.pdparams or exported: PREFIX".format(where, name))
    for key in ("weights", "exported"):
        p = out[key]
        if p and "://" not in p and not os.path.exists(p if key == "weights" else p + ".pdiparams"):
            raise UserError("{}: model {!r}: {} {} does not exist".format(where, name, key, p))
    if out["backend"] not in BACKENDS:
        raise UserError("{}: model {!r}: backend {!r}: use one of {}".format(where, name, out["backend"],
                                                                             ", ".join(BACKENDS)))
    if out["precision"] not in (None, "fp32", "int8", "bf16"):
        raise UserError("{}: model {!r}: precision {!r}: use fp32, int8 or bf16".format(where, name, out["precision"]))
    for key in ("max_batch", "max_queue"):
        if out[key] < 1:
            raise UserError("{}: model {!r}: {} must be at least 1 (got {})".format(where, name, key, out[key]))
    return out


def read_models(path):
    """``--models FILE`` → ``{name: spec}`` (:func:`check_spec` on each entry)."""
    import yaml
    if not os.path.isfile(path):
        raise UserError("--models {} does not exist".format(path))
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise UserError("--models {}{}: not valid YAML ({})".format(
            path, ", line {}".format(mark.line + 1) if mark else "", getattr(e, "problem", e)))
    if not isinstance(data, dict) or not data:
        raise UserError("--models {}: expected a mapping name: {{weights: ..., ...}} with at least one model".format(path))
    base = os.path.dirname(os.path.abspath(path))
    return {str(n): check_spec(str(n), s, "--models " + path, base) for n, s in data.items()}


def default_models(root):
    """The models the demos trained: every ``*_final.pdparams`` with its ``.yaml`` beside it under ``root``
    (``output/``), named by its first folder under ``root`` (plus the model's name when a folder holds several).
    A ``serve.yaml`` in the checkpoint's folder adds its keys to the entry (the live demo names its person detector
    there)."""
    import yaml
    found = []
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            if f.endswith("_final.pdparams") and os.path.isfile(os.path.join(dirpath, f[:-len(".pdparams")] + ".yaml")):
                found.append(os.path.join(dirpath, f))
    if not found:
        raise UserError("no trained model under {} to serve: run a demo first (e.g. bash run.sh demo --quick, or "
                        "bash run.sh demo --live), or pass --models FILE".format(root))
    out = {}
    for w in found:
        rel = os.path.relpath(w, root).split(os.sep)
        name = rel[0] if len(rel) > 1 else "model"
        if name in out:
            name = "{}-{}".format(name, os.path.basename(w)[:-len("_final.pdparams")].lower())
        hint = os.path.join(os.path.dirname(w), "serve.yaml")
        extra = {}
        if os.path.isfile(hint):
            with open(hint) as f:
                extra = yaml.safe_load(f) or {}
        out[name] = check_spec(name, dict(extra, weights=w), hint if extra else "the demos' models",
                               os.path.dirname(w))
    return out


class ServedModel:
    """One model of the server: config, task, class names, a batched runner, and the recognizer its streams share.

    ``decode(path) -> views [V, T, C, H, W]`` (the TEST/INFER views ``predict.py`` reads: ``num_clips`` ×
    ``num_crops``); ``record(outputs [V, K], video, k)`` → ``predict.py``'s record for one video; ``detect`` /
    ``timeline`` run the apps with the batcher as their runner.
    """

    def __init__(self, name, spec, cache_dir=None, observe=None):
        from ..config import config_beside, label_names, load_config, validate
        from ..runtime.backends import RunOptions
        from ..runtime.records import open_runner
        from ..tasks import task_for
        from .batcher import Batcher
        self.name, self.spec = name, spec
        path = spec["config"] or config_beside(spec["exported"]) or config_beside(spec["weights"])
        if not path:
            raise UserError("model {!r}: no config beside {} (W.yaml, written by train.py); add config: FILE to its "
                            "entry".format(name, spec["weights"] or spec["exported"]))
        cfg = load_config(path, spec["overrides"])
        if spec["precision"]:
            for s in ("TEST", "INFER"):
                cfg.set("{}.precision".format(s), spec["precision"], "--models")
        validate(cfg, path)
        self.cfg, self.config_path = cfg, path
        self.task = task_for(cfg)
        self.m = cfg.mode("infer")
        if self.task.per_person:
            from ..annotations.ava import read_label_map
            from ..config import label_map_path
            self.names = (read_label_map(label_map_path(cfg))[0] if cfg.MODEL.label_map
                          else {c: str(c) for c in range(1, cfg.MODEL.num_classes)})
        else:
            names = label_names(cfg)
            self.names = {c: names[c] for c in range(len(names))}
        opts = RunOptions(spec["backend"], spec["threads"], cache_dir, spec["exported"])
        runner, self.backend, self.weights = open_runner(cfg, "infer", spec["weights"], opts)
        self.batcher = Batcher(runner, spec["max_batch"], spec["max_wait_ms"], observe=observe, name=name)
        self.batcher.backend = self.backend
        self.online = bool(self.m.shift_mode == "online" and self.m.shift_ratio) and not self.task.per_person
        self._recognizer, self._persons, self._lock = None, None, threading.Lock()
        self.inflight = 0

    def describe(self):
        s = self.spec
        return {"name": self.name, "task": self.task.name, "model": self.cfg.MODEL.name,
                "num_classes": len(self.names), "classes": [self.names[c] for c in sorted(self.names)],
                "backend": self.backend, "precision": self.m.precision,
                "stream_mode": "live" if self.task.per_person else "online" if self.online else "window",
                "batch": {"max_batch": s["max_batch"], "max_wait_ms": s["max_wait_ms"], "max_queue": s["max_queue"],
                          "timeout_s": s["timeout_s"]},
                "views": {"num_clips": self.m.num_clips, "num_crops": self.m.num_crops},
                "weights": self.weights, "config": self.config_path}

    # -- admission: requests in flight (decoding + waiting + running) are bounded by max_queue
    def admit(self):
        with self._lock:
            if self.inflight >= self.spec["max_queue"]:
                return False
            self.inflight += 1
            return True

    def release(self):
        with self._lock:
            self.inflight -= 1

    # -- recognition: predict.py's views and records
    def decode(self, path):
        """The video's views ``[V, T, C, H, W]`` float32 (raises :class:`~paddlevideo.data.video.VideoError`)."""
        from ..data import VideoDataset
        ds = VideoDataset([(path, -1)], self.m)
        clips = [np.asarray(ds.load(0, clip=k)[0]) for k in range(ds.clips_per_video)]
        views = [c if c.ndim == 5 else c[None] for c in clips]
        return np.ascontiguousarray(np.concatenate(views), dtype=np.float32)

    def record(self, outputs, video, k=None):
        """Logits ``[V, K]`` of one video → ``predict.py``'s record ``{"index": 0, "video", "top_k": [...]}``."""
        from ..metrics.classification import video_records
        names = [self.names[c] for c in sorted(self.names)]
        k = min(k or self.m.topk, len(names))
        batch = [(np.array([0]), np.array([-1]), np.asarray(outputs)[None], [])]
        return next(video_records(batch, [(video, -1)], None, self.m.average, k, names, labelled=False))

    def persons(self):
        """The entry's person detector (``detector``, default HOG), built once and shared by the clip requests;
        calls are serialised (a Paddle Inference predictor is not thread-safe).  Streams build their own."""
        from ..apps.persons import load_detector
        with self._lock:
            if self._persons is None:
                det, lock = load_detector(self.spec["detector"], cpu_threads=self.spec["threads"]), threading.Lock()

                def persons(frame):
                    with lock:
                        return det(frame)
                self._persons = persons
            return self._persons

    def detect(self, path, video, stride=1.0, threshold=0.5):
        """Keyframes → persons → actions for one video (``predict.py`` on a detection config)."""
        from ..apps.detect import detect_video
        res = detect_video(self.cfg, path, stride, detector=self.persons(), threshold=threshold, runner=self.batcher,
                           quiet=True)
        res["video"] = video
        return res

    def timeline(self, path, video, window, stride=None, threshold=0.5, k=None):
        from ..apps.timeline import timeline
        res = timeline(self.cfg, path, window, stride, threshold, topk=k, runner=self.batcher)
        res["video"] = video
        return res

    def recognizer(self):
        """The online recognizer the streams of this model share (built on first use)."""
        with self._lock:
            if self._recognizer is None:
                from ..apps.online import OnlineRecognizer
                backend = "onnxruntime" if self.spec["backend"] == "auto" else self.spec["backend"]
                self._recognizer = OnlineRecognizer(self.cfg, self.weights, backend, self.spec["threads"],
                                                    spin=False)     # measured: spinning threads starve the decoders
            return self._recognizer

    def close(self):
        self.batcher.close()

