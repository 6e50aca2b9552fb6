"""LiDAR teacher in plain PyTorch: pillars or voxels → pseudo-image → F_T → head.

With ``teacher.encoder: pillar`` the pillars are the BEV cells themselves (no height
resolution); ``voxel`` uses the height-resolved ``VoxelStackEncoder``. Either way F_T lands on
the grid shared with the student and the TA. Grouping points into pillars is vectorised with
``unique``/``index_add``/``scatter_reduce``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from monotakd_ros.models.bev_backbone import BevBackbone
from monotakd_ros.models.config import BevGridConfig, ModelConfig
from monotakd_ros.models.head import AnchorHead
from monotakd_ros.models.layers import ConvBnRelu
from monotakd_ros.models.outputs import BevFeatures, HeadOutput, TeacherOutput
from monotakd_ros.models.voxel_encoder import VoxelStackEncoder, flatten_points

POINT_FEATURES = 9  # x, y, z, intensity, offsets to the pillar mean (3) and centre (2)


class PillarFeatureNet(nn.Module):
    """Shared PointNet (linear-bn-relu) on decorated points, max-pooled per pillar, scattered."""

    def __init__(self, grid: BevGridConfig, out_channels: int) -> None:
        super().__init__()
        self.grid = grid
        self.out_channels = out_channels
        self.linear = nn.Linear(POINT_FEATURES, out_channels, bias=False)
        self.norm = nn.BatchNorm1d(out_channels)

    def _cell_of_points(self, points: torch.Tensor, frame: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat (frame, iy, ix) cell of each point and a mask of points inside the grid."""
        g = self.grid
        ix = torch.floor((points[:, 0] - g.x_range_m[0]) / g.cell_m).long()
        iy = torch.floor((points[:, 1] - g.y_range_m[0]) / g.cell_m).long()
        inside = ((ix >= 0) & (ix < g.nx) & (iy >= 0) & (iy < g.ny)
                  & (points[:, 2] >= g.z_range_m[0]) & (points[:, 2] < g.z_range_m[1]))
        return (frame * g.ny + iy) * g.nx + ix, inside

    def _decorated(self, points: torch.Tensor, pillar_of_point: torch.Tensor,
                   cell: torch.Tensor, num_pillars: int) -> torch.Tensor:
        """(P, 9) point features: raw, offsets to the pillar's point mean and to its centre."""
        g = self.grid
        ones = torch.ones_like(points[:, 0])
        count = torch.zeros(num_pillars, device=points.device).index_add_(0, pillar_of_point, ones)
        sums = torch.zeros(num_pillars, 3, device=points.device, dtype=points.dtype)
        mean = sums.index_add_(0, pillar_of_point, points[:, :3]) / count.unsqueeze(1)
        ix = cell % g.nx
        iy = (cell // g.nx) % g.ny
        centre_x = g.x_range_m[0] + (ix.to(points.dtype) + 0.5) * g.cell_m
        centre_y = g.y_range_m[0] + (iy.to(points.dtype) + 0.5) * g.cell_m
        return torch.cat([
            points[:, :4],
            points[:, :3] - mean[pillar_of_point],
            (points[:, 0] - centre_x).unsqueeze(1),
            (points[:, 1] - centre_y).unsqueeze(1),
        ], dim=1)

    def forward(self, points_list: list[torch.Tensor]) -> torch.Tensor:
        """Points of B frames → (B, C, ny, nx) pseudo-image (zero where no point fell)."""
        g = self.grid
        batch = len(points_list)
        points, frame = flatten_points(points_list)
        cell, inside = self._cell_of_points(points, frame)
        points, cell = points[inside], cell[inside]
        cells = batch * g.ny * g.nx
        dense = points.new_zeros(cells, self.out_channels)
        if points.shape[0] >= 2:  # BatchNorm needs two values per channel in training
            pillar_cells, pillar_of_point = torch.unique(cell, return_inverse=True)
            decorated = self._decorated(points, pillar_of_point, cell, pillar_cells.shape[0])
            point_features = F.relu(self.norm(self.linear(decorated)))  # (P, C)
            pillar_features = point_features.new_zeros(pillar_cells.shape[0], self.out_channels)
            index = pillar_of_point.unsqueeze(1).expand_as(point_features)
            pillar_features = pillar_features.scatter_reduce(0, index, point_features, "amax",
                                                             include_self=False)
            dense = pillar_features.new_zeros(cells, self.out_channels)
            dense = dense.index_copy(0, pillar_cells, pillar_features)
        dense = dense.view(batch, g.ny, g.nx, self.out_channels)
        return dense.permute(0, 3, 1, 2).contiguous()  # (B, C, ny, nx)


class LidarTeacher(nn.Module):
    """Pillar or voxel encoder → F_T (``bev_channels``) → BEV backbone → anchor head."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        # Distinct attribute names keep the two encoders' checkpoint keys apart.
        self.pillars: PillarFeatureNet | None = None
        self.voxels: VoxelStackEncoder | None = None
        if cfg.teacher.encoder == "voxel":
            self.voxels = VoxelStackEncoder(cfg.grid, cfg.teacher)
        else:
            self.pillars = PillarFeatureNet(cfg.grid, cfg.teacher.pfn_channels)
        stem = [ConvBnRelu(cfg.teacher.pfn_channels, cfg.bev_channels, 3)]
        stem += [ConvBnRelu(cfg.bev_channels, cfg.bev_channels, 3)
                 for _ in range(cfg.teacher.stem_convs - 1)]
        self.stem = nn.Sequential(*stem)
        self.backbone = BevBackbone(cfg.bev_channels, cfg.bev_backbone)
        self.head = AnchorHead(self.backbone.out_channels, cfg.grid, cfg.head)

    def forward_features(self, points_list: list[torch.Tensor]) -> BevFeatures:
        """F_T: (B, bev_channels, ny, nx)."""
        encoder = self.voxels if self.voxels is not None else self.pillars
        return BevFeatures(bev=self.stem(encoder(points_list)))

    def forward(self, points_list: list[torch.Tensor]) -> TeacherOutput:
        """F_T and the head's predictions for a list of (N_i, 4) LiDAR point clouds."""
        features = self.forward_features(points_list)
        head: HeadOutput = self.head(self.backbone(features.bev))
        return TeacherOutput(features=features, head=head)
