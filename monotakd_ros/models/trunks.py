"""Image trunks to output stride 8: dilated ResNet-50/18 and a small CPU trunk.

Every trunk returns :class:`TrunkFeatures`: ``image`` feeds the 1x1 channel reduction (the
features lifted to 3D) and ``depth`` feeds the depth head. For the ResNets these are layer3 and
layer4, both kept at stride 8 by dilation as in DeepLabV3; module names follow torchvision so its
ImageNet/DeepLab state dicts load without renaming.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from monotakd_ros.errors import CheckpointError
from monotakd_ros.models.config import TrunkConfig
from monotakd_ros.models.layers import BasicBlock, Bottleneck, ConvBnRelu

log = logging.getLogger(__name__)

STRIDE = 8


@dataclass
class TrunkFeatures:
    """Stride-8 trunk outputs; ``depth`` is None when the trunk was built without a depth stage."""

    image: torch.Tensor  # (B, image_channels, H/8, W/8)
    depth: torch.Tensor | None  # (B, depth_channels, H/8, W/8)


def _stage(block: type[BasicBlock | Bottleneck], in_channels: int, width: int, blocks: int,
           stride: int, first_dilation: int, dilation: int) -> nn.Sequential:
    """ResNet stage; the first block uses the previous dilation, the rest the new one."""
    layers = [block(in_channels, width, stride=stride, dilation=first_dilation)]
    out_channels = width * block.expansion
    layers += [block(out_channels, width, dilation=dilation) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNetTrunk(nn.Module):
    """ResNet with layer3/layer4 dilated (2, 4) so that both stay at stride 8."""

    def __init__(self, block: type[BasicBlock | Bottleneck], depths: tuple[int, int, int, int],
                 with_depth_stage: bool) -> None:
        super().__init__()
        e = block.expansion
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = _stage(block, 64, 64, depths[0], 1, 1, 1)
        self.layer2 = _stage(block, 64 * e, 128, depths[1], 2, 1, 1)
        self.layer3 = _stage(block, 128 * e, 256, depths[2], 1, 1, 2)
        self.layer4 = _stage(block, 256 * e, 512, depths[3], 1, 2, 4) if with_depth_stage else None
        self.image_channels = 256 * e
        self.depth_channels = 512 * e if with_depth_stage else 0

    def forward(self, images: torch.Tensor) -> TrunkFeatures:
        """(B, 3, H, W) normalised images → stride-8 features."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        x = self.layer3(self.layer2(self.layer1(x)))
        deep = self.layer4(x) if self.layer4 is not None else None
        return TrunkFeatures(image=x, depth=deep)


class SmallTrunk(nn.Module):
    """Three strided 3x3 convs and one dilated residual block: a trunk for 2-core CPUs."""

    def __init__(self, channels: tuple[int, int, int], with_depth_stage: bool) -> None:
        super().__init__()
        c0, c1, c2 = channels
        self.stem = nn.Sequential(
            ConvBnRelu(3, c0, 3, stride=2),
            ConvBnRelu(c0, c1, 3, stride=2),
            ConvBnRelu(c1, c2, 3, stride=2),
        )
        self.block = BasicBlock(c2, c2, dilation=2)
        self.image_channels = c2
        self.depth_channels = c2 if with_depth_stage else 0
        self.with_depth_stage = with_depth_stage

    def forward(self, images: torch.Tensor) -> TrunkFeatures:
        """(B, 3, H, W) normalised images → stride-8 features (shared by image and depth)."""
        x = self.block(self.stem(images))
        return TrunkFeatures(image=x, depth=x if self.with_depth_stage else None)


Trunk = ResNetTrunk | SmallTrunk


def build_trunk(cfg: TrunkConfig, with_depth_stage: bool) -> Trunk:
    """Trunk named by ``cfg``; the TA (LiDAR depth) skips the depth stage."""
    if cfg.name == "resnet50":
        trunk: Trunk = ResNetTrunk(Bottleneck, (3, 4, 6, 3), with_depth_stage)
    elif cfg.name == "resnet18":
        trunk = ResNetTrunk(BasicBlock, (2, 2, 2, 2), with_depth_stage)
    else:
        trunk = SmallTrunk(cfg.small_channels, with_depth_stage)
    if cfg.pretrained_path is not None:
        load_trunk_weights(trunk, cfg.pretrained_path)
    return trunk


# Prefixes under which trunk weights appear in common checkpoints (DeepLabV3, our own models).
_KNOWN_PREFIXES = ("backbone.", "module.", "trunk.", "model.")
# What a corrupt or foreign file raises in safetensors / torch.load(weights_only=True).
_READ_ERRORS = (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError,
                SafetensorError)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file or a torch state dict, loaded without executing code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: trunk weights file does not exist")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path), device="cpu")
        data = torch.load(path, map_location="cpu", weights_only=True)
    except _READ_ERRORS as err:
        raise CheckpointError(f"{path}: cannot read trunk weights ({err})") from err
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{path}: expected a mapping of names to tensors")
    return data


def load_trunk_weights(trunk: nn.Module, path: Path) -> None:
    """Copy matching tensors from ``path`` into ``trunk``; every trunk tensor must be covered."""
    tensors = read_state_dict(path)
    for prefix in _KNOWN_PREFIXES:
        if any(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            break
    expected = trunk.state_dict()
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise CheckpointError(f"{path}: {len(missing)} trunk tensors missing, e.g. {missing[:5]}")
    wrong = [f"{k}: file {tuple(tensors[k].shape)} vs trunk {tuple(v.shape)}"
             for k, v in expected.items() if tensors[k].shape != v.shape]
    if wrong:
        raise CheckpointError(f"{path}: trunk tensor shapes differ: {wrong[:5]}")
    unused = sorted(set(tensors) - set(expected))
    if unused:
        log.info("%s: ignoring %d tensors not in the trunk (e.g. %s)", path, len(unused),
                 unused[:3])
    trunk.load_state_dict({k: tensors[k] for k in expected})
