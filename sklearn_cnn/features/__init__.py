"""Feature transformers: layer activations of trained and pretrained networks."""

from .layer import LayerFeatures

__all__ = ["LayerFeatures"]
