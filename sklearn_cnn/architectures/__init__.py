"""Architectures as data: layer specs, the modules they build, and named presets."""

from .layers import (ACTIVATIONS, LAYER_TYPES, Network, apply_overrides, avgpool, batchnorm,
                     build_network, conv, dense, dense_block, dropout, flatten, global_avgpool,
                     inception, maxpool, normalize_spec)
from .presets import (architecture_info, get_architecture, list_architectures,
                      register_architecture)


def resolve_architecture(architecture, param_name="architecture"):
    """Preset name or list of specs -> normalised list of specs (a fresh copy)."""
    if isinstance(architecture, str):
        architecture = get_architecture(architecture)
    return normalize_spec(architecture, param_name)


__all__ = [
    "ACTIVATIONS", "LAYER_TYPES", "Network", "apply_overrides", "architecture_info",
    "avgpool", "batchnorm", "build_network", "conv", "dense", "dense_block", "dropout",
    "flatten", "get_architecture", "global_avgpool", "inception", "list_architectures",
    "maxpool", "normalize_spec", "register_architecture", "resolve_architecture",
]
