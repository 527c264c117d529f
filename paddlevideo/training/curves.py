"""Training curves from ``NAME_log.jsonl`` (see :class:`~.loop.JsonLog`): a PNG per run, several runs in
one figure (``scripts/plot_log.py``), and VisualDL scalars when VisualDL is installed."""
import json
import os

from ..errors import UserError


def read_jsonl(path):
    """The records of a ``NAME_log.jsonl``; a line that is not JSON (a run killed mid-write) is skipped."""
    if not os.path.isfile(path):
        raise UserError("log {} not found; train.py writes SAVE_DIR/NAME_log.jsonl".format(path))
    out = []
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def plot_curves(runs, path, title=None, chance=None):
    """``runs``: ``{label: records}``.  Three panels against the global step: training loss (per log
    interval, thin; per epoch, dots), top-1 (training per epoch, dashed; validation per epoch, solid)
    and the learning rate.  Returns ``path``."""
    from ..metrics.plots import new_figure
    fig, ax = new_figure((15, 4), 1, 3)
    for i, (label, recs) in enumerate(runs.items()):
        color = "C{}".format(i % 10)
        it = [r for r in recs if r.get("type") == "iter"]
        ep = [r for r in recs if r.get("type") == "epoch"]
        if it:
            ax[0].plot([r["step"] for r in it], [r["loss"] for r in it], color=color, lw=1, alpha=0.7, label=label)
        ax[0].plot([r["step"] for r in ep], [r["loss"] for r in ep], "o", color=color,
                   label=None if it else label)
        ax[1].plot([r["step"] for r in ep], [r["top1"] for r in ep], "--", marker=".", color=color,
                   label="{} train".format(label))
        val = [r for r in ep if r.get("valid_top1") is not None]
        if val:
            ax[1].plot([r["step"] for r in val], [r["valid_top1"] for r in val], "-", marker="o", color=color,
                       label="{} valid".format(label))
        lr = it or ep
        ax[2].plot([r["step"] for r in lr], [r["lr"] for r in lr], color=color, label=label)
    if chance:
        ax[1].axhline(chance, color="grey", ls=":", label="chance")
    ax[0].set(title="training loss", xlabel="step", ylabel="cross-entropy")
    ax[1].set(title="top-1 per epoch", xlabel="step", ylabel="accuracy", ylim=(0, 1.02))
    ax[2].set(title="learning rate", xlabel="step", ylabel="lr")
    for a in ax:
        a.grid(alpha=0.3)
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=90)
    os.replace(tmp, path)
    return path


class VisualDLWriter:
    """Scalars for VisualDL (``visualdl --logdir DIR``): ``train/loss``, ``train/top1``, ``train/lr``,
    ``train/clips_per_s`` per log interval and ``epoch/*`` (loss, top1, top5, valid_loss, valid_top1)
    per epoch, against the global step."""

    def __init__(self, logdir):
        try:
            from visualdl import LogWriter
        except ImportError:
            raise UserError("--vdl_dir needs VisualDL: pip install visualdl (or leave --vdl_dir out; "
                            "NAME_log.jsonl and NAME_curves.png are written anyway)")
        os.makedirs(logdir, exist_ok=True)
        self.writer = LogWriter(logdir=logdir)

    def write(self, record):
        group = "train" if record.get("type") == "iter" else "epoch"
        for key in ("loss", "top1", "top5", "lr", "clips_per_s", "valid_loss", "valid_top1"):
            if record.get(key) is not None:
                self.writer.add_scalar(tag="{}/{}".format(group, key), step=int(record["step"]),
                                       value=float(record[key]))

    def close(self):
        self.writer.close()
