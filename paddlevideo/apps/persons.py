"""Person detectors for detection predict and the live pipeline: ``detector(frame RGB uint8 [H, W, 3]) -> [n, 5]``
pixel boxes (x1, y1, x2, y2) + score.

``--detector`` takes:

* nothing: OpenCV's HOG people detector (:class:`HOGPersonDetector`) — zero download, but it finds nobody in
  close-ups or seated people (0 persons on 5 keyframes of the bundled arm-wrestling clip): plug in a real one;
* ``module:attr``: any callable of that signature (a class is instantiated without arguments);
* ``ppdet:DIR`` or ``ppdet:URL[#md5=HEX]``: a **PaddleDetection exported model** (``model.json`` or
  ``model.pdmodel`` + ``model.pdiparams`` + ``infer_cfg.yml``, e.g. PP-Human's pedestrian detectors), run by Paddle
  Inference with the preprocessing its ``infer_cfg.yml`` states (:class:`PaddleDetectionPersons`); a URL (a zip or
  tar of that folder) is downloaded once into the weights cache, checked against the md5 when given.
"""
import importlib
import os

import cv2
import numpy as np

from ..errors import UserError


class HOGPersonDetector:
    """OpenCV's built-in HOG + linear SVM people detector (Dalal & Triggs): no download, weak on small or
    seated people.  ``__call__(frame RGB) -> [n, 5]`` pixel boxes with the SVM score squashed to (0, 1)."""

    def __init__(self, min_score=0.3, scale=1.05):
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.min_score, self.scale = min_score, scale

    def __call__(self, frame):
        h, w = frame.shape[:2]
        f = max(1.0, 400.0 / max(h, w))       # the detector's window is 64×128: upscale small frames
        img = cv2.resize(frame, (int(w * f), int(h * f))) if f > 1 else frame
        rects, weights = self.hog.detectMultiScale(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), winStride=(8, 8),
                                                   padding=(8, 8), scale=self.scale)
        out = []
        for (x, y, bw, bh), s in zip(rects, np.asarray(weights).reshape(-1)):
            score = float(1.0 / (1.0 + np.exp(-s)))
            if score >= self.min_score:
                out.append([x / f, y / f, (x + bw) / f, (y + bh) / f, score])
        return np.array(out, np.float32).reshape(-1, 5)


class PaddleDetectionPersons:
    """A PaddleDetection exported detector (``deploy/python/infer.py``'s contract): inputs ``image [1, 3, H, W]``,
    ``im_shape [1, 2]`` (h, w after the resize), ``scale_factor [1, 2]`` (sy, sx), fed by name (inputs the graph
    pruned are left out); output ``bbox [M, 6]`` = (class, score, x1, y1, x2, y2) in original-frame pixels after NMS.
    Keeps the ``person`` class (``label_list``'s, else class 0) at score >= ``threshold``; the preprocessing ops of
    ``infer_cfg.yml`` (Resize, NormalizeImage, Permute, PadStride) run in NumPy/OpenCV on the RGB frame."""

    OPS = ("Resize", "NormalizeImage", "Permute", "PadStride")

    def __init__(self, model_dir, threshold=None, cpu_threads=None):
        import yaml
        cfg_path = os.path.join(model_dir, "infer_cfg.yml")
        model = next((os.path.join(model_dir, n) for n in ("model.json", "model.pdmodel")
                      if os.path.isfile(os.path.join(model_dir, n))), None)
        if model is None or not os.path.isfile(cfg_path) or not os.path.isfile(os.path.join(model_dir, "model.pdiparams")):
            raise UserError("--detector ppdet:{} is not a PaddleDetection export (expected model.json or model.pdmodel, "
                            "model.pdiparams and infer_cfg.yml in it; tools/export_model.py writes them)".format(model_dir))
        try:
            with open(cfg_path) as f:
                cfg = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise UserError("--detector ppdet:{}: infer_cfg.yml is not valid YAML ({})".format(model_dir, e))
        self.ops = cfg.get("Preprocess") or []
        unknown = [op.get("type") for op in self.ops if op.get("type") not in self.OPS]
        if unknown:
            raise UserError("--detector ppdet:{}: infer_cfg.yml preprocessing {} is not supported (supported: {})".format(
                model_dir, ", ".join(map(str, unknown)), ", ".join(self.OPS)))
        labels = [str(x).lower() for x in cfg.get("label_list") or []]
        self.person = labels.index("person") if "person" in labels else 0
        self.threshold = float(threshold if threshold is not None else cfg.get("draw_threshold", 0.5))
        from paddle import inference
        config = inference.Config(model, os.path.join(model_dir, "model.pdiparams"))
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(cpu_threads or os.cpu_count() or 1)
        config.disable_glog_info()
        self.predictor = inference.create_predictor(config)
        self.inputs = list(self.predictor.get_input_names())

    def preprocess(self, frame):
        """RGB uint8 ``[H, W, 3]`` → ``(image [1, 3, H', W'] float32, im_shape [1, 2], scale_factor [1, 2])``."""
        img = np.asarray(frame, np.float32)
        h0, w0 = img.shape[:2]
        scale, chw = (1.0, 1.0), False
        for op in self.ops:
            kind = op.get("type")
            if kind == "Resize":
                th, tw = [int(v) for v in op["target_size"]]
                interp = int(op.get("interp", 1))
                if op.get("keep_ratio", True):
                    s = min(th, tw) / min(h0, w0)
                    if round(s * max(h0, w0)) > max(th, tw):
                        s = max(th, tw) / max(h0, w0)
                    scale = (s, s)
                else:
                    scale = (th / h0, tw / w0)
                img = cv2.resize(img, None, fx=scale[1], fy=scale[0], interpolation=interp)
            elif kind == "NormalizeImage":
                if op.get("is_scale", True):
                    img = img / 255.0
                if op.get("norm_type", "mean_std") != "none":
                    img = (img - np.asarray(op["mean"], np.float32)) / np.asarray(op["std"], np.float32)
            elif kind == "Permute":
                img = img.transpose(2, 0, 1)
                chw = True
            elif kind == "PadStride" and int(op.get("stride", 0)) > 0:
                stride = int(op["stride"])
                x = img if chw else img.transpose(2, 0, 1)
                c, h, w = x.shape
                padded = np.zeros((c, int(np.ceil(h / stride) * stride), int(np.ceil(w / stride) * stride)), np.float32)
                padded[:, :h, :w] = x
                img, chw = padded, True
        if not chw:
            img = img.transpose(2, 0, 1)
        im_shape = np.array([[h0 * scale[0], w0 * scale[1]]], np.float32)
        return (np.ascontiguousarray(img[None], dtype=np.float32), im_shape,
                np.array([scale], np.float32))

    def __call__(self, frame):
        image, im_shape, scale_factor = self.preprocess(frame)
        feeds = {"image": image, "im_shape": im_shape, "scale_factor": scale_factor}
        for name in self.inputs:
            if name not in feeds:
                raise UserError("PaddleDetection model input {!r} is not one of image, im_shape, scale_factor".format(name))
            self.predictor.get_input_handle(name).copy_from_cpu(feeds[name])
        self.predictor.run()
        bbox = np.asarray(self.predictor.get_output_handle(self.predictor.get_output_names()[0]).copy_to_cpu())
        bbox = bbox.reshape(-1, 6)
        h, w = np.asarray(frame).shape[:2]
        keep = (bbox[:, 0].astype(int) == self.person) & (bbox[:, 1] >= self.threshold)
        out = bbox[keep][:, [2, 3, 4, 5, 1]].astype(np.float32)
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, w)
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, h)
        return out[(out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])]


def load_detector(spec, cache_dir=None, cpu_threads=None):
    """``--detector``: None → HOG; ``ppdet:DIR|URL[#md5=HEX]`` → :class:`PaddleDetectionPersons`;
    ``module:attribute`` → that callable (a class is instantiated without arguments); a detector already built (a
    callable) is returned as it is."""
    if callable(spec):
        return spec
    if not spec:
        return HOGPersonDetector()
    if spec.startswith("ppdet:"):
        target = spec[len("ppdet:"):]
        md5 = None
        if "#md5=" in target:
            target, md5 = target.split("#md5=", 1)
        if not target:
            raise UserError("--detector ppdet: needs a folder or a URL, e.g. ppdet:output_inference/mot_ppyoloe_s_36e_pipeline")
        from .. import download
        folder = download.resolve(target, cache_dir, md5)
        if os.path.isdir(folder):
            inner = [os.path.join(folder, n) for n in os.listdir(folder)]
            if not os.path.isfile(os.path.join(folder, "infer_cfg.yml")) and len(inner) == 1 and os.path.isdir(inner[0]):
                folder = inner[0]
        elif download.is_url(target) is False:
            raise UserError("--detector ppdet:{}: no such folder".format(target))
        return PaddleDetectionPersons(folder, cpu_threads=cpu_threads)
    if ":" not in spec:
        raise UserError("--detector {!r}: expected module:attribute (e.g. mydet:PersonDetector) or ppdet:DIR|URL".format(spec))
    mod, attr = spec.split(":", 1)
    try:
        obj = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as e:
        raise UserError("--detector {}: cannot load it ({})".format(spec, e))
    return obj() if isinstance(obj, type) else obj


def check_boxes(boxes, spec, width, height):
    """A detector's output made safe: ``[n, 5]`` finite rows with x2 > x1, y2 > y1, clipped to the frame; raises a
    one-line error for output that is not boxes at all.  Returns ``(boxes, dropped rows)``."""
    try:
        b = np.asarray(boxes, np.float64)
        b = b.reshape(-1, b.shape[-1]) if b.size else np.zeros((0, 5))
    except (TypeError, ValueError) as e:
        raise UserError("--detector {}: returned something that is not an [n, 5] array of boxes ({})".format(spec, e))
    if b.shape[1] == 4:
        b = np.concatenate([b, np.ones((len(b), 1))], axis=1)
    if b.shape[1] < 5:
        raise UserError("--detector {}: returned rows of {} values; expected x1, y1, x2, y2, score".format(
            spec, b.shape[1]))
    b = b[:, :5]
    ok = np.isfinite(b).all(axis=1)
    b = b[ok]
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, width)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, height)
    good = (b[:, 2] > b[:, 0] + 1) & (b[:, 3] > b[:, 1] + 1)
    return b[good], int((~ok).sum() + (~good).sum())
