"""sklearn_cnn: scikit-learn estimators for training, probing and comparing CNNs."""

from .classifier import CNNClassifier
from .features import LayerFeatures
from .probing import probe_layers

__version__ = "0.1.0"
__all__ = ["CNNClassifier", "LayerFeatures", "probe_layers"]
