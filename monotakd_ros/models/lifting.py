"""Image → BEV lifting: LID depth bins, LiDAR one-hot depth, frustum features, voxel sampling.

Conventions:
- Depth is the rectified-camera z in metres. Bin ``k`` (0 ≤ k < N) covers
  ``[edge_k, edge_{k+1})`` with LID edges ``edge_i = min + (max - min) · i(i+1) / (N(N+1))``;
  bin ``N`` takes everything outside [min, max) ("beyond").
- Feature cell ``(r, c)`` of a stride-s map covers input pixels ``[s·c, s·c + s)`` (pixel centres
  at integer coordinates), matching ``grid_sample(align_corners=False)`` and ``avg_pool2d``.
- Voxel grids are ``(B, C, Z, Y, X)`` over the LiDAR-frame grid of ``BevGridConfig``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from monotakd_ros.models.config import BevGridConfig, DepthBinsConfig
from monotakd_ros.models.sampling import grid_sample_threads


def lid_bin_edges_m(cfg: DepthBinsConfig) -> torch.Tensor:
    """(N + 1,) LID bin edges in metres, from ``min_m`` to ``max_m``."""
    i = torch.arange(cfg.num_bins + 1, dtype=torch.float64)
    n = cfg.num_bins
    return (cfg.min_m + (cfg.max_m - cfg.min_m) * i * (i + 1) / (n * (n + 1))).float()



def continuous_bin_index(depth_m: torch.Tensor, cfg: DepthBinsConfig) -> torch.Tensor:
    """Real-valued bin coordinate t with ``t = i`` exactly at edge i (NaN below ``min_m``)."""
    bin_size = 2.0 * (cfg.max_m - cfg.min_m) / (cfg.num_bins * (cfg.num_bins + 1))
    # Inverse of edge(t) = min + bin_size · t(t+1)/2.
    return -0.5 + 0.5 * torch.sqrt(1.0 + 8.0 * (depth_m - cfg.min_m) / bin_size)


def depth_bin_indices(depth_m: torch.Tensor, cfg: DepthBinsConfig) -> torch.Tensor:
    """Integer LID bin of each depth; out of [min, max) or non-finite → N ("beyond")."""
    t = continuous_bin_index(depth_m, cfg)
    inside = torch.isfinite(t) & (depth_m >= cfg.min_m) & (depth_m < cfg.max_m)
    index = torch.where(inside, t, torch.zeros_like(t)).floor().long()
    # Float rounding may put a depth just below an edge into the next bin: clamp to N - 1.
    index = index.clamp(0, cfg.num_bins - 1)
    return torch.where(inside, index, torch.full_like(index, cfg.num_bins))


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad the last two dims (bottom/right) up to a multiple; pixel coordinates are kept."""
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h))


def pooled_lidar_depth_m(depth_maps_m: torch.Tensor, stride: int,
                         pooling: str = "mean") -> tuple[torch.Tensor, torch.Tensor]:
    """One depth per stride×stride block of valid (> 0) depths → (depth, valid), (B, H/s, W/s).

    ``pooling``: "mean" of the block's valid depths, or "nearest" (their minimum).
    """
    depth = pad_to_multiple(depth_maps_m, stride).unsqueeze(1)  # (B, 1, H, W)
    valid = depth > 0
    has_depth = F.max_pool2d(valid.to(depth.dtype), stride) > 0
    if pooling == "nearest":
        far = torch.where(valid, depth, torch.full_like(depth, torch.finfo(depth.dtype).max))
        pooled = -F.max_pool2d(-far, stride)
    elif pooling == "mean":
        # avg_pool of (depth · valid) and valid share the 1/s² factor, which cancels in the ratio.
        weights = valid.to(depth.dtype)
        pooled = F.avg_pool2d(depth * weights, stride) / F.avg_pool2d(weights, stride).clamp_min(
            1e-12)
    else:
        raise ValueError(f"pooling must be 'mean' or 'nearest', got {pooling!r}")
    pooled = torch.where(has_depth, pooled, torch.zeros_like(pooled))
    return pooled.squeeze(1), has_depth.squeeze(1)


def lidar_depth_one_hot(depth_maps_m: torch.Tensor, stride: int,
                        cfg: DepthBinsConfig) -> torch.Tensor:
    """(B, N + 1, H/s, W/s) one-hot LID bins of the pooled LiDAR depth; empty cells are zero."""
    depth_m, has_depth = pooled_lidar_depth_m(depth_maps_m, stride, cfg.lidar_pooling)
    bins = depth_bin_indices(depth_m, cfg)  # (B, h, w)
    one_hot = F.one_hot(bins, cfg.num_bins + 1).permute(0, 3, 1, 2)  # (B, N + 1, h, w)
    return one_hot.to(depth_maps_m.dtype) * has_depth.unsqueeze(1).to(depth_maps_m.dtype)


def frustum_features(image_features: torch.Tensor, depth_probs: torch.Tensor) -> torch.Tensor:
    """Per-pixel outer product (B, C, h, w) ⊗ (B, N + 1, h, w) → (B, C, N, h, w), minus beyond."""
    probs = depth_probs[:, :-1]  # the "beyond" bin lifts nothing into the grid
    return image_features.unsqueeze(2) * probs.unsqueeze(1)


def voxel_centres_lidar(grid: BevGridConfig) -> torch.Tensor:
    """(Z, Y, X, 3) LiDAR-frame centres of the voxel grid."""
    def centres(lo: float, step: float, count: int) -> torch.Tensor:
        return lo + (torch.arange(count, dtype=torch.float32) + 0.5) * step

    z = centres(grid.z_range_m[0], grid.slice_m, grid.height_slices)
    y = centres(grid.y_range_m[0], grid.cell_m, grid.ny)
    x = centres(grid.x_range_m[0], grid.cell_m, grid.nx)
    zz, yy, xx = torch.meshgrid(z, y, x, indexing="ij")
    return torch.stack([xx, yy, zz], dim=-1)


def voxel_sampling_grid(centres_lidar: torch.Tensor, P2: torch.Tensor,
                        T_rect_from_lidar: torch.Tensor, input_hw: tuple[int, int],
                        cfg: DepthBinsConfig) -> torch.Tensor:
    """Normalised (u, v, bin) coordinates of every voxel centre: (B, Z, Y, X, 3) for grid_sample.

    ``input_hw`` is the (padded) network input size the feature map covers; voxels behind the
    camera or nearer than ``min_m`` get coordinates outside [-1, 1] and so sample zeros.
    """
    zyx = centres_lidar.shape[:3]
    points = centres_lidar.reshape(-1, 3).to(P2.dtype)  # (V, 3)
    points_h = torch.cat([points, torch.ones_like(points[:, :1])], dim=1)  # (V, 4)
    rect = torch.einsum("bij,vj->bvi", T_rect_from_lidar[:, :3, :], points_h)  # (B, V, 3)
    rect_h = torch.cat([rect, torch.ones_like(rect[..., :1])], dim=-1)  # (B, V, 4)
    uvw = torch.einsum("bij,bvj->bvi", P2, rect_h)  # (B, V, 3)
    depth_m = rect[..., 2]
    in_front = depth_m >= cfg.min_m
    w = torch.where(in_front, uvw[..., 2], torch.ones_like(depth_m))
    u, v = uvw[..., 0] / w, uvw[..., 1] / w
    t = continuous_bin_index(torch.where(in_front, depth_m, torch.full_like(depth_m, cfg.min_m)),
                             cfg)
    height, width = input_hw
    normalised = torch.stack([
        (u + 0.5) / width * 2.0 - 1.0,
        (v + 0.5) / height * 2.0 - 1.0,
        t / cfg.num_bins * 2.0 - 1.0,
    ], dim=-1)  # (B, V, 3) in (x→u, y→v, z→bin) order, as grid_sample expects
    outside = torch.full_like(normalised, -2.0)
    normalised = torch.where(in_front.unsqueeze(-1), normalised, outside)
    return normalised.reshape(P2.shape[0], *zyx, 3)


class FrustumToVoxel(nn.Module):
    """Samples frustum features (B, C, N, h, w) at every voxel centre → (B, C, Z, Y, X)."""

    def __init__(self, grid: BevGridConfig, depth: DepthBinsConfig) -> None:
        super().__init__()
        self.depth_cfg = depth
        self.register_buffer("centres_lidar", voxel_centres_lidar(grid), persistent=False)

    def forward(self, frustum: torch.Tensor, P2: torch.Tensor, T_rect_from_lidar: torch.Tensor,
                input_hw: tuple[int, int]) -> torch.Tensor:
        """Trilinear sampling over (u, v, depth bin); ``input_hw`` is the padded input size."""
        sampling = voxel_sampling_grid(self.centres_lidar, P2.float(), T_rect_from_lidar.float(),
                                       input_hw, self.depth_cfg)
        # Sample in float32 even under fp16 autocast: a half-precision grid would misplace
        # voxels by ~0.6 px at 1248 columns and by ~0.06 depth bins.
        return sample_frustum(frustum.float(), sampling)


def sample_frustum(frustum: torch.Tensor, sampling: torch.Tensor) -> torch.Tensor:
    """``grid_sample`` (trilinear, zeros outside) of (B, C, N, h, w) at (B, Z, Y, X, 3).

    One frame is sampled on every CPU thread, its Y rows split among them (bit-identical).
    """
    return grid_sample_threads(frustum, sampling, split_dim=2, align_corners=False)


class HeightCollapse(nn.Module):
    """(B, C, Z, Y, X) → (B, out, Y, X): stack height slices as channels, then 1x1 conv-bn-relu."""

    def __init__(self, channels: int, height_slices: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels * height_slices, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, voxels: torch.Tensor) -> torch.Tensor:
        """BEV map on the grid's (ny, nx) cells."""
        bev = voxels.flatten(1, 2)  # (B, C·Z, Y, X)
        return F.relu(self.bn(self.conv(bev)))
