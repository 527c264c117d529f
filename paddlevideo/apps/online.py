"""Streaming recognition with an online (past-only shift) TSM: one frame per call, the shift's cache kept between
calls, every step one exported graph on the fast backends.

``OnlineRecognizer(cfg, weights=None, backend="auto").step(frame RGB uint8 [H, W, 3]) -> dict`` with ``logits``
(the raw per-frame logits ``[num_classes]``), ``top_k`` and the smoothed ``label`` (the arg-max of the summed
logits of the last ``window`` steps, the TSM authors' online demo's rule; ``label_name`` with a label list);
``.reset()`` starts a new stream (zero caches, empty history).  Several streams share one recognizer through
:meth:`OnlineRecognizer.new_state` and :meth:`OnlineRecognizer.step_batch`: their frames advance in one batched
call, each with its own caches (the server's streams of one model).

The step model (:class:`StepModel`) takes ``(frame [N, 3, S, S], cache_1 … cache_K)`` and returns
``(logits [N, num_classes], new cache_1 … new cache_K)`` for N streams: cache k is ``[N, C_k/8, H_k, W_k]``, the first eighth of
the input channels of the k-th shifting block at the previous frame (zeros after a reset) — exactly what the
offline online-mode model's shift reads from frame t−1, so the per-frame logits over frames 0..T−1 equal
``model.forward_frames`` on those T frames (tested on every backend).
"""
import hashlib
import json
import os
import sys
import time
from collections import deque

import numpy as np
import paddle

from .. import download
from ..data.transforms import center_crop, normalize_pack, scale_short_side
from ..errors import UserError
from ..models import build_model
from ..weights import load_weights
from ..runtime.backends import InferenceRunner, OnnxRunner, export_model, to_onnx
from ..config import label_names
from ..runtime.batches import resolve_weights
from ..metrics.classification import softmax
from ..report import warn

BACKENDS = ("auto", "dygraph", "onnxruntime", "paddle-inference", "onnxruntime-int8")


def streaming_blocks(model):
    """The blocks whose residual input is shifted, in forward order (their caches are the step's state)."""
    return [layer for layer in model.sublayers() if hasattr(layer, "stream") and layer.shift_ratio
            and getattr(layer, "shortcut", True)]


class StepModel(paddle.nn.Layer):
    """One frame of an online-mode model: ``(frame, [caches]) -> [logits, *new caches]``."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.blocks = streaming_blocks(model)

    def forward(self, frame, caches):
        for block, cache in zip(self.blocks, caches):
            object.__setattr__(block, "stream", {"in": cache})
        try:
            logits = self.model.forward_frames(frame.unsqueeze(1))[:, 0]
            return [logits] + [block.stream["out"] for block in self.blocks]
        finally:
            for block in self.blocks:
                object.__setattr__(block, "stream", None)

    def cache_shapes(self, size):
        """``[[1, C_k/8, H_k, W_k]]`` for ``size`` × ``size`` frames, from the blocks' inputs in a probe forward."""
        shapes, hooks = [], []
        for block in self.blocks:
            hooks.append(block.register_forward_pre_hook(
                lambda layer, inputs: shapes.append((layer, list(inputs[0].shape)))))
        try:
            with paddle.no_grad():
                self.model.forward_frames(paddle.zeros([1, 1, 3, size, size]))
        finally:
            for h in hooks:
                h.remove()
        from ..models.resnet import shift_channels
        return [[1, shift_channels(s[1], layer.shift_ratio)[0], s[2], s[3]] for layer, s in shapes]


class OnlineRecognizer:
    """A streaming recognizer (see the module doc).

    Args:
        cfg: a config whose MODEL has ``shift_mode: online`` (INFER's ``short_size``/``target_size``, mean/std).
        weights: a checkpoint; default MODEL.weights (random weights with a warning when neither is set).
        backend: ``dygraph``, ``onnxruntime`` (default on CPU, ``auto``), ``paddle-inference`` or ``onnxruntime-int8``
            (also chosen by INFER.precision int8: the step graph quantized, calibrated on frames of INFER.calibration,
            else VALID.filelist, streamed through the fp32 step so that the caches are realistic).
        window: steps whose logits are summed for the smoothed label (12, as the TSM authors' online demo).
        spin: ONNX Runtime's threads spin between calls (fastest alone; False when decoders share the cores).
    """

    def __init__(self, cfg, weights=None, backend="auto", cpu_threads=None, cache_dir=None, window=12, topk=5,
                 spin=True):
        m = cfg.mode("infer")
        if m.shift_mode != "online" or not m.shift_ratio:
            raise UserError("the streaming recognizer runs a model trained with the past-only shift: set "
                            "MODEL.shift_mode: online (e.g. configs/pptsm_mv2_online.yaml); got shift_mode {} and "
                            "shift_ratio {}".format(m.shift_mode, m.shift_ratio))
        if backend not in BACKENDS:
            raise UserError("backend {!r}: use one of {}".format(backend, ", ".join(BACKENDS)))
        self.m, self.window, self.topk = m, max(1, int(window)), topk
        self.names = label_names(cfg) if cfg.MODEL.label_list else None
        model = build_model(cfg)
        w = None
        if weights or cfg.MODEL.weights:
            w = resolve_weights(cfg, weights, cache_dir)
            load_weights(model, w)
        else:
            warn("no weights given (--weights / MODEL.weights): the streaming model has random weights")
        model.eval()
        self.step_model = StepModel(model)
        size = m.target_size
        self.shapes = self.step_model.cache_shapes(size)
        self.backend = "onnxruntime" if backend == "auto" else backend
        if m.precision != "fp32":
            if m.precision != "int8" or self.backend not in ("onnxruntime", "onnxruntime-int8"):
                raise UserError("the streaming recognizer runs fp32 (any backend) or int8 (onnxruntime); got "
                                "--precision {} with --backend {}".format(m.precision, backend))
            self.backend = "onnxruntime-int8"
        if self.backend == "dygraph":
            def run(*inputs):
                with paddle.no_grad():
                    frame = paddle.to_tensor(inputs[0])
                    return [o.numpy() for o in self.step_model(frame, [paddle.to_tensor(c) for c in inputs[1:]])]
            self._run = run
        else:
            prefix = self._export(cfg, w, size, cache_dir)
            if self.backend == "paddle-inference":
                self._run = InferenceRunner(prefix, cpu_threads, all_outputs=True)
            else:
                onnx_path = to_onnx(prefix)
                self._run = OnnxRunner(onnx_path, cpu_threads, all_outputs=True, spin=spin)
                if self.backend == "onnxruntime-int8":
                    onnx_path = self._int8(onnx_path, cfg)
                    self._run = OnnxRunner(onnx_path, cpu_threads, all_outputs=True, spin=spin)
        self.reset()

    def _export(self, cfg, weights, size, cache_dir):
        """The step graph, exported once per weights/config/size into the weights cache."""
        h = hashlib.sha1(json.dumps({"model": dict(cfg.MODEL), "size": size, "paddle": paddle.__version__,
                                     "batch": "dynamic"},
                                    sort_keys=True, default=str).encode())
        if weights:
            with open(weights, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        else:
            h.update(str(id(self)).encode())        # random weights: never reuse
        d = os.path.join(download.cache_dir(cache_dir), "exported", "online-" + h.hexdigest()[:16])
        prefix = os.path.join(d, "step")
        if not os.path.exists(prefix + ".pdiparams"):
            t0 = time.time()
            specs = [paddle.static.InputSpec([None, 3, size, size], "float32", "frame"),
                     [paddle.static.InputSpec([None] + list(s[1:]), "float32", "cache{}".format(i))
                      for i, s in enumerate(self.shapes)]]
            tmp = d + ".tmp{}".format(os.getpid())
            export_model(self.step_model, os.path.join(tmp, "step"), specs)
            os.makedirs(os.path.dirname(d), exist_ok=True)
            try:
                os.replace(tmp, d)
            except OSError:  # another process exported it meanwhile
                pass
            print("[export] streaming step exported in {:.1f}s (cached in {})".format(time.time() - t0, d),
                  file=sys.stderr)
        return prefix

    def _int8(self, onnx_path, cfg):
        """The step graph quantized to int8 (cached beside it, keyed by the calibration list): calibration inputs
        are the frames of up to ``calibration_size`` videos streamed through the fp32 step from a reset."""
        from ..data import parse_list
        from ..data.video import VideoError, read_frames
        from ..runtime.quantize import calibration_key, quantize_int8
        m = self.m
        lst = m.calibration or cfg.mode("valid").filelist
        if not lst or not os.path.isfile(lst):
            raise UserError("int8 streaming needs calibration videos: --calibration LIST (or VALID.filelist); got "
                            "{}".format(lst))
        out = "{}.int8-{}.onnx".format(onnx_path[:-len(".onnx")], calibration_key(lst, m.calibration_size))
        if os.path.exists(out):
            return out
        items = parse_list(lst, None, "mp4", need_label=False, skip_bad=True, problems=[], root=m.data_root)
        samples = []
        for path, _ in items[:m.calibration_size]:
            try:
                frames = read_frames(path, lambda n: list(range(0, n, max(1, n // 8)))[:8])
            except VideoError:
                continue
            self.reset()
            for f in frames:
                x = self.transform(f)
                samples.append((x,) + tuple(self.caches))
                self.caches = [np.asarray(c) for c in self._run(x, *self.caches)[1:]]
        if not samples:
            raise UserError("no video of the calibration list {} could be decoded".format(lst))
        return quantize_int8(onnx_path, out, samples)

    def reset(self):
        """A new stream: zero caches (nothing before the first frame), empty label history."""
        self.caches, self.history, self.steps = self._fresh()

    def _fresh(self):
        return [np.zeros(s, np.float32) for s in self.shapes], deque(maxlen=self.window), 0

    def new_state(self):
        """The state of one more stream stepped by :meth:`step_batch` (its own caches and label history)."""
        from types import SimpleNamespace
        caches, history, steps = self._fresh()
        return SimpleNamespace(caches=caches, history=history, steps=steps)

    def transform(self, frame):
        """INFER's transforms on one RGB frame → ``[1, 3, S, S]``: the offline reader's (short side to
        ``short_size``, centre ``target_size`` crop), whatever the frame's size, so online and offline see the same
        pixels."""
        m = self.m
        frames = center_crop(scale_short_side(np.asarray(frame)[None], m.short_size, m.fixed_ratio), m.target_size)
        return normalize_pack(frames, 1, 1, m.image_mean, m.image_std)

    def step(self, frame):
        """One frame (RGB uint8 ``[H, W, 3]``) → ``{"logits", "top_k": [(class, prob)], "label", "label_name"?}``."""
        return self.step_batch([self], [frame])[0]

    def step_batch(self, states, frames, inputs=None):
        """One frame for each of N streams in one call: ``states`` (from :meth:`new_state`, or the recognizer
        itself) and their RGB frames ``[H_i, W_i, 3]`` → N results as :meth:`step` returns; each state's caches
        and history advance.  The frames are transformed one by one (any sizes), stacked ``[N, 3, S, S]``;
        ``inputs``: their :meth:`transform` outputs ``[1, 3, S, S]`` made elsewhere (e.g. in the readers' threads)."""
        if inputs is None:
            for frame in frames:
                if frame is None or np.ndim(frame) != 3 or np.shape(frame)[2] != 3:
                    raise UserError("a frame must be an RGB image [H, W, 3] (got shape {})".format(np.shape(frame)))
            inputs = [self.transform(f) for f in frames]
        x = np.concatenate(inputs)
        caches = [np.concatenate([st.caches[k] for st in states]) for k in range(len(self.shapes))]
        outs = self._run(x, *caches)
        results = []
        for j, st in enumerate(states):
            logits = np.asarray(outs[0])[j]
            st.caches = [np.asarray(c)[j:j + 1] for c in outs[1:]]
            st.history.append(logits)
            st.steps += 1
            label = int(np.argmax(np.sum(st.history, axis=0)))
            p = softmax(logits)
            top = np.argsort(-p)[:self.topk]
            out = {"logits": logits, "top_k": [(int(c), float(p[c])) for c in top], "label": label, "probs": p}
            if self.names:
                out["label_name"] = self.names[label]
            results.append(out)
        return results
