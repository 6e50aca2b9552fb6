"""Frozen BatchNorm statistics (``train.freeze_bn``): running mean/var stay, weights train."""

from __future__ import annotations

from torch import nn


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of ``model`` (BatchNorm1d/2d/3d and SyncBatchNorm)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def freeze_batchnorm_statistics(model: nn.Module) -> int:
    """Put every BatchNorm layer in eval mode; returns how many there are.

    In eval mode a BatchNorm layer normalises with its running statistics and leaves them
    unchanged; its affine weight and bias still receive gradients. Call it after every
    ``model.train()`` (the training loop does, once per step).
    """
    layers = batchnorm_layers(model)
    for layer in layers:
        layer.eval()
    return len(layers)
