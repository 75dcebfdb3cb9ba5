"""PNG plots of an evaluation: ROC curves, confusion matrices, score histograms.

Matplotlib runs with the non-interactive Agg backend so the plots render on
a headless server.  Each function takes one entry per level ("frame",
"video") and draws them side by side or overlaid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def roc_plot(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """ROC curve per level; levels with a single class are skipped (no curve exists)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (labels, scores) in curves.items():
        if len(np.unique(labels)) < 2:
            continue
        fpr, tpr, _ = roc_curve(labels, scores)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(labels, scores):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC", xlim=(0, 1))
    ax.set_ylim(0, 1.01)
    if ax.get_legend_handles_labels()[0]:  # real-only footage has no curve to label
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def confusion_plot(path: Path, matrices: dict[str, dict[str, int]]) -> Path:
    """One annotated 2x2 confusion matrix per level (rows: truth, columns: prediction)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.2 * len(matrices), 4), squeeze=False)
    for ax, (name, cm) in zip(axes[0], matrices.items(), strict=True):
        grid = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
        ax.imshow(grid, cmap="Blues")
        for (r, c), value in np.ndenumerate(grid):
            colour = "white" if value > grid.max() / 2 else "black"
            ax.text(c, r, str(value), ha="center", va="center", color=colour, fontsize=14)
        ax.set_xticks([0, 1], ["real", "fake"])
        ax.set_yticks([0, 1], ["real", "fake"])
        ax.set(xlabel="predicted", ylabel="true", title=name)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def histogram_plot(
    path: Path, levels: dict[str, tuple[np.ndarray, np.ndarray]], threshold: float
) -> Path:
    """Score histograms per class and level, with the decision threshold marked."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(levels), figsize=(5 * len(levels), 3.8), squeeze=False)
    bins = np.linspace(0, 1, 26)
    for ax, (name, (labels, scores)) in zip(axes[0], levels.items(), strict=True):
        labels, scores = np.asarray(labels), np.asarray(scores)
        for value, label, colour in ((0, "real", "tab:blue"), (1, "fake", "tab:red")):
            chosen = scores[labels == value]
            if chosen.size:
                ax.hist(
                    chosen, bins=bins, alpha=0.6, color=colour, label=f"{label} ({chosen.size})"
                )
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label="threshold")
        ax.set(xlabel="fake probability", ylabel="count", title=name, xlim=(0, 1))
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
