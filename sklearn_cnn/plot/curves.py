"""Figures of training runs and result tables: learning curves, accuracy against k or layer."""

from ._common import figure

__all__ = ["learning_curves", "accuracy_vs_k", "probe_accuracy"]


def learning_curves(estimator, *, title=None, loss_label=None, reference=None):
    """Loss and accuracy per epoch from ``estimator.history_`` (train / valid / test).

    Columns ``test_loss`` / ``test_acc`` are drawn when the history has them.
    A history without accuracy columns (e.g. a :class:`~sklearn_cnn.SiameseEmbedder`'s)
    gets the loss panel only.

    Parameters
    ----------
    estimator : fitted estimator with ``history_``, or a history DataFrame
    title : str, default=None
    loss_label : str, default=None
        The loss axis label; None gives "cross-entropy loss" for a classifier's
        history (one with accuracy columns), "<loss> pair loss" for an
        estimator with a ``loss`` parameter (the siamese embedder), else "loss".
    reference : dict of {label: float}, default=None
        Accuracies to mark as horizontal lines on the accuracy panel, e.g.
        ``{"report 001 test": 0.7397}`` (what a reproduction is compared with).

    Returns
    -------
    matplotlib.figure.Figure with two axes (loss, accuracy) or one (loss).
    """
    from matplotlib.ticker import MaxNLocator

    history = estimator.history_ if hasattr(estimator, "history_") else estimator
    splits = (("train", "-"), ("valid", "--"), ("test", ":"))
    has_acc = any(f"{split}_acc" in history and history[f"{split}_acc"].notna().any()
                  for split, _ in splits)
    if loss_label is None:
        loss = getattr(estimator, "loss", None)
        loss_label = ("cross-entropy loss" if has_acc else
                      f"{loss} pair loss" if isinstance(loss, str) else "loss")
    panels = [("loss", loss_label)] + ([("acc", "accuracy")] if has_acc else [])
    fig, axes = figure(1, len(panels))
    for ax, (metric, label) in zip(axes[0], panels):
        for split, style in splits:
            col = f"{split}_{metric}"
            if col in history and history[col].notna().any():
                ax.plot(history["epoch"], history[col], style, marker="o", ms=3, label=split)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no "epoch 2.5"
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if metric == "acc":
            for text, value in (reference or {}).items():
                # in the colour of the curve it compares with (matplotlib's C0, C1, C2 cycle)
                color = next((f"C{i}" for i, (split, _) in enumerate(splits) if split in text),
                             "black")
                ax.axhline(value, color=color, ls="-.", lw=1, label=f"{text} {value:.4g}")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.suptitle(title or "learning curves")
    return fig


def accuracy_vs_k(table, *, title=None):
    """Test accuracy against k, one line per training-set size (columns n_train, k, test_acc).

    The best k of each line is marked and written in the legend.
    """
    fig, axes = figure()
    ax = axes[0, 0]
    for n_train, part in table.groupby("n_train"):
        line, = ax.plot(part["k"], part["test_acc"], marker=".", label=None)
        best = part.loc[part["test_acc"].idxmax()]
        ax.plot([best["k"]], [best["test_acc"]], "o", color=line.get_color(),
                label=f"{n_train} train: best k={int(best['k'])}, {best['test_acc']:.3f}")
    ax.set_xlabel("k (neighbours)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "KNN accuracy vs k")
    return fig


def probe_accuracy(table, *, title=None, chance=None):
    """Test accuracy per layer and probe: which layer separates the classes, at a glance.

    ``table`` is :func:`~sklearn_cnn.probe_layers`' (columns layer, probe,
    test_acc; rows in forward order). A row with probe ``"cnn"`` (the network's
    own accuracy, as ``sklearn-cnn probe`` adds it) is drawn as a dashed line;
    ``chance`` (e.g. 0.1) as a dotted one. Bars are labelled with their value.
    """
    probes_rows = table[table["probe"] != "cnn"]
    layers = list(dict.fromkeys(probes_rows["layer"]))
    probes = list(dict.fromkeys(probes_rows["probe"]))
    fig, axes = figure(size=(max(4.5, 1.3 * len(layers) * max(1, len(probes)) / 1.5), 4))
    ax = axes[0, 0]
    width = 0.8 / max(1, len(probes))
    for j, probe in enumerate(probes):
        part = probes_rows[probes_rows["probe"] == probe].set_index("layer")
        xs = [i + (j - (len(probes) - 1) / 2) * width for i in range(len(layers))]
        values = [float(part["test_acc"].get(layer, float("nan"))) for layer in layers]
        bars = ax.bar(xs, values, width=width * 0.95, label=probe)
        for bar, v in zip(bars, values):
            if v == v:  # not NaN
                ax.annotate(f"{v:.3f}", (bar.get_x() + bar.get_width() / 2, v),
                            ha="center", va="bottom", fontsize=7)
    cnn = table[table["probe"] == "cnn"]
    if len(cnn):
        ax.axhline(float(cnn["test_acc"].iloc[0]), color="black", ls="--", lw=1,
                   label=f"CNN itself {float(cnn['test_acc'].iloc[0]):.3f}")
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", lw=1, label=f"chance {chance:.2f}")
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels(layers)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("layer")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(title or "Which layer separates the classes?")
    return fig
