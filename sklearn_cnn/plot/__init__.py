"""Figures. Every function returns a matplotlib Figure and works headless (Agg).

One module per job: :mod:`~sklearn_cnn.plot.curves` (learning curves, result
tables), :mod:`~sklearn_cnn.plot.embedding` (t-SNE / PCA maps),
:mod:`~sklearn_cnn.plot.inspection` (filters, activations, weights) and
:mod:`~sklearn_cnn.plot.evaluation` (example predictions, confusion matrix);
all of them are importable from here. :func:`figure` and :func:`save_figure`
serve figures drawn elsewhere too.
"""

# The callback that records what weight_histogram_progression draws; its home is
# sklearn_cnn.callbacks, but it was (and stays) importable from here.
from ..callbacks import RecordWeightHistograms
from ._common import figure, save_figure
from .curves import accuracy_vs_k, learning_curves, probe_accuracy
from .embedding import embedding, embeddings
from .evaluation import confusion_matrix, examples
from .inspection import activations, filters, weight_histogram_progression, weight_histograms

__all__ = ["embedding", "embeddings", "learning_curves", "accuracy_vs_k", "probe_accuracy",
           "figure", "save_figure", "filters", "activations", "weight_histograms",
           "weight_histogram_progression", "RecordWeightHistograms", "examples",
           "confusion_matrix"]
