"""Dense BEV anchors: one per class and rotation at every cell centre of the grid."""

from __future__ import annotations

import torch

from monotakd_ros.models.config import BevGridConfig, HeadConfig


def anchor_grid(grid: BevGridConfig, head: HeadConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchors (A, 7) LiDAR ``[x, y, z, l, w, h, yaw]`` and their class (A,), A = ny·nx·C·R.

    Order: row-major over (ny, nx, class, rotation), the order the head flattens its outputs in.
    """
    y = grid.y_range_m[0] + (torch.arange(grid.ny, dtype=torch.float32) + 0.5) * grid.cell_m
    x = grid.x_range_m[0] + (torch.arange(grid.nx, dtype=torch.float32) + 0.5) * grid.cell_m
    per_class = []
    for spec in head.anchors:
        length, width, height = spec.size_lwh_m
        rows = [[0.0, 0.0, spec.bottom_z_m + height / 2, length, width, height, yaw]
                for yaw in head.rotations_rad]
        per_class.append(torch.tensor(rows, dtype=torch.float32))  # (R, 7)
    templates = torch.stack(per_class)  # (C, R, 7)
    ny, nx = grid.ny, grid.nx
    num_classes, num_rot = templates.shape[:2]
    anchors = templates.expand(ny, nx, num_classes, num_rot, 7).clone()  # (ny, nx, C, R, 7)
    anchors[..., 0] = x.view(1, nx, 1, 1)
    anchors[..., 1] = y.view(ny, 1, 1, 1)
    classes = torch.arange(num_classes).view(1, 1, num_classes, 1).expand(ny, nx, -1, num_rot)
    return anchors.reshape(-1, 7), classes.reshape(-1).clone()
