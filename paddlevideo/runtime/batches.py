"""Running a model over batches: the device, the weights to run, views through a runner, per-video grouping
of a loader's clips, and training's validation pass (:func:`run_eval`)."""
import numpy as np
import paddle
from tqdm import tqdm

from .. import download
from ..config import resolve_path
from ..data import unpack_batch
from ..errors import UserError
from ..metrics.classification import Metrics, video_records


def set_device(use_gpu):
    if use_gpu:
        if not paddle.device.is_compiled_with_cuda():
            raise UserError("--use_gpu True but this Paddle has no CUDA support; install "
                            "paddlepaddle-gpu (see README) or pass --use_gpu False")
        paddle.set_device("gpu")
    else:
        paddle.set_device("cpu")


def resolve_weights(cfg, weights, cache_dir=None):
    """Weights for eval/predict: ``--weights``, else ``MODEL.weights`` (a URL is downloaded once
    into the weights cache)."""
    if weights:
        return resolve_path(download.resolve(weights, cache_dir))
    if not cfg.MODEL.weights:
        raise UserError("no weights given; pass --weights PATH/TO/NAME_final.pdparams "
                        "(or set MODEL.weights in the config)")
    return resolve_path(download.resolve(cfg.MODEL.weights, cache_dir, cfg.MODEL.weights_md5))


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


def samples_per_batch(m):
    """Loader samples per batch: ``batch_size`` views per model call and ``num_crops`` views per sample
    (one temporal clip), so ``batch_size // num_crops`` samples, at least one."""
    return max(1, m.batch_size // m.num_crops)

def run_eval(runner, loader, items, num_classes, desc="eval", batch_size=1, average="prob", clips_per_video=1):
    """Evaluate with ``runner`` (clips -> logits, see backends) on ``loader`` over ``items``; return the
    :class:`Metrics` (training's validation; eval.py streams the records instead, :func:`evaluate_model`).
    With test views every video's ``clips_per_video`` clips x crops are combined by
    :func:`~.common.combine_views` (``average`` prob|logit); ``batch_size`` views go through the model per call."""
    metrics = Metrics(num_classes)
    videos = per_video(tqdm(loader, desc=desc, leave=False, mininterval=2), runner, batch_size, clips_per_video)
    for rec in video_records(videos, items, average=average):
        metrics.add(rec)
    return metrics
