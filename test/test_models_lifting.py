"""Specification of models.lifting: LID bins, LiDAR one-hot depth, frustum → voxel sampling."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from monotakd_ros.configuration import dataclass_from_dict
from monotakd_ros.errors import ConfigError
from monotakd_ros.models.config import BevGridConfig, DepthBinsConfig
from monotakd_ros.models.lifting import (
    FrustumToVoxel,
    HeightCollapse,
    continuous_bin_index,
    depth_bin_indices,
    frustum_features,
    lid_bin_edges_m,
    lidar_depth_one_hot,
    pooled_lidar_depth_m,
    sample_frustum,
    voxel_centres_lidar,
)
from monotakd_ros.models.sampling import grid_sample_threads

# With 4 bins over [2, 12] the LID widths are 1, 2, 3, 4 m: edges 2, 3, 5, 8, 12.
FOUR_BINS = DepthBinsConfig(num_bins=4, min_m=2.0, max_m=12.0)


def lid_bin_centres_m(cfg: DepthBinsConfig) -> torch.Tensor:
    """(N,) depth at the middle of each LID bin."""
    edges = lid_bin_edges_m(cfg)
    return 0.5 * (edges[:-1] + edges[1:])


def test_lid_edges_match_the_closed_form_and_grow_linearly() -> None:
    cfg = DepthBinsConfig()  # 120 bins over 2-46.8 m
    edges = lid_bin_edges_m(cfg).double()
    n = cfg.num_bins
    closed = [cfg.min_m + (cfg.max_m - cfg.min_m) * i * (i + 1) / (n * (n + 1))
              for i in range(n + 1)]
    np.testing.assert_allclose(edges.numpy(), closed, rtol=1e-6)
    widths = torch.diff(edges)
    # LID: bin k is (k + 1) times as wide as bin 0, and the widths sum to the range.
    np.testing.assert_allclose((widths / widths[0]).numpy(), np.arange(1, n + 1), rtol=1e-4)
    assert float(widths.sum()) == pytest.approx(cfg.max_m - cfg.min_m, rel=1e-6)
    np.testing.assert_allclose(lid_bin_edges_m(FOUR_BINS).numpy(), [2, 3, 5, 8, 12])
    np.testing.assert_allclose(lid_bin_centres_m(FOUR_BINS).numpy(), [2.5, 4, 6.5, 10])


def test_continuous_index_is_integer_at_edges() -> None:
    cfg = DepthBinsConfig()
    t = continuous_bin_index(lid_bin_edges_m(cfg).double(), cfg)
    np.testing.assert_allclose(t.numpy(), np.arange(cfg.num_bins + 1), atol=1e-4)


def test_depth_bin_indices_by_hand() -> None:
    depth = torch.tensor([1.0, 2.0, 2.99, 3.0, 4.9, 7.99, 8.0, 11.99, 12.0, math.nan, math.inf])
    expected = [4, 0, 0, 1, 1, 2, 3, 3, 4, 4, 4]  # outside [2, 12) or not finite → beyond (4)
    assert depth_bin_indices(depth, FOUR_BINS).tolist() == expected


def test_lidar_one_hot_pools_valid_pixels_then_bins() -> None:
    depth = torch.tensor([[[2.5, 0.0, 0.0, 0.0],
                           [0.0, 3.5, 0.0, 0.0],
                           [13.0, 0.0, 6.0, 10.0],
                           [0.0, 0.0, 0.0, 0.0]]])
    one_hot = lidar_depth_one_hot(depth, stride=2, cfg=FOUR_BINS)
    assert one_hot.shape == (1, 5, 2, 2)
    expected = torch.zeros(1, 5, 2, 2)
    expected[0, 1, 0, 0] = 1  # mean(2.5, 3.5) = 3.0 → bin 1 = [3, 5)
    expected[0, 4, 1, 0] = 1  # 13 m → beyond
    expected[0, 3, 1, 1] = 1  # mean(6, 10) = 8 → bin 3 = [8, 12)
    # block (0, 1) holds no LiDAR return: it lifts nothing, not even into "beyond"
    torch.testing.assert_close(one_hot, expected)


def test_nearest_pooling_gives_a_block_the_depth_of_its_closest_return() -> None:
    depth = torch.tensor([[[2.5, 0.0, 0.0, 0.0],
                           [0.0, 3.5, 0.0, 0.0],
                           [13.0, 0.0, 6.0, 10.0],
                           [0.0, 0.0, 0.0, 0.0]]])
    nearest = dataclasses.replace(FOUR_BINS, lidar_pooling="nearest")
    one_hot = lidar_depth_one_hot(depth, stride=2, cfg=nearest)
    expected = torch.zeros(1, 5, 2, 2)
    expected[0, 0, 0, 0] = 1  # min(2.5, 3.5) = 2.5 → bin 0 = [2, 3) (mean: bin 1)
    expected[0, 4, 1, 0] = 1  # 13 m → beyond
    expected[0, 2, 1, 1] = 1  # min(6, 10) = 6 → bin 2 = [5, 8) (mean 8: bin 3)
    torch.testing.assert_close(one_hot, expected)
    pooled, valid = pooled_lidar_depth_m(depth, 2, "nearest")
    torch.testing.assert_close(pooled, torch.tensor([[[2.5, 0.0], [13.0, 6.0]]]))
    assert valid.tolist() == [[[True, False], [True, True]]]


def test_unknown_lidar_pooling_is_refused() -> None:
    with pytest.raises(ConfigError, match="lidar_pooling.*'median' is not one of"):
        dataclass_from_dict(DepthBinsConfig, {"lidar_pooling": "median"}, where="depth")


def test_lidar_one_hot_pads_odd_sizes_with_empty_pixels() -> None:
    depth = torch.zeros(1, 3, 3)
    depth[0, 2, 2] = 4.0
    one_hot = lidar_depth_one_hot(depth, stride=2, cfg=FOUR_BINS)
    assert one_hot.shape == (1, 5, 2, 2)
    assert one_hot.sum() == 1 and one_hot[0, 1, 1, 1] == 1


def test_frustum_is_outer_product_without_the_beyond_bin() -> None:
    features = torch.arange(6.0).view(1, 2, 1, 3)
    probs = torch.tensor([0.2, 0.3, 0.1, 0.4]).view(1, 4, 1, 1).expand(1, 4, 1, 3)
    frustum = frustum_features(features, probs)
    assert frustum.shape == (1, 2, 3, 1, 3)
    torch.testing.assert_close(frustum[0, 1, 2, 0, 1], features[0, 1, 0, 1] * 0.1)
    beyond_only = torch.zeros(1, 4, 1, 3)
    beyond_only[:, 3] = 1.0
    assert frustum_features(features, beyond_only).abs().sum() == 0


GRID = BevGridConfig(x_range_m=(2.0, 14.8), y_range_m=(-6.4, 6.4), z_range_m=(-3.0, 1.0),
                     cell_m=0.64, height_slices=4)
# LiDAR x forward, y left, z up → camera x right, y down, z forward
T_RECT_FROM_LIDAR = np.array([[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1.0]])


def _hat(x: np.ndarray) -> np.ndarray:
    return np.clip(1.0 - np.abs(x), 0.0, None)


def test_voxel_centres_follow_the_documented_layout() -> None:
    centres = voxel_centres_lidar(GRID)  # (Z, Y, X, 3)
    assert centres.shape == (4, 20, 20, 3)
    torch.testing.assert_close(centres[1, 2, 3], torch.tensor([2.0 + 3.5 * 0.64,
                                                               -6.4 + 2.5 * 0.64, -1.5]))


def test_voxel_sampling_equals_trilinear_weights_of_the_projection() -> None:
    """One lit frustum cell: each voxel receives its hand-computed trilinear weight."""
    depth_cfg = DepthBinsConfig(num_bins=40, min_m=2.0, max_m=14.8)
    stride, (height, width) = 8, (64, 96)
    P2 = np.array([[60.0, 0, 48, 1.5], [0, 60.0, 20, 0.2], [0, 0, 1, 0.003]])
    h, w = height // stride, width // stride
    row, col, bin_ = 4, 6, 25
    frustum = torch.zeros(1, 1, depth_cfg.num_bins, h, w)
    frustum[0, 0, bin_, row, col] = 1.0
    sampler = FrustumToVoxel(GRID, depth_cfg)
    voxels = sampler(frustum, torch.tensor(P2[None], dtype=torch.float32),
                     torch.tensor(T_RECT_FROM_LIDAR[None], dtype=torch.float32), (height, width))
    assert voxels.shape == (1, 1, 4, 20, 20)
    # Independent reference in numpy: project, convert to feature-cell units, hat weights.
    centres = voxel_centres_lidar(GRID).double().numpy().reshape(-1, 3)
    rect = centres @ T_RECT_FROM_LIDAR[:3, :3].T + T_RECT_FROM_LIDAR[:3, 3]
    uvw = rect @ P2[:, :3].T + P2[:, 3]
    u, v = uvw[:, 0] / uvw[:, 2], uvw[:, 1] / uvw[:, 2]
    z = rect[:, 2]
    # Real-valued bin coordinate by numerically inverting the LID edge curve edge(t).
    n = depth_cfg.num_bins
    t_fine = np.linspace(0.0, n, 400001)
    edge_fine = 2.0 + (14.8 - 2.0) * t_fine * (t_fine + 1) / (n * (n + 1))
    t = np.interp(z, edge_fine, t_fine)
    expected = (_hat((u + 0.5) / stride - 0.5 - col) * _hat((v + 0.5) / stride - 0.5 - row)
                * _hat(t - 0.5 - bin_))
    assert expected.max() > 0.2  # the test geometry really lights some voxels
    np.testing.assert_allclose(voxels.flatten().double().numpy(), expected, atol=1e-5)


def test_voxels_behind_or_too_near_the_camera_sample_nothing() -> None:
    depth_cfg = DepthBinsConfig(num_bins=8, min_m=2.0, max_m=14.8)
    frustum = torch.ones(1, 1, 8, 8, 12)
    flipped = torch.tensor(T_RECT_FROM_LIDAR, dtype=torch.float32).clone()
    flipped[2, 0] = -1.0  # camera looks backwards: every voxel is behind it
    P2 = torch.tensor([[[60.0, 0, 48, 0], [0, 60.0, 20, 0], [0, 0, 1, 0]]])
    voxels = FrustumToVoxel(GRID, depth_cfg)(frustum, P2, flipped[None], (64, 96))
    assert voxels.abs().sum() == 0


def test_height_collapse_stacks_slices_into_channels() -> None:
    collapse = HeightCollapse(channels=2, height_slices=3, out_channels=5).eval()
    voxels = torch.randn(2, 2, 3, 4, 6)
    bev = collapse(voxels)
    assert bev.shape == (2, 5, 4, 6)
    # cell (1, 2) of the BEV depends only on the voxel column (1, 2)
    changed = voxels.clone()
    changed[:, :, :, 3, 5] += 10.0
    diff = (collapse(changed) - bev).abs().sum(dim=(0, 1))
    assert diff[1, 2] == 0 and diff[3, 5] > 0


@pytest.mark.parametrize(("threads", "rows"), [(2, 94), (2, 47), (3, 10), (4, 3), (2, 1)])
def test_frustum_sampling_split_across_threads_equals_grid_sample(threads: int,
                                                                  rows: int) -> None:
    generator = torch.Generator().manual_seed(rows)
    frustum = torch.randn(1, 8, 12, 6, 20, generator=generator)
    sampling = torch.rand(1, 4, rows, 7, 3, generator=generator) * 2.4 - 1.2  # some outside
    expected = F.grid_sample(frustum, sampling, mode="bilinear", padding_mode="zeros",
                             align_corners=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        sampled = sample_frustum(frustum, sampling)
    finally:
        torch.set_num_threads(before)
    assert sampled.shape == expected.shape and torch.equal(sampled, expected)
    assert expected.abs().sum() > 0 and (expected == 0).any()


@pytest.mark.parametrize(("threads", "rows"), [(2, 630), (2, 9), (3, 10), (4, 3), (2, 1)])
def test_image_sampling_split_across_threads_equals_grid_sample(threads: int, rows: int) -> None:
    # The deformable conv's case: a (1, C, H, W) map sampled at K·H rows of W points.
    generator = torch.Generator().manual_seed(rows)
    image = torch.randn(1, 5, 11, 13, generator=generator)
    grid = torch.rand(1, rows, 13, 2, generator=generator) * 2.4 - 1.2
    grid[0, 0, 0] = 1.5  # at least one point outside the map
    expected = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=True)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        sampled = grid_sample_threads(image, grid, split_dim=1, align_corners=True)
    finally:
        torch.set_num_threads(before)
    assert sampled.shape == expected.shape and torch.equal(sampled, expected)
    assert expected.abs().sum() > 0 and (expected == 0).any()
    with pytest.raises(ValueError, match=r"split_dim must be a spatial grid dimension \(1..2\)"):
        grid_sample_threads(image, grid, split_dim=3, align_corners=True)
