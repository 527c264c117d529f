"""List files → ``paddle.io.Dataset`` → ``paddle.io.DataLoader``.

List format (``MODEL.format: mp4``): one ``path label`` per line; the label is the last
whitespace-separated token, so paths may contain spaces; relative paths are taken relative to
the list file (falling back to the working directory, as the legacy lists were).  In INFER mode
the label may be left out.  ``format: pkl``: one pickle path per line (label inside the pickle).

Each sample is ``(clip [seg_num, 3*seglen, H, W] float32, label int64, index int64)``.  With test-time
views (``num_clips`` × ``num_crops`` > 1, test/infer only) every video gives ``num_clips`` consecutive
samples, one per temporal clip, each ``[num_crops, seg_num, 3*seglen, H, W]`` with the video's index:
one clip's crops are in memory at a time, not all views of a video (10 × 3 StNet views would be 3 GB).  A video
that cannot be decoded is not replaced by another: it is reported in the batch's ``failed``
indices and the consumer counts it.
"""
import os
import sys

import cv2
import numpy as np
import paddle

from .lists import parse_list  # noqa: F401  (re-exported: data.dataset.parse_list)
from .flow import flow_from_video, read_flow_dir, read_rgb_flow
from .sampling import clip_indices, multiview_indices
from .transforms import test_views, transform_clip
from .video import VideoError, call_with_timeout, read_frame_dir, read_frames, read_pkl


class VideoDataset(paddle.io.Dataset):
    """Clips of a list file.  Index with ``(epoch, i)`` (or ``i``): the random choices of
    sample ``i`` in ``epoch`` come from ``seed``, ``epoch`` and ``i`` only, so they do not depend
    on the number of workers or on where a resumed run started."""

    def __init__(self, items, cfg, seed=0):
        self.items = items
        self.cfg = cfg
        self.train = cfg.mode == "train"
        self.seed = seed
        self.views = not self.train and cfg.num_clips * cfg.num_crops > 1
        self.clips_per_video = cfg.num_clips if self.views else 1

    def __len__(self):
        return len(self.items) * self.clips_per_video

    def load(self, i, epoch=0, clip=0):
        """Decode and transform video ``i`` (with test views: its temporal clip ``clip``, all crops);
        raises :class:`VideoError`."""
        path, label = self.items[i]
        cfg = self.cfg
        rng = np.random.default_rng([self.seed, epoch, i])
        views = self.views

        def choose(n):
            if views:
                return multiview_indices(n, cfg.num_clips, cfg.sampling, cfg.seg_num, cfg.seglen,
                                         cfg.frame_interval)[clip]
            return clip_indices(n, cfg, self.train, rng)

        if cfg.format == "pkl":
            frames, pkl_label = call_with_timeout(lambda: read_pkl(path, choose), cfg.decode_timeout)
            label = pkl_label if label < 0 else label
        elif cfg.format == "frames":
            frames = call_with_timeout(lambda: read_frame_dir(path, choose), cfg.decode_timeout)
        elif cfg.format == "flow":          # a flow folder (read under the timeout), or a video whose flow is
            frames = (call_with_timeout(lambda: read_flow_dir(path, choose), cfg.decode_timeout)  # computed now
                      if os.path.isdir(path)
                      else flow_from_video(path, choose, cfg.flow_method, progress=cfg.mode == "infer"))
        elif cfg.format == "rgb_flow":      # two-stream: RGB + flow of the same frames, 5 channels
            frames = read_rgb_flow(path, choose, cfg.flow_root, cfg.flow_method, progress=cfg.mode == "infer")
        else:
            frames = call_with_timeout(lambda: read_frames(path, choose, cfg.decoder), cfg.decode_timeout)
        try:
            if views:
                return test_views(frames, cfg), label
            return transform_clip(frames, cfg, self.train, rng), label
        except (cv2.error, ValueError) as e:  # e.g. degenerate frame sizes
            raise VideoError("frames cannot be transformed ({})".format(str(e).strip().splitlines()[-1]))

    def __getitem__(self, key):
        epoch, j = key if isinstance(key, tuple) else (0, key)
        i, k = divmod(j, self.clips_per_video)
        try:
            clip, label = self.load(i, epoch, k)
            return clip, label, i
        except VideoError as e:
            if k == 0 or self.clips_per_video == 1:          # one line per video
                print("warning: skipped {}: cannot decode ({})".format(self.items[i][0], e), file=sys.stderr)
            return None, -1, i


def collate(samples):
    """Stack the decodable samples: ``(clips [B', ...] float32, meta [B, 3] int64)``.

    ``meta`` rows are ``(index, label, ok)`` for every sample of the batch, failed ones included
    (Paddle's loader cannot carry empty arrays, so a batch with no decodable clip carries a 1-element
    placeholder that :func:`unpack_batch` drops).
    """
    ok = [s for s in samples if s[0] is not None]
    clips = np.stack([s[0] for s in ok]) if ok else np.zeros((1, 1, 1, 1, 1), np.float32)
    meta = np.array([[s[2], s[1], s[0] is not None] for s in samples], np.int64)
    return clips, meta


def unpack_batch(batch):
    """``(clips Tensor or None, labels [B'], indices [B'], failed indices)`` from a collated batch."""
    clips, meta = batch
    meta = meta.numpy() if hasattr(meta, "numpy") else meta
    ok = meta[:, 2] == 1
    return (clips if ok.any() else None), meta[ok, 1], meta[ok, 0], meta[~ok, 0]


class EpochBatchSampler(paddle.io.Sampler):
    """Batches of ``(epoch, index)``; shuffled by ``seed`` and ``epoch`` when ``shuffle``.

    Data parallel (``world`` > 1): like ``paddle.io.DistributedBatchSampler``, the epoch's order is
    shared by all ranks and rank r takes positions ``r, r + world, ...`` — in training (``pad``) the order
    is first padded with its own head to a multiple of ``world`` so that every rank has as many batches;
    in evaluation (no padding) every item is taken by exactly one rank.  The order comes from the run's
    seed and the epoch, so a resumed run repeats it.  ``group`` > 1 keeps runs of ``group`` consecutive
    items (a video's test clips) on one rank.

    ``len()`` is the rank's full epoch; with ``start_batch`` = k the first k batches are not yielded."""

    def __init__(self, n, batch_size, shuffle, drop_last, seed=0, rank=0, world=1, pad=True, group=1):
        self.n, self.batch_size, self.shuffle, self.drop_last, self.seed = n, batch_size, shuffle, drop_last, seed
        self.rank, self.world, self.pad, self.group = rank, world, pad, group
        self.epoch = 0
        self.start_batch = 0   # skip the batches a resumed run already trained on

    def indices(self):
        """This rank's items of the current epoch, in order."""
        units = self.n // self.group
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(units)
                 if self.shuffle else np.arange(units))
        if self.world > 1:
            if self.pad and len(order) % self.world:
                order = np.concatenate([order, order[:self.world - len(order) % self.world]])
            order = order[self.rank::self.world]
        if self.group > 1:
            order = (order[:, None] * self.group + np.arange(self.group)[None]).reshape(-1)
        return order

    def __iter__(self):
        order = self.indices()
        for k in range(self.start_batch * self.batch_size, len(order), self.batch_size):
            batch = order[k:k + self.batch_size]
            if self.drop_last and len(batch) < self.batch_size:
                break
            yield [(self.epoch, int(i)) for i in batch]

    def __len__(self):
        n = len(self.indices())
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def build_loader(dataset, batch_size, shuffle=False, drop_last=False, num_workers=0, seed=0, rank=0, world=1,
                 pad=True, collate=collate, nice=0):
    """A ``paddle.io.DataLoader`` over ``dataset`` (rank ``rank``'s shard when ``world`` > 1, see
    :class:`EpochBatchSampler`); set ``loader.batch_sampler.epoch`` per epoch.  ``nice`` > 0: the worker
    processes run at that lower CPU priority (inference: decoding fills the cycles the model leaves idle instead
    of preempting its threads)."""
    sampler = EpochBatchSampler(len(dataset), batch_size, shuffle, drop_last, seed, rank, world, pad,
                                getattr(dataset, "clips_per_video", 1))
    workers = max(0, min(num_workers, os.cpu_count() or 1))
    return paddle.io.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=workers,
                                return_list=True, worker_init_fn=_lower_priority(nice) if nice and workers else None)


def _lower_priority(nice):
    def init(worker_id):
        try:
            os.nice(nice)
        except OSError:                     # not permitted: keep the priority
            pass
    return init
