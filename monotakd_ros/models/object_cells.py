"""Which stride-s feature cells show a labelled object: its 3D box projected to a 2D box.

A cell is inside an object's 2D box when the cell's centre pixel is: cell ``c`` covers pixels
``s·c … s·c + s − 1``, so its centre is at ``s·c + (s − 1) / 2`` (pixel centres at integers).
Boxes with a corner closer than ``near_m`` to the image plane (partly behind the camera) are
left out: their projection is not a box. Torch only, so it runs on the batch's device.
"""

from __future__ import annotations

import torch

# Corner signs of a LiDAR-frame box [x, y, z, l, w, h, yaw] with a geometric centre:
# each corner is centre + R(yaw) · (sign · [l, w, h] / 2).
_CORNER_SIGNS = torch.tensor([[sx, sy, sz] for sx in (-1.0, 1.0) for sy in (-1.0, 1.0)
                              for sz in (-1.0, 1.0)])


def projected_boxes_px(boxes_lidar: torch.Tensor, T_rect_from_lidar: torch.Tensor,
                       P2: torch.Tensor, near_m: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, 7) LiDAR boxes -> ((M, 4) [u0, v0, u1, v1] pixel boxes, (M,) all corners in front)."""
    boxes = boxes_lidar.float()
    signs = _CORNER_SIGNS.to(boxes.device)
    local = 0.5 * signs[None] * boxes[:, None, 3:6]  # (M, 8, 3)
    cos_yaw, sin_yaw = torch.cos(boxes[:, 6:7]), torch.sin(boxes[:, 6:7])
    x = boxes[:, None, 0] + local[..., 0] * cos_yaw - local[..., 1] * sin_yaw
    y = boxes[:, None, 1] + local[..., 0] * sin_yaw + local[..., 1] * cos_yaw
    z = boxes[:, None, 2] + local[..., 2]
    corners = torch.stack([x, y, z], dim=-1)  # (M, 8, 3) LiDAR frame
    T = T_rect_from_lidar.float()
    P = P2.float()
    rect = corners @ T[:3, :3].T + T[:3, 3]
    uvw = rect @ P[:, :3].T + P[:, 3]
    in_front = (uvw[..., 2] > near_m).all(dim=1)
    uv = uvw[..., :2] / uvw[..., 2:3].clamp(min=near_m)
    return torch.cat([uv.amin(dim=1), uv.amax(dim=1)], dim=1), in_front


def cells_in_boxes(boxes_px: torch.Tensor, grid_hw: tuple[int, int],
                   stride: int) -> torch.Tensor:
    """(M, 4) pixel boxes -> (M, h, w) bool: the cells whose centre pixel lies in each box."""
    h, w = grid_hw
    half = (stride - 1) / 2.0
    rows = torch.arange(h, device=boxes_px.device, dtype=boxes_px.dtype) * stride + half
    cols = torch.arange(w, device=boxes_px.device, dtype=boxes_px.dtype) * stride + half
    u0, v0, u1, v1 = (boxes_px[:, i, None] for i in range(4))  # each (M, 1)
    in_rows = (rows[None] >= v0) & (rows[None] <= v1)  # (M, h)
    in_cols = (cols[None] >= u0) & (cols[None] <= u1)  # (M, w)
    return in_rows[:, :, None] & in_cols[:, None, :]


def object_cell_mask(boxes_lidar: list[torch.Tensor], classes: list[torch.Tensor],
                     T_rect_from_lidar: torch.Tensor, P2: torch.Tensor,
                     grid_hw: tuple[int, int], stride: int) -> torch.Tensor:
    """(B, h, w) bool: cells inside the 2D box of any object of the frame (class ≥ 0)."""
    masks = []
    for frame, (boxes, cls) in enumerate(zip(boxes_lidar, classes, strict=True)):
        boxes_px, in_front = projected_boxes_px(boxes, T_rect_from_lidar[frame], P2[frame])
        keep = in_front & (cls >= 0)  # masked, not indexed: no device sync
        cells = cells_in_boxes(boxes_px, grid_hw, stride) & keep[:, None, None]
        masks.append(cells.any(dim=0))
    return torch.stack(masks)
