"""Pieces shared by train, eval and predict: device, labels, weights, metrics, a model forward."""
import json
import os
import sys

import numpy as np
import paddle

from .. import download
from ..config import resolve_path
from ..data import unpack_batch
from ..errors import UserError


def set_device(use_gpu):
    if use_gpu:
        if not paddle.device.is_compiled_with_cuda():
            raise UserError("--use_gpu True but this Paddle has no CUDA support; install "
                            "paddlepaddle-gpu (see README) or pass --use_gpu False")
        paddle.set_device("gpu")
    else:
        paddle.set_device("cpu")


def log(msg):
    print(msg, flush=True)


def warn(msg):
    print("warning: " + msg, file=sys.stderr, flush=True)


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


def write_json(path, obj):
    """Write ``obj`` as indented JSON to ``path``, creating its folder."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)


def resolve_weights(cfg, weights, cache_dir=None):
    """Weights for eval/predict: ``--weights``, else ``MODEL.weights`` (a URL is downloaded once
    into the weights cache)."""
    if weights:
        return resolve_path(download.resolve(weights, cache_dir))
    if not cfg.MODEL.weights:
        raise UserError("no weights given; pass --weights PATH/TO/NAME_final.pdparams "
                        "(or set MODEL.weights in the config)")
    return resolve_path(download.resolve(cfg.MODEL.weights, cache_dir, cfg.MODEL.weights_md5))


def topk_correct(logits, labels, k):
    """Number of rows whose label is among the top-k logits.  logits ``[N, C]``, labels ``[N]``."""
    k = min(k, logits.shape[1])
    top = np.argsort(-logits, axis=1)[:, :k]
    return int((top == labels[:, None]).any(axis=1).sum())


def log_softmax(logits):
    """Numerically stable log-softmax over the last axis of a NumPy array."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits):
    return np.exp(log_softmax(logits))


def run_views(runner, x, batch_size):
    """``x [B, T, C, H, W]`` (one view each) or ``[B, V, T, C, H, W]`` → ``runner`` outputs ``[B, V, K]``;
    the ``B*V`` views go through ``runner`` in chunks of ``batch_size``."""
    x = x.numpy() if hasattr(x, "numpy") else np.asarray(x)
    if x.ndim == 5:
        x = x[:, None]
    b, v = x.shape[:2]
    flat = x.reshape((b * v,) + x.shape[2:])
    out = np.concatenate([runner(flat[k:k + batch_size]) for k in range(0, len(flat), batch_size)])
    return out.reshape(b, v, -1)


def per_video(loader, runner, batch_size, clips_per_video=1):
    """Run every clip of ``loader`` through ``runner``; yield, batch by batch, the videos whose clips
    have all been seen: ``(indices [n], labels [n], outputs [n, V, K], failed indices)`` where V =
    clips × crops (a video with any undecodable clip is failed).  The loader must not shuffle (a video's
    clips are consecutive samples, see :class:`~paddlevideo.data.VideoDataset`)."""
    pending = {}

    def entry(i):
        return pending.setdefault(int(i), {"label": -1, "outs": [], "seen": 0, "failed": False})
    for batch in loader:
        clips, y, idx, bad = unpack_batch(batch)
        outs = run_views(runner, clips, batch_size) if clips is not None else []
        for i, label, out in zip(idx, y, outs):
            e = entry(i)
            e["label"], e["seen"] = int(label), e["seen"] + 1
            e["outs"].append(out)
        for i in bad:
            e = entry(i)
            e["seen"], e["failed"] = e["seen"] + 1, True
        done = sorted(i for i, e in pending.items() if e["seen"] == clips_per_video)
        ok = [i for i in done if not pending[i]["failed"]]
        result = (np.array(ok, np.int64), np.array([pending[i]["label"] for i in ok], np.int64),
                  np.stack([np.concatenate(pending[i]["outs"]) for i in ok]) if ok else None,
                  [i for i in done if pending[i]["failed"]])
        for i in done:
            del pending[i]
        if done:
            yield result


def combine_views(outputs, average="prob"):
    """Logits of a video's views ``[n, V, K]`` → log-probabilities ``[n, K]``: the log of the mean
    softmax (``average: prob``, mmaction2's ``average_clips='prob'``) or the log-softmax of the mean
    logits (``logit``); one view: its log-softmax."""
    if outputs.shape[1] == 1:
        return log_softmax(outputs[:, 0])
    if average == "logit":
        return log_softmax(outputs.mean(axis=1))
    return np.log(np.maximum(softmax(outputs).mean(axis=1), 1e-30))


def samples_per_batch(m):
    """Loader samples per batch: ``batch_size`` views per model call and ``num_crops`` views per sample
    (one temporal clip), so ``batch_size // num_crops`` samples, at least one."""
    return max(1, m.batch_size // m.num_crops)
