"""What differs between model families, behind one interface (the one hook of the shared code).

A task owns a family's data (list/annotation reading, dataset, collate), its inputs, its loss, its training
counts, its validation, and which app evaluates and predicts it; training, ``eval.py``, ``export.py`` and
``predict.py`` call ``task_for(cfg)`` and nothing else differs — no other module branches on a task or model
name.  Two tasks exist:

* :class:`Classification` — one clip ``[N, T, C, H, W]`` → logits ``[N, K]``; cross-entropy; top-1/5.
* :class:`Detection` — AVA: clip ``[N, T, 3, H, W]`` + boxes ``[R, 4]`` + boxes_num ``[N]`` → logits
  ``[R, K]``; the model's own ``loss`` (BCE on labelled RoIs); "top-1/5" in training logs = labelled RoIs
  whose best (top-5) class is one of their labels; evaluation = frame-mAP (:mod:`.ava_eval`).
"""
import os
import tempfile

import numpy as np
import paddle
import paddle.nn.functional as F

from .config import input_channels
from .errors import UserError
from .data import VideoDataset, build_loader, parse_list, unpack_batch
from .data import ava
from .models import task_of
from .metrics.classification import topk_correct
from .report import warn
from .runtime.batches import samples_per_batch


def _tensor(x, dtype=None):
    t = x if isinstance(x, paddle.Tensor) else paddle.to_tensor(np.asarray(x))
    return t.astype(dtype) if dtype and t.dtype != getattr(paddle, dtype) else t


class Classification:
    name = "classification"
    unit = "videos"                   # what one item of the lists is, in log lines
    per_person = False                # the model scores person boxes (the live pipeline needs such a model)
    parallel_validation = True        # validation gathers over the ranks of a data-parallel run

    def validate(self, runner, loader, items, ds, cfg, world):
        """Training's validation: ``(summary, log line)`` over every rank (loss/top-1/top-5)."""
        from .metrics.classification import Metrics
        from .runtime import parallel
        from .runtime.batches import run_eval
        vm = cfg.mode("valid")
        part = run_eval(runner, loader, items, vm.num_classes, desc="valid", batch_size=vm.batch_size,
                        average=vm.average, clips_per_video=ds.clips_per_video)
        res = Metrics.merge(parallel.gather(part, world)).summary(len(items))
        line = ("Loss: {:.6f},\ttop1_acc: {:.4f},\ttop5_acc: {:.4f}\t({} videos, {} skipped)".format(
            res["loss"], res["top1_acc"], res["top5_acc"], res["num_evaluated"], res["num_skipped"])
            if res["num_evaluated"] else None)
        return res, line

    def calibration_list(self, cfg):
        """The default list int8 calibration reads (None: the caller's default, VALID.filelist)."""
        return None

    def calibration_samples(self, cfg, m, list_path, size):
        """int8 calibration inputs: up to ``size`` single-view clips ``[1, T, C, H, W]`` of ``list_path``."""
        from .runtime.quantize import calibration_clips
        return calibration_clips(m, list_path, size)

    def evaluate_app(self, cfg, model_name, **kw):
        """``eval.py``: the app that evaluates this family (:func:`paddlevideo.apps.evaluate.evaluate_classification`)."""
        from .apps.evaluate import evaluate_classification
        return evaluate_classification(cfg, model_name, **kw)

    def predict_app(self, cfg, args):
        """``predict.py`` on a video or a list (not ``--online``): top-k, a timeline, or features."""
        from .apps.predict import predict_cli
        return predict_cli(cfg, args)

    def read(self, m, skip_bad_lines=False, need_label=True):
        """The mode's list → items ``[(path, label)]``."""
        return parse_list(m.filelist, m.num_classes, m.format, need_label=need_label, skip_bad=skip_bad_lines,
                          root=m.data_root)

    def dataset(self, items, m, seed=0):
        return VideoDataset(items, m, seed=seed)

    def loader(self, ds, m, shuffle=False, drop_last=False, seed=0, rank=0, world=1, pad=True, train=False):
        size = m.batch_size if train else samples_per_batch(m)
        return build_loader(ds, size, shuffle, drop_last, m.num_reader_threads, seed, rank, world, pad)

    def unpack(self, batch):
        """``(inputs tuple or None, targets, indices, failed indices)``."""
        clips, y, idx, failed = unpack_batch(batch)
        return (None if clips is None else (clips,)), y, idx, failed

    def loss(self, model, outputs, targets):
        return F.cross_entropy(outputs, paddle.to_tensor(targets))

    def counts(self, outputs, targets):
        """``(n, top-1 hits, top-5 hits)`` of a training batch."""
        lg = outputs.astype("float32").numpy()
        return len(targets), topk_correct(lg, targets, 1), topk_correct(lg, targets, 5)

    def zero_inputs(self, m):
        """A one-sample input for the zero-loss step of a rank whose batch failed entirely."""
        return (paddle.zeros([1] + input_shape(m), "float32"),)

    def input_specs(self, m):
        return [paddle.static.InputSpec([None] + input_shape(m), "float32", "x")]


class Detection(Classification):
    name = "detection"
    unit = "keyframes"
    per_person = True
    parallel_validation = False

    def validate(self, runner, loader, items, ds, cfg, world):
        from .config import label_map_path
        res = self.evaluate(runner, loader, items, cfg.mode("valid"), label_map_path(cfg), desc="valid")
        line = ("frame-mAP@0.5: {:.4f}\t({} keyframes, {} skipped)".format(
            res["mAP"], res["num_evaluated"], res["num_skipped"]) if res["mAP"] is not None else None)
        return res, line

    def calibration_list(self, cfg):
        """Detection calibrates on the training keyframes (TRAIN's GT CSV with its proposals and frames)."""
        return cfg.mode("train").filelist

    def calibration_samples(self, cfg, m, list_path, size):
        """Up to ``size`` keyframes of ``list_path`` (an AVA GT CSV; TRAIN's proposals, exclusions and frames) in
        the test transforms: ``(clip [1, T, 3, H, W], boxes [R, 4], boxes_num [1])`` tuples."""
        tm = cfg.mode("train")
        cm = type(m)(m, filelist=list_path, proposal_file=tm.proposal_file, exclude_file=tm.exclude_file,
                     data_root=tm.data_root, mode="test")
        records = self.read(cm)
        if not records:
            raise UserError("calibration keyframes {}: none could be read".format(list_path))
        pick = np.linspace(0, len(records) - 1, min(size, len(records))).round().astype(int)
        ds = self.dataset([records[i] for i in sorted(set(pick.tolist()))], cm)
        out = []
        for i in range(len(ds)):
            try:
                sample = ds[i]
            except Exception:  # noqa: BLE001  (an unreadable keyframe is skipped, as in evaluation)
                continue
            batch = ava.collate([sample])
            inputs, _, _, _ = ava.unpack(batch)
            if inputs is None:
                continue
            clip, boxes, counts = (_np(v) for v in inputs)
            out.append((clip[:1].astype(np.float32), boxes[:int(counts[0])].astype(np.float32),
                        counts[:1].astype(np.int32)))
        if not out:
            raise UserError("calibration keyframes {}: none could be decoded".format(list_path))
        return out

    def evaluate_app(self, cfg, model_name, resume=False, **kw):
        from .apps.evaluate import evaluate_detection
        if resume:
            raise UserError("--resume is for classification eval/predict/features; a detection evaluation "
                            "reruns from the start")
        for key in ("log_interval", "skip_bad_lines"):
            kw.pop(key, None)
        return evaluate_detection(cfg, model_name, **kw)

    def predict_app(self, cfg, args):
        from .apps.detect import detect_cli
        return detect_cli(cfg, args)

    def read(self, m, skip_bad_lines=False, need_label=True):
        records, problems = ava.load_records(m, train=m.mode == "train")
        if problems.total():
            warn("{}: {} annotation rows/keyframes skipped ({})".format(m.filelist, problems.total(),
                                                                       problems.summary()))
        return records

    def dataset(self, items, m, seed=0):
        return ava.AVADataset(items, m, seed=seed)

    def loader(self, ds, m, shuffle=False, drop_last=False, seed=0, rank=0, world=1, pad=True, train=False):
        return build_loader(ds, m.batch_size, shuffle, drop_last, m.num_reader_threads, seed, rank, world, pad,
                            collate=ava.collate)

    def unpack(self, batch):
        inputs, labels, idx, failed = ava.unpack(batch)
        if inputs is not None:
            inputs = (inputs[0], inputs[1], _tensor(inputs[2], "int32"))
        return inputs, labels, idx, failed

    def loss(self, model, outputs, targets):
        net = getattr(model, "_layers", model)              # DataParallel wraps the model
        return net.loss(outputs, _tensor(targets, "float32"))

    def counts(self, outputs, targets):
        lg = outputs.astype("float32").numpy()[:, 1:]
        t = np.asarray(targets.numpy() if hasattr(targets, "numpy") else targets)[:, 1:] > 0
        pos = t.any(axis=1)
        if not pos.any():
            return 0, 0, 0
        lg, t = lg[pos], t[pos]
        order = np.argsort(-lg, axis=1)
        hit = lambda k: int(np.take_along_axis(t, order[:, :k], axis=1).any(axis=1).sum())  # noqa: E731
        return int(pos.sum()), hit(1), hit(5)

    def zero_inputs(self, m):
        s = m.target_size
        return (paddle.zeros([1, m.seg_num, 3, s, s], "float32"), paddle.to_tensor([[0.0, 0.0, s - 1.0, s - 1.0]]),
                paddle.to_tensor([1], "int32"))

    def input_specs(self, m):
        return [paddle.static.InputSpec([None, m.seg_num, 3, None, None], "float32", "x"),
                paddle.static.InputSpec([None, 4], "float32", "boxes"),
                paddle.static.InputSpec([None], "int32", "boxes_num")]

    def score(self, runner, loader, records, out_csv, desc="eval"):
        """Score every keyframe's proposals and stream them to the AVA result CSV ``out_csv`` (one row per box
        and class, never all in memory); return the keys of the keyframes that could not be read."""
        from tqdm import tqdm
        from .metrics.ava import write_detections
        skipped = []

        def rows():
            for batch in tqdm(loader, desc=desc, leave=False, mininterval=2):
                inputs, _, idx, failed = self.unpack(batch)
                skipped.extend(records[int(i)]["key"] for i in failed)
                if inputs is None:
                    continue
                clips, counts = _np(inputs[0]), _np(inputs[2])
                for k, (i, rois) in enumerate(zip(idx, ava.group_rows(_np(inputs[1]), counts))):
                    # one clip per call: paddle2onnx maps boxes_num of a batch > 1 to the wrong image (measured)
                    logits = runner(clips[k:k + 1], rois, counts[k:k + 1])
                    p = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))
                    r = records[int(i)]
                    for box, row in zip(r["proposals"], p):
                        for c in range(1, p.shape[1]):
                            yield r["video"], r["ts"], box, c, row[c]
        write_detections(out_csv, rows())
        return skipped

    def evaluate(self, runner, loader, records, m, label_map, out_csv=None, desc="eval"):
        """Score every keyframe's proposals (:meth:`score`), write the result CSV (``out_csv``, else a temporary
        file) and return the official frame-mAP summary (:func:`.ava_eval.evaluate_files`) plus counts."""
        tmp = None
        if out_csv is None:
            fd, tmp = tempfile.mkstemp(suffix=".csv")
            os.close(fd)
        try:
            skipped = self.score(runner, loader, records, out_csv or tmp, desc)
            res = self.summary(records, skipped, m, out_csv or tmp, label_map)
        finally:
            if tmp:
                os.remove(tmp)
        return res

    def summary(self, records, skipped, m, csv, label_map):
        from .metrics.ava import evaluate_files
        res = evaluate_files(m.filelist, csv, label_map, m.exclude_file, capacity=m.capacity)
        res.update({"num_keyframes": len(records), "num_evaluated": len(records) - len(skipped),
                    "num_skipped": len(skipped), "skipped_keyframes": skipped, "loss": None})
        return res


def _np(x):
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


def input_shape(m):
    """``[seg_num, C*seglen, H, W]`` of one clip in a mode's settings (C: 3 RGB, 2 flow, 5 RGB + flow)."""
    return [m.seg_num, input_channels(m.format) * m.seglen, m.target_size, m.target_size]


TASKS = {"classification": Classification(), "detection": Detection()}


def task_for(cfg):
    """The task of ``cfg``'s model family."""
    return TASKS[task_of(cfg)]
