import numpy as np

from sklearn_cnn import CNNClassifier, plot


def test_embedding_draws_one_colour_per_class(tmp_path):
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(30, 8) + 5 * i for i in range(3)])
    y = np.repeat([0, 1, 2], 30)
    fig = plot.embedding(X, y, "tsne", target_names=["a", "b", "c"])
    ax = fig.axes[0]
    assert len(ax.collections) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
    plot.save_figure(fig, tmp_path / "e.png")
    assert (tmp_path / "e.png").stat().st_size > 1000


def test_embeddings_grid():
    rng = np.random.RandomState(0)
    fig = plot.embeddings({"fc1": rng.rand(40, 5), "fc2": rng.rand(40, 3)}, np.arange(40) % 2,
                          method="pca")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["fc1 (pca)", "fc2 (pca)"]


def test_learning_curves(small_digits):
    X, y, _, _ = small_digits
    clf = CNNClassifier(max_epochs=2, verbose=0, random_state=0).fit(X, y)
    fig = plot.learning_curves(clf)
    loss_ax, acc_ax = fig.axes[:2]
    assert loss_ax.get_xlabel() == "epoch" and acc_ax.get_ylabel() == "accuracy"
    assert [l.get_label() for l in loss_ax.get_lines()] == ["train", "valid"]
    assert loss_ax.get_ylabel() == "cross-entropy loss"


def test_learning_curves_mark_test_curve_and_reference(small_digits):
    X, y, Xt, yt = small_digits
    clf = CNNClassifier(max_epochs=2, verbose=0, random_state=0).fit(X, y, test_data=(Xt, yt))
    fig = plot.learning_curves(clf, reference={"report test": 0.7397})
    acc_ax = fig.axes[1]
    labels = [l.get_label() for l in acc_ax.get_lines()]
    assert labels == ["train", "valid", "test", "report test 0.7397"]
    line = acc_ax.get_lines()[-1]
    assert list(line.get_ydata()) == [0.7397, 0.7397]
    np.testing.assert_allclose(acc_ax.get_lines()[2].get_ydata(), clf.history_["test_acc"])


def test_learning_curves_without_accuracy_has_one_panel(digits):
    from sklearn_cnn import SiameseEmbedder

    emb = SiameseEmbedder(max_epochs=2, verbose=0, random_state=0).fit(
        digits.images[:200], digits.target[:200])
    fig = plot.learning_curves(emb)
    assert len(fig.axes) == 1
    assert fig.axes[0].get_ylabel() == "contrastive pair loss"
    assert [l.get_label() for l in fig.axes[0].get_lines()] == ["train", "valid"]
    assert plot.learning_curves(emb.history_, loss_label="L").axes[0].get_ylabel() == "L"


def test_probe_accuracy_bars_per_layer_and_probe():
    import pandas as pd

    from sklearn_cnn.plot import probe_accuracy

    table = pd.DataFrame({"layer": ["flatten", "flatten", "fc1", "fc1", "logits"],
                          "probe": ["linear_svc", "knn", "linear_svc", "knn", "cnn"],
                          "test_acc": [0.6, 0.5, 0.75, 0.7, 0.8]})
    fig = probe_accuracy(table, chance=0.1)
    ax = fig.axes[0]
    heights = sorted(round(b.get_height(), 3) for b in ax.patches)
    assert heights == [0.5, 0.6, 0.7, 0.75]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["flatten", "fc1"]
    labels = ax.get_legend_handles_labels()[1]
    assert "CNN itself 0.800" in labels and "chance 0.10" in labels
