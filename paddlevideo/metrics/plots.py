"""Plots of metrics (PNG): the confusion matrix and per-class AP.  matplotlib is imported when a plot is drawn,
on its own Agg canvas (no ``matplotlib.use``: an import or a plot never changes the process's backend)."""
import numpy as np


def new_figure(figsize, nrows=1, ncols=1):
    """``(figure, axes)`` drawn on an Agg canvas of its own (pyplot's global state untouched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols)


def plot_confusion(confusion, names, path, title):
    """Row-normalised confusion matrix as a PNG; class names on the axes up to 50 classes (indices
    beyond), the counts in the cells up to 20 classes."""
    cm = np.asarray(confusion, float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    k = len(cm)
    size = min(max(6.0, 0.3 * k + 3), 30.0)
    fig, ax = new_figure((size, size * 0.9))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if k <= 50:
        ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(k), names, fontsize=8)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true", title="{} confusion (rows normalised)".format(title))
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path
def plot_per_class(per_class, path, title):
    """Horizontal bar chart of per-class AP (sorted), with the mAP line."""
    items = sorted(per_class.items(), key=lambda kv: kv[1])
    fig, ax = new_figure((8, max(2.5, 0.28 * len(items) + 1.2)))
    ax.barh(range(len(items)), [v for _, v in items], color="#4c72b0")
    ax.set_yticks(range(len(items)), [k for k, _ in items], fontsize=8)
    if items:
        mean = float(np.mean([v for _, v in items]))
        ax.axvline(mean, color="#c44e52", ls="--", label="mAP {:.3f}".format(mean))
        ax.legend(loc="lower right")
    ax.set(xlim=(0, 1), xlabel="AP@0.5IoU", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path
