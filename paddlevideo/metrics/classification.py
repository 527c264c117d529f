"""Classification metrics in NumPy: top-k hits, log-softmax, the combination of a video's views, per-video
records (top-k JSON), and :class:`Metrics` (loss, top-1/5, confusion, per-class and mean class accuracy)
accumulated from records in any number of parts.  No Paddle, no data loading."""
import numpy as np


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


def combine_views(outputs, average="prob"):
    """Logits of a video's views ``[n, V, K]`` → log-probabilities ``[n, K]``: the log of the mean
    softmax (``average: prob``, mmaction2's ``average_clips='prob'``) or the log-softmax of the mean
    logits (``logit``); one view: its log-softmax."""
    if outputs.shape[1] == 1:
        return log_softmax(outputs[:, 0])
    if average == "logit":
        return log_softmax(outputs.mean(axis=1))
    return np.log(np.maximum(softmax(outputs).mean(axis=1), 1e-30))


def video_records(videos, items, positions=None, average="prob", k=5, names=None, labelled=True):
    """One record per video from :func:`~.common.per_video` output, in list order within each batch:
    ``{"index": list position, "video": path, ["label", "label_name"], "top_k": [{"label": name, "class": id,
    "score": probability}], ["loss": -log p(label)]}``, or ``{"index", "video", "error"}`` for a video that
    could not be decoded.  ``positions[i]``: the list position of ``items[i]`` (a shard's sub-list)."""
    where = (lambda i: int(positions[i])) if positions is not None else int   # noqa: E731
    for idx, y, outputs, bad in videos:
        recs = [{"index": where(i), "video": items[int(i)][0], "error": "cannot decode this video"} for i in bad]
        if outputs is not None:
            logp = combine_views(outputs, average)
            top = np.argsort(-logp, axis=1)[:, :min(k, logp.shape[1])]
            for j, i in enumerate(idx):
                r = {"index": where(i), "video": items[int(i)][0]}
                if labelled:
                    r["label"] = int(y[j])
                    r["label_name"] = names[y[j]] if names else str(y[j])
                r["top_k"] = [{"label": names[c] if names else str(c), "class": int(c),
                               "score": float(np.exp(logp[j, c]))} for c in top[j]]
                if labelled:
                    r["loss"] = float(-logp[j, y[j]])
                recs.append(r)
        yield from sorted(recs, key=lambda r: r["index"])


class Metrics:
    """Loss, top-1/5, confusion, per-class and mean class accuracy, accumulated from video records in any
    number of parts (:meth:`merge`); the same numbers however the list was split."""

    def __init__(self, num_classes):
        self.num_classes = num_classes
        self.n = self.c1 = self.c5 = 0
        self.loss = 0.0
        self.skipped = []
        self.confusion = np.zeros((num_classes, num_classes), np.int64)

    def add(self, rec):
        if "error" in rec:
            self.skipped.append(rec["video"])
            return
        y, classes = rec["label"], [t["class"] for t in rec["top_k"]]
        self.n += 1
        self.loss += rec["loss"]
        self.c1 += classes[0] == y
        self.c5 += y in classes[:5]
        self.confusion[y, classes[0]] += 1

    @staticmethod
    def merge(parts):
        out = Metrics(parts[0].num_classes)
        for p in parts:
            out.n, out.c1, out.c5, out.loss = out.n + p.n, out.c1 + p.c1, out.c5 + p.c5, out.loss + p.loss
            out.skipped += p.skipped
            out.confusion += p.confusion
        return out

    def summary(self, num_videos):
        n = self.n
        rows = per_class(self.confusion if n else None)
        return {
            "loss": self.loss / n if n else None,
            "top1_acc": self.c1 / n if n else None,
            "top5_acc": self.c5 / n if n else None,
            "num_videos": num_videos,
            "num_evaluated": n,
            "num_skipped": len(self.skipped),
            "skipped": self.skipped,
            "confusion": self.confusion.tolist() if n else None,    # rows: true, cols: predicted
            "per_class": rows,
            "mean_class_acc": float(np.mean([r["top1"] for r in rows])) if rows else None,
        }


def per_class(confusion):
    """``[{"index", "count", "top1"}]`` for every class with at least one evaluated video."""
    if confusion is None:
        return []
    cm = np.asarray(confusion)
    return [{"index": c, "count": int(cm[c].sum()), "top1": float(cm[c, c] / cm[c].sum())}
            for c in range(len(cm)) if cm[c].sum()]
