"""Models: the paper's CNNs, CIFAR ResNets and an MLP behind a ``create_model`` registry.

    >>> from asymloss.models import create_model
    >>> model = create_model("cnn4", num_classes=10, in_channels=1, image_size=28)
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .._validation import check_number, unknown_name_error
from .cnn import CNN4, CNN8, MLP
from .resnet import ResNet, resnet18, resnet34, resnet50

__all__ = ["create_model", "list_models", "init_weights", "CNN4", "CNN8", "MLP", "ResNet"]

_MODELS: dict[str, Callable[..., nn.Module]] = {
    "cnn4": CNN4,
    "cnn8": CNN8,
    "mlp": MLP,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
}


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`."""
    return sorted(_MODELS)


def init_weights(model: nn.Module) -> nn.Module:
    """The references' initialisation (docs/protocols.md, 'Initialisation'): Kaiming-uniform (fan_in, ReLU) for convolutions,
    Xavier-uniform for linear layers. Biases keep PyTorch's default initialisation, as in the
    references (they set weights only); BatchNorm keeps its default (weight 1, bias 0)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
    return model


def create_model(name: str, num_classes: int, in_channels: int = 3, image_size: int = 32,
                 **kwargs) -> nn.Module:
    """Build model ``name`` for inputs (N, in_channels, image_size, image_size), initialised as
    the references do. Unknown names suggest the closest."""
    key = name.lower()
    if key not in _MODELS:
        raise unknown_name_error("model", name, _MODELS)
    check_number("num_classes", num_classes, ge=2, integer=True)
    check_number("in_channels", in_channels, ge=1, integer=True)
    check_number("image_size", image_size, ge=1, integer=True)
    if key in ("cnn4", "cnn8") and image_size % (4 if key == "cnn4" else 8):
        raise ValueError(f"image_size must be a multiple of {4 if key == 'cnn4' else 8} for {key}; got {image_size}.")
    model = _MODELS[key](num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)
    return init_weights(model)
