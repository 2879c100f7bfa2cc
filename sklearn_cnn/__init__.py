"""sklearn_cnn: scikit-learn estimators for training, probing and comparing CNNs."""

from .classifier import CNNClassifier

__version__ = "0.1.0"
__all__ = ["CNNClassifier"]
