"""Inference backends for eval and predict: the dynamic graph, an exported static model run by
Paddle Inference (oneDNN on CPU), or the same model converted to ONNX (paddle2onnx) and run by
onnxruntime — the fastest path measured on CPU here, used by default (``auto``), falling back to
Paddle Inference if the conversion fails.

A runner is a callable ``clips [N, T, 3*seglen, H, W] -> logits [N, num_classes]`` (numpy), or with
``output="features"`` ``-> [N, D]``, the model's pooled pre-classifier feature (``forward_features``).
"""
import hashlib
import json
import os
import sys
import time

import numpy as np
import paddle

from .. import download, quiet
from ..errors import UserError
from ..models import build_model, onnx_opset
from ..models.resnet import set_shift_impl
from ..weights import load_weights
from ..tasks import input_shape, task_for

BACKENDS = ("auto", "dygraph", "paddle-inference", "onnxruntime")
# temporal-shift formulation per backend (measured, TSM-R50 8x224 on 2 cores): Paddle Inference is
# fastest with slice+concat, onnxruntime with a channel gather (see models/resnet.temporal_shift)
SHIFT_IMPL = {"paddle-inference": "slice", "onnxruntime": "gather"}



def default_threads():
    """CPU threads of a fast backend when --cpu_threads is not given: ``PADDLEVIDEO_THREADS``, else all cores split
    between the processes of a launch on this node (``PADDLE_LOCAL_SIZE``), as :mod:`paddlevideo` sets them for
    Paddle itself (``OMP_NUM_THREADS`` is not read: ``import paddle`` before paddlevideo pins it to 1)."""
    try:
        if os.environ.get("PADDLEVIDEO_THREADS"):
            return max(1, int(os.environ["PADDLEVIDEO_THREADS"]))
        local = int(os.environ.get("PADDLE_LOCAL_SIZE", "0") or 0)
    except ValueError:
        local = 0
    return max(1, (os.cpu_count() or 1) // max(local, 1))


class Features(paddle.nn.Layer):
    """A model whose output is its ``forward_features`` ``[N, D]`` (for export like any model)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_features(x)


def dygraph_runner(model):
    """Run a ``paddle.nn.Layer`` in eval mode without autograd; ``run(*inputs)`` (a detector takes clips,
    boxes and boxes_num)."""
    def run(*inputs):
        model.eval()
        with paddle.no_grad():
            xs = [x if isinstance(x, paddle.Tensor) else paddle.to_tensor(np.asarray(x)) for x in inputs]
            return model(*xs).numpy()
    return run


def _arrays(inputs):
    return [np.ascontiguousarray(x.numpy() if isinstance(x, paddle.Tensor) else np.asarray(x)) for x in inputs]


def export_model(model, prefix, input_shape, shift_impl="slice"):
    """``paddle.jit.save`` a model for inference with input ``[None] + input_shape`` (or ``input_shape`` a list
    of ``paddle.static.InputSpec``, one per input, see :meth:`.tasks.Classification.input_specs`).

    The exported graph uses ``shift_impl`` for the temporal shift (see resnet.temporal_shift).
    Returns the written prefix (``prefix.json``/``.pdmodel`` + ``prefix.pdiparams``).
    """
    model.eval()
    set_shift_impl(model, shift_impl)
    if input_shape and isinstance(input_shape[0], paddle.static.InputSpec):
        specs = list(input_shape)
    else:
        specs = [paddle.static.InputSpec([None] + list(input_shape), "float32", "x")]
    try:
        with quiet.hidden((1, 2)):
            paddle.jit.save(model, prefix, input_spec=specs)
    finally:
        set_shift_impl(model, "op")
    return prefix


def model_file(prefix):
    for ext in (".json", ".pdmodel"):
        if os.path.exists(prefix + ext):
            return prefix + ext
    raise UserError("no exported model at {} (.json or .pdmodel); export it with "
                    "'bash run.sh export NAME CONFIG --weights W --save_dir DIR'".format(prefix))


class InferenceRunner:
    """An exported model run by ``paddle.inference`` (oneDNN, ``threads`` CPU threads, or GPU;
    ``bf16``: oneDNN bfloat16 kernels on CPUs that have them)."""

    def __init__(self, prefix, threads=None, use_gpu=False, bf16=False, all_outputs=False):
        from paddle import inference
        config = inference.Config(model_file(prefix), prefix + ".pdiparams")
        if use_gpu:
            config.enable_use_gpu(256, 0)
        else:
            config.disable_gpu()
            config.enable_mkldnn()
            if bf16:
                config.enable_mkldnn_bfloat16()
            config.set_cpu_math_library_num_threads(threads or default_threads())
        config.disable_glog_info()
        self.predictor = inference.create_predictor(config)
        self.inputs = [self.predictor.get_input_handle(n) for n in self.predictor.get_input_names()]
        self.output_names = self.predictor.get_output_names()
        self.all_outputs = all_outputs

    def __call__(self, *inputs):
        """The first output (``all_outputs``: the list of every output)."""
        for handle, x in zip(self.inputs, _arrays(inputs)):
            handle.reshape(list(x.shape))
            handle.copy_from_cpu(x)
        self.predictor.run()
        outs = [self.predictor.get_output_handle(n).copy_to_cpu()
                for n in (self.output_names if self.all_outputs else self.output_names[:1])]
        return outs if self.all_outputs else outs[0]


class RunOptions:
    """How a model runs, as one object through the layers (CLI → app → records → backends): ``backend`` (auto,
    dygraph, paddle-inference, onnxruntime), ``cpu_threads`` (None: :func:`default_threads`), ``cache_dir`` (the
    weights/export cache), ``exported`` (a prefix written by export.py).  The precision is the config's
    (``<MODE>.precision``)."""

    __slots__ = ("backend", "cpu_threads", "cache_dir", "exported")

    def __init__(self, backend="auto", cpu_threads=None, cache_dir=None, exported=None):
        self.backend, self.cpu_threads, self.cache_dir, self.exported = backend or "auto", cpu_threads, cache_dir, \
            exported

    def replace(self, **kw):
        """A copy with ``kw`` changed (e.g. ``exported=None`` for features)."""
        d = {k: getattr(self, k) for k in self.__slots__}
        d.update(kw)
        return RunOptions(**d)

    def __repr__(self):
        return "RunOptions({})".format(", ".join("{}={!r}".format(k, getattr(self, k)) for k in self.__slots__))


class OnnxUnsupported(Exception):
    """The model cannot take the ONNX Runtime path: paddle2onnx cannot convert it, or ONNX Runtime cannot load the
    converted graph.  The only error ``--backend auto`` falls back on (to Paddle Inference); anything else is a bug
    and propagates."""


def to_onnx(prefix, opset=13):
    """Convert an exported model to ``prefix.onnx`` with paddle2onnx (once); return the path.  ``opset``: 13,
    16 for the detector (ONNX RoiAlign's aligned mode, see models.onnx_opset)."""
    out = prefix + ".onnx"
    if not os.path.exists(out):
        try:
            import paddle2onnx
        except ImportError:
            raise UserError("--backend onnxruntime needs paddle2onnx and onnxruntime: pip install -r requirements.txt")
        tmp = out + ".tmp{}".format(os.getpid())
        if quiet.enabled():
            from paddle2onnx.utils import logging as p2o_log
            p2o_log.log_level = 0            # its Python log lines (errors stay)
        try:
            with quiet.hidden((1, 2)):
                paddle2onnx.export(model_file(prefix), prefix + ".pdiparams", tmp, opset_version=opset,
                                   enable_onnx_checker=True, optimize_tool="None")   # 'None': no pip installs
        except Exception as e:  # noqa: BLE001  (whatever the converter raises means: not convertible)
            if os.path.exists(tmp):
                os.remove(tmp)
            raise OnnxUnsupported("paddle2onnx cannot convert {} ({})".format(prefix, _last_line(e)))
        if not os.path.isfile(tmp):
            raise OnnxUnsupported("paddle2onnx wrote no model for {}".format(prefix))
        os.replace(tmp, out)
    return out


class OnnxRunner:
    """An ONNX model run by onnxruntime on the CPU with ``threads`` intra-op threads."""

    def __init__(self, onnx_path, threads=None, all_outputs=False, spin=True):
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError("--backend onnxruntime needs onnxruntime: pip install -r requirements.txt")
        quiet.onnxruntime_logs()
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or default_threads()
        so.log_severity_level = 3
        if not spin:      # idle threads sleep instead of spinning: loader workers get the cycles (measured +13-35 %)
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        except (ort.capi.onnxruntime_pybind11_state.Fail, ort.capi.onnxruntime_pybind11_state.InvalidGraph,
                ort.capi.onnxruntime_pybind11_state.NotImplemented, ort.capi.onnxruntime_pybind11_state.InvalidArgument,
                ort.capi.onnxruntime_pybind11_state.InvalidProtobuf) as e:
            raise OnnxUnsupported("ONNX Runtime cannot load {} ({})".format(onnx_path, _last_line(e)))
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.all_outputs = all_outputs

    def __call__(self, *inputs):
        """The first output (``all_outputs``: the list of every output)."""
        outs = self.session.run(None, dict(zip(self.input_names, _arrays(inputs))))
        return outs if self.all_outputs else outs[0]


def _export_key(cfg, mode_cfg, weights):
    h = hashlib.sha1()
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    meta = {"model": dict(cfg.MODEL), "shape": input_shape(mode_cfg), "paddle": paddle.__version__}
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _build(cfg, weights, output):
    model = build_model(cfg)
    load_weights(model, weights)
    return Features(model) if output == "features" else model


def make_runner(cfg, mode, weights, backend="auto", cpu_threads=None, cache_dir=None, exported=None, output="logits",
                spin=True):
    """A runner for ``mode`` (test/infer).

    ``auto``: onnxruntime on CPU (Paddle Inference if the ONNX conversion fails), the dynamic graph
    on GPU.  ``paddle-inference``/``onnxruntime`` export the model on the fly (cached by the weights'
    hash, the MODEL section and the input shape under ``<weights cache>/exported``) unless
    ``exported`` (a prefix written by ``run.sh export``) is given.  ``output="features"``: the runner
    returns pooled features instead of logits (an ``exported`` model is ignored then: its output is
    the logits).  ``spin=False``: ONNX Runtime's idle threads sleep rather than spin (for a model that shares the
    cores with loader workers).  Returns ``(runner, backend used)``.
    """
    if output == "features":
        exported = None
    m = cfg.mode(mode)
    if backend not in BACKENDS:
        raise UserError("--backend {!r}: use one of {}".format(backend, ", ".join(BACKENDS)))
    precision = m.precision
    if precision != "fp32":
        want = {"int8": "onnxruntime", "bf16": "paddle-inference"}[precision]
        if backend == "auto":
            backend = want
        if backend != want:
            raise UserError("--precision {} runs on --backend {} here ({}); pass --backend {} or --backend auto".format(
                precision, want, "ONNX Runtime's int8 QDQ kernels" if precision == "int8"
                else "oneDNN bfloat16; ONNX Runtime's CPU provider has no bf16 convolutions", want))
    if backend == "auto":
        if m.use_gpu:
            backend = "dygraph" if not exported else "paddle-inference"
        else:
            try:
                return _make_resolved(cfg, mode, weights, "onnxruntime", cpu_threads, cache_dir, exported, output,
                                      spin)
            except OnnxUnsupported as e:  # a conversion the toolchain does not support: take the other fast path
                print("warning: onnxruntime path unavailable ({}); using Paddle Inference".format(e), file=sys.stderr)
                backend = "paddle-inference"
    return _make(cfg, mode, weights, backend, cpu_threads, cache_dir, exported, output, spin)


def _last_line(e):
    text = str(e).strip()
    return text.splitlines()[-1] if text else type(e).__name__


def _make(cfg, mode, weights, backend, cpu_threads, cache_dir, exported, output, spin):
    """:func:`make_runner` for a resolved backend; an explicit ``onnxruntime`` that cannot take the model is a user
    error naming the other backends."""
    try:
        return _make_resolved(cfg, mode, weights, backend, cpu_threads, cache_dir, exported, output, spin)
    except OnnxUnsupported as e:
        if backend != "onnxruntime":
            raise
        raise UserError("{}; pass --backend paddle-inference (or auto)".format(e))


def _make_resolved(cfg, mode, weights, backend, cpu_threads, cache_dir, exported, output, spin):
    m = cfg.mode(mode)
    precision = m.precision
    if backend == "dygraph" and not exported:
        return dygraph_runner(_build(cfg, weights, output)), "dygraph"
    if backend == "dygraph":
        backend = "paddle-inference"
    prefix = exported
    if prefix is None:
        key = "{}-{}{}".format(_export_key(cfg, m, weights), SHIFT_IMPL[backend],
                               "-features" if output == "features" else "")
        d = os.path.join(download.cache_dir(cache_dir), "exported", key)
        prefix = os.path.join(d, "model")
        if not os.path.exists(prefix + ".pdiparams"):
            t0 = time.time()
            model = _build(cfg, weights, output)
            tmp = d + ".tmp{}".format(os.getpid())
            export_model(model, os.path.join(tmp, "model"), task_for(cfg).input_specs(m), SHIFT_IMPL[backend])
            os.makedirs(os.path.dirname(d), exist_ok=True)
            try:
                os.replace(tmp, d)
            except OSError:  # another process exported it meanwhile
                pass
            print("[export] {} exported for {} in {:.1f}s (cached in {})".format(
                cfg.MODEL.name, backend, time.time() - t0, d), file=sys.stderr)
    if backend == "onnxruntime":
        onnx_path = to_onnx(prefix, onnx_opset(cfg))
        if precision == "int8":
            return OnnxRunner(int8_model(onnx_path, m, cfg.mode("valid").filelist, cfg), cpu_threads,
                              spin=spin), "onnxruntime-int8"
        return OnnxRunner(onnx_path, cpu_threads, spin=spin), "onnxruntime"
    if precision == "bf16":
        return InferenceRunner(prefix, cpu_threads, m.use_gpu, bf16=True), "paddle-inference-bf16"
    return InferenceRunner(prefix, cpu_threads, m.use_gpu), "paddle-inference"


def int8_model(onnx_path, m, default_list=None, cfg=None):
    """The int8 version of ``onnx_path`` calibrated on ``m.calibration`` (else ``default_list``), cached
    beside it and keyed by the list's content and the number of samples.  With ``cfg`` the samples come from its
    task (:meth:`~paddlevideo.tasks.Classification.calibration_samples`: clips; detection: training keyframes with
    their proposals)."""
    from .quantize import calibration_clips, calibration_key, quantize_int8
    task = None
    if cfg is not None:
        from ..tasks import task_for
        task = task_for(cfg)
        default_list = task.calibration_list(cfg) or default_list
    lst = m.calibration or default_list
    if not lst:
        raise UserError("--precision int8 needs calibration clips: pass --calibration LIST (a few dozen clips of "
                        "your data; the config's VALID.filelist is used when it exists)")
    if not os.path.isfile(lst):
        raise UserError("calibration list {} not found (--calibration / VALID.filelist)".format(lst))
    out = "{}.int8-{}.onnx".format(onnx_path[:-len(".onnx")], calibration_key(lst, m.calibration_size))
    if not os.path.exists(out):
        samples = (task.calibration_samples(cfg, m, lst, m.calibration_size) if task is not None
                   else calibration_clips(m, lst, m.calibration_size))
        quantize_int8(onnx_path, out, samples)
    return out
