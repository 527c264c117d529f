"""Pieces shared by train, eval and predict: device, labels, weights, metrics, a model forward."""
import os
import sys

import numpy as np
import paddle

from .. import download
from ..config import resolve_path
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


def view_scorer(runner, batch_size, average="prob"):
    """``clips -> log-probabilities [B, num_classes]`` for a batch of videos.

    ``clips`` is ``[B, T, C, H, W]`` (one view per video) or ``[B, V, T, C, H, W]`` (V test views per
    video); the ``B*V`` views go through ``runner`` in chunks of ``batch_size`` (memory stays bounded
    for 10 clips × 3 crops) and are combined per video by averaging the softmax probabilities
    (``average: prob``, mmaction2's ``average_clips='prob'``) or the logits (``logit``)."""
    def score(clips):
        x = clips.numpy() if hasattr(clips, "numpy") else np.asarray(clips)
        if x.ndim == 5:
            return log_softmax(runner(x))
        logits = run_views(runner, x, batch_size)
        if average == "logit":
            return log_softmax(logits.mean(axis=1))
        return np.log(np.maximum(softmax(logits).mean(axis=1), 1e-30))
    return score


def run_views(runner, x, batch_size):
    """``x [B, V, T, C, H, W]`` → ``runner`` outputs ``[B, V, K]``, the ``B*V`` views in chunks of ``batch_size``."""
    b, v = x.shape[:2]
    flat = x.reshape((b * v,) + x.shape[2:])
    out = np.concatenate([runner(flat[k:k + batch_size]) for k in range(0, len(flat), batch_size)])
    return out.reshape(b, v, -1)


def videos_per_batch(m):
    """Videos per loader batch: ``batch_size`` views per model call, so ``batch_size // views`` videos
    (at least one) when every video brings ``num_clips × num_crops`` views."""
    return max(1, m.batch_size // (m.num_clips * m.num_crops))
