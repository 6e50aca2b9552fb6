"""The frustum -> voxel lifting with 4-D ``grid_sample`` only, for runtimes without 5-D GridSample.

``FrustumToVoxel`` samples the frustum (B, C, D, h, w) trilinearly with one 5-D ``grid_sample``.
TensorRT's GridSample layer takes 4-D input only (NVIDIA/TensorRT issues 3207, 3890, 4618), so
this variant computes the same numbers from two bilinear samples of a planar image:

- the D depth slices are stacked vertically, each followed by one zero row, with one zero slice
  above and below: (B, C, (D + 2)(h + 1), w);
- a voxel at continuous (u, v, d) indices (``align_corners=False``) reads the slices floor(d)
  and floor(d) + 1 (the zero slices outside [0, D - 1]) at (u, v) and blends them by the
  fractional part of d. The zero row after each slice makes a tap just outside a slice read the
  zero the 5-D op's ``padding_mode="zeros"`` reads; voxels further out in v are masked.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from monotakd_ros.models.lifting import FrustumToVoxel, voxel_sampling_grid


class PlanarFrustumToVoxel(nn.Module):
    """Drop-in for :class:`FrustumToVoxel` (same buffers, same output) using 4-D sampling."""

    def __init__(self, volumetric: FrustumToVoxel) -> None:
        super().__init__()
        self.depth_cfg = volumetric.depth_cfg
        self.register_buffer("centres_lidar", volumetric.centres_lidar, persistent=False)

    def forward(self, frustum: torch.Tensor, P2: torch.Tensor, T_rect_from_lidar: torch.Tensor,
                input_hw: tuple[int, int]) -> torch.Tensor:
        """(B, C, D, h, w) frustum -> (B, C, Z, Y, X) voxels, as ``FrustumToVoxel.forward``."""
        sampling = voxel_sampling_grid(self.centres_lidar, P2.float(), T_rect_from_lidar.float(),
                                       input_hw, self.depth_cfg)  # (B, Z, Y, X, 3)
        batch, channels, depth, height, width = frustum.shape
        zyx = sampling.shape[1:4]
        grid = sampling.reshape(batch, -1, 3)  # (B, V, 3)
        # Continuous indices exactly as grid_sample(align_corners=False) derives them.
        v = ((grid[..., 1] + 1.0) * height - 1.0) / 2.0
        d = ((grid[..., 2] + 1.0) * depth - 1.0) / 2.0
        d0 = torch.floor(d)
        d_frac = d - d0
        slab = height + 1  # one slice and its zero row
        # (B, C, D + 2, h + 1, w): zero slice above/below, a zero row under each slice
        planar = F.pad(frustum.float(), (0, 0, 0, 1, 1, 1)).reshape(
            batch, channels, (depth + 2) * slab, width)

        def slice_sample(slice_index: torch.Tensor) -> torch.Tensor:
            rows = (slice_index.clamp(-1.0, float(depth)) + 1.0) * slab + v  # (B, V)
            y = (2.0 * rows + 1.0) / planar.shape[2] - 1.0
            points = torch.stack([grid[..., 0], y], dim=-1).unsqueeze(2)  # (B, V, 1, 2)
            return F.grid_sample(planar, points, mode="bilinear", padding_mode="zeros",
                                 align_corners=False).squeeze(3)  # (B, C, V)

        inside_v = ((v > -1.0) & (v < float(height))).to(planar.dtype).unsqueeze(1)  # (B, 1, V)
        weight = d_frac.unsqueeze(1)
        voxels = (slice_sample(d0) * (1.0 - weight) + slice_sample(d0 + 1.0) * weight) * inside_v
        return voxels.reshape(batch, channels, *zyx)


def use_planar_lifting(model: nn.Module) -> nn.Module:
    """Swap every FrustumToVoxel in ``model`` for the planar variant, in place."""
    for name, child in list(model.named_children()):
        if isinstance(child, FrustumToVoxel):
            setattr(model, name, PlanarFrustumToVoxel(child))
        else:
            use_planar_lifting(child)
    return model
