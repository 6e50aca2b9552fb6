"""Specification of the height-resolved LiDAR teacher (voxel-stack encoder)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers_models import tiny_config

from monotakd_ros.errors import ConfigError
from monotakd_ros.models import build_teacher
from monotakd_ros.models.config import TeacherConfig


def _voxel_config(**teacher: object) -> object:
    fields = dict(pfn_channels=8, stem_convs=1, encoder="voxel", voxel_subdivision=2,
                  voxel_height_m=0.5, voxel_channels=4)
    fields.update(teacher)
    return tiny_config(teacher=TeacherConfig(**fields))  # type: ignore[arg-type]


def test_voxel_features_match_a_loop_reference() -> None:
    """Vectorised per-voxel max-pooling equals a per-voxel Python loop (the obvious way)."""
    torch.manual_seed(0)
    cfg = _voxel_config()
    encoder = build_teacher(cfg).eval().voxels
    points = torch.rand(150, 4) * torch.tensor([2.0, 2.0, 5.0, 1.0]) + torch.tensor(
        [4.0, -1.0, -3.5, 0.0])  # some points fall below the z range
    dense = encoder.voxel_features([points])[0]  # (C, Z, Y', X')
    g, size_xy, size_z = cfg.grid, cfg.grid.cell_m / 2, 0.5
    assert dense.shape == (4, 8, 2 * g.ny, 2 * g.nx)
    keep = (points[:, 2] >= g.z_range_m[0]) & (points[:, 2] < g.z_range_m[1])
    pts = points[keep]
    index = torch.stack([((pts[:, 2] - g.z_range_m[0]) // size_z),
                         ((pts[:, 1] - g.y_range_m[0]) // size_xy),
                         ((pts[:, 0] - g.x_range_m[0]) // size_xy)], dim=1).long()
    reference = torch.zeros_like(dense)
    occupied = {tuple(v) for v in index.tolist()}
    for iz, iy, ix in occupied:
        members = pts[(index == torch.tensor([iz, iy, ix])).all(dim=1)]
        centre = torch.tensor([g.x_range_m[0] + (ix + 0.5) * size_xy,
                               g.y_range_m[0] + (iy + 0.5) * size_xy,
                               g.z_range_m[0] + (iz + 0.5) * size_z])
        decorated = torch.cat([members, members[:, :3] - members[:, :3].mean(dim=0),
                               members[:, :3] - centre], dim=1)
        with torch.no_grad():
            feats = torch.relu(encoder.norm(encoder.linear(decorated)))
        reference[:, iz, iy, ix] = feats.max(dim=0).values
    torch.testing.assert_close(dense.detach(), reference, atol=1e-5, rtol=1e-5)
    assert len(occupied) > 20  # the cloud really spreads over many voxels


def test_sparse_collapse_equals_the_dense_height_stack() -> None:
    """Without 3D convs the collapse runs per occupied voxel; it must equal the dense 1x1 conv."""
    torch.manual_seed(3)
    encoder = build_teacher(_voxel_config()).eval().voxels
    clouds = [torch.rand(n, 4) * torch.tensor([12.0, 12.0, 4.4, 1.0])
              + torch.tensor([2.5, -6.0, -3.2, 0.0]) for n in (250, 90)]
    with torch.no_grad():
        sparse = encoder(clouds)
        dense = encoder.to_bev(encoder.collapse(encoder.voxel_features(clouds).flatten(1, 2)))
    torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=1e-5)
    assert sparse.abs().sum() > 0


def test_height_of_a_point_changes_the_teacher_map() -> None:
    """Two clouds that differ only in height give different F_T (no pillar-wide pooling)."""
    torch.manual_seed(1)
    teacher = build_teacher(_voxel_config()).eval()
    low = torch.tensor([[6.0, 0.3, -2.6, 0.5], [6.1, 0.2, -2.4, 0.5]])
    high = low.clone()
    high[:, 2] += 1.6
    f_low, f_high = (teacher.forward_features([c]).bev for c in (low, high))
    assert (f_low - f_high).abs().max() > 1e-3


def test_voxel_teacher_keeps_the_shared_grid_and_trains() -> None:
    torch.manual_seed(2)
    cfg = _voxel_config(vertical_convs=1)
    teacher = build_teacher(cfg)
    points = [torch.rand(300, 4) * torch.tensor([12.0, 12.0, 4.0, 1.0])
              + torch.tensor([2.5, -6.0, -3.0, 0.0]) for _ in range(2)]
    out = teacher(points)
    assert out.features.bev.shape == (2, cfg.bev_channels, cfg.grid.ny, cfg.grid.nx)
    out.head.cls_logits.mean().backward()
    assert teacher.voxels.linear.weight.grad.abs().sum() > 0
    assert teacher.pillars is None
    empty = teacher([torch.zeros(0, 4)])
    assert empty.features.bev.shape == (1, cfg.bev_channels, cfg.grid.ny, cfg.grid.nx)


def test_encoders_have_distinct_checkpoint_keys() -> None:
    pillar_keys = set(build_teacher(tiny_config()).state_dict())
    voxel_keys = set(build_teacher(_voxel_config()).state_dict())
    assert any(k.startswith("pillars.") for k in pillar_keys)
    assert not any(k.startswith("voxels.") for k in pillar_keys)
    assert any(k.startswith("voxels.") for k in voxel_keys)


def test_voxel_height_must_divide_the_z_range() -> None:
    with pytest.raises(ConfigError, match="teacher.voxel_height_m"):
        _voxel_config(voxel_height_m=0.3)  # 4 m is not a whole number of 0.3 m slices
    pillar = dataclasses.replace(tiny_config().teacher, voxel_height_m=0.3)
    assert tiny_config(teacher=pillar).teacher.encoder == "pillar"  # unused: not checked
    with pytest.raises(ConfigError, match="teacher.voxel_subdivision"):
        _voxel_config(voxel_subdivision=0)
