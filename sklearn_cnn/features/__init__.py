"""Feature transformers: layer activations of trained and pretrained networks."""

from .cifar_resnet import CifarResNetFeatures
from .layer import LayerFeatures
from .pretrained import ResNetFeatures, TorchvisionFeatures, VGGFeatures

__all__ = ["CifarResNetFeatures", "LayerFeatures", "ResNetFeatures", "TorchvisionFeatures",
           "VGGFeatures"]
