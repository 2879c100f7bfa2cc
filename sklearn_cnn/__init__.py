"""sklearn_cnn: scikit-learn estimators for training, probing and comparing CNNs."""

from .classifier import CNNClassifier
from .features import (CifarResNetFeatures, LayerFeatures, ResNetFeatures, TorchvisionFeatures,
                       VGGFeatures)
from .neighbors import WeightedKNNClassifier
from .probing import probe_layers
from .siamese import SiameseEmbedder
from .linear_probe import LinearProbe
from .transfer import TransferClassifier

__version__ = "0.1.0"
__all__ = ["CNNClassifier", "CifarResNetFeatures", "LayerFeatures", "LinearProbe", "ResNetFeatures",
           "SiameseEmbedder", "TorchvisionFeatures", "TransferClassifier", "VGGFeatures",
           "WeightedKNNClassifier",
           "probe_layers"]
