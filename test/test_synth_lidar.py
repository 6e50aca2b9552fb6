"""The synthetic LiDAR: beam layout, ray casting against boxes, spheres and ground, noise."""

from __future__ import annotations

import numpy as np
import pytest

from monotakd_ros.data.synth.lidar import HIT_GROUND, LidarConfig, LidarModel, cast_sweep
from monotakd_ros.data.synth.primitives import PrimitiveBuilder, Primitives
from monotakd_ros.data.synth.rig import RigPose

LEVEL = RigPose(0.0, 0.0, 1.73, 0.0, 0.0, 0.0)
TILTED = RigPose(3.0, -0.5, 1.75, np.deg2rad(5.0), np.deg2rad(2.0), np.deg2rad(-1.0))
EXACT = LidarConfig(dropout=0.0, range_noise_m=0.0)


def flat_ground(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.full(np.shape(x), 0.3)


def sweep(prims: Primitives, pose: RigPose, config: LidarConfig = EXACT, seed: int = 0,
          ground=flat_ground):
    return cast_sweep(prims, pose, LidarModel(config), ground, np.random.default_rng(seed))


def to_world(points: np.ndarray, pose: RigPose) -> np.ndarray:
    return points[:, :3].astype(np.float64) @ pose.R_world_from_lidar.T + pose.position


def wall(center=(20.0, 1.0, 2.0), size=(1.0, 6.0, 4.0), reflect=1.0) -> tuple[Primitives, int]:
    builder = PrimitiveBuilder()
    group = builder.new_group()
    builder.add_box(np.array(center), np.array(size), 0.0, np.full(3, 128.0), group,
                    reflect=reflect)
    return builder.build(), group


def test_beam_layout_is_hdl64_like():
    model = LidarModel(LidarConfig())
    elevation_deg = np.rad2deg(model.elevation_rad)
    assert len(elevation_deg) == 64
    assert elevation_deg[0] == pytest.approx(2.0)
    assert elevation_deg[-1] == pytest.approx(-24.8)
    assert np.all(np.diff(elevation_deg) < 0)
    assert model.num_columns == 1800  # 0.2 degree steps
    assert np.allclose(np.linalg.norm(model.dirs_lidar, axis=1), 1.0)


def test_ground_returns_lie_where_each_beam_meets_the_road():
    model = LidarModel(EXACT)
    result = sweep(Primitives(), LEVEL)
    assert np.all(result.group == HIT_GROUND)
    assert np.allclose(result.points[:, 2], -1.73, atol=1e-4)
    # A beam at elevation e < 0 meets flat ground at horizontal distance h / tan(-e).
    elevation = model.elevation_rad[result.ray // model.num_columns]
    expected_r = 1.73 / np.tan(-elevation)
    assert np.allclose(np.hypot(result.points[:, 0], result.points[:, 1]), expected_r, rtol=1e-4)
    ranges = np.linalg.norm(result.points[:, :3], axis=1)
    assert ranges.min() > EXACT.min_range_m and ranges.max() < EXACT.max_range_m


@pytest.mark.parametrize("pose", [LEVEL, TILTED], ids=["level", "tilted"])
def test_wall_returns_match_an_independent_plane_intersection(pose: RigPose):
    prims, group = wall()
    result = sweep(prims, pose)
    on_wall = result.group == group
    # Reference: intersect every ray with the wall's front plane x = 19.5 and keep those that
    # land inside the face rectangle.
    model = LidarModel(EXACT)
    dirs = model.dirs_lidar @ pose.R_world_from_lidar.T
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (19.5 - pose.position[0]) / dirs[:, 0]
    hit = pose.position + t[:, None] * dirs
    inside = (t > 0) & (np.abs(hit[:, 1] - 1.0) <= 3.0) & (np.abs(hit[:, 2] - 2.0) <= 2.0)
    assert abs(int(on_wall.sum()) - int(inside.sum())) <= 2
    assert int(inside.sum()) > 1000
    world = to_world(result.points[on_wall], pose)
    assert np.allclose(world[:, 0], 19.5, atol=1e-3)
    ground = to_world(result.points[result.group == HIT_GROUND], pose)
    assert np.allclose(ground[:, 2], 0.0, atol=2e-3)


def test_box_hidden_behind_another_gets_no_returns():
    builder = PrimitiveBuilder()
    front, behind = builder.new_group(), builder.new_group()
    builder.add_box(np.array([15.0, 0.0, 1.5]), np.array([1.0, 4.0, 3.0]), 0.0, np.ones(3), front)
    builder.add_box(np.array([25.0, 0.0, 0.8]), np.array([2.0, 1.5, 1.6]), 0.3, np.ones(3),
                    behind)
    result = sweep(builder.build(), LEVEL)
    assert np.count_nonzero(result.group == behind) == 0
    assert np.count_nonzero(result.group == front) > 500
    alone = PrimitiveBuilder()
    alone.new_group()
    group = alone.new_group()
    alone.add_box(np.array([25.0, 0.0, 0.8]), np.array([2.0, 1.5, 1.6]), 0.3, np.ones(3), group)
    assert np.count_nonzero(sweep(alone.build(), LEVEL).group == group) > 100


def test_sphere_returns_lie_on_its_surface():
    builder = PrimitiveBuilder()
    group = builder.new_group()
    builder.add_sphere(np.array([12.0, -3.0, 2.0]), 1.5, np.ones(3), group)
    result = sweep(builder.build(), TILTED)
    on_sphere = to_world(result.points[result.group == group], TILTED)
    assert len(on_sphere) > 200
    distance = np.linalg.norm(on_sphere - np.array([12.0, -3.0, 2.0]), axis=1)
    assert np.allclose(distance, 1.5, atol=2e-3)


def test_painted_ground_returns_more_intensity_than_asphalt():
    def paint_on_left(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.where(y > 0, 0.65, 0.16)

    result = sweep(Primitives(), LEVEL, ground=paint_on_left)
    intensity = result.points[:, 3]
    assert intensity.min() >= 0.0 and intensity.max() < 1.0
    left = intensity[result.points[:, 1] > 1.0].mean()
    right = intensity[result.points[:, 1] < -1.0].mean()
    assert left > 2.5 * right


def test_dropout_and_range_noise_follow_the_config():
    prims, group = wall()
    exact = sweep(prims, LEVEL)
    noisy_config = LidarConfig(dropout=0.5, range_noise_m=0.05)
    noisy = sweep(prims, LEVEL, noisy_config, seed=3)
    kept = np.count_nonzero(noisy.group == group) / np.count_nonzero(exact.group == group)
    assert 0.45 < kept < 0.55
    # On the wall, range noise moves points along their rays: x varies with std ~ 0.05 m.
    x = to_world(noisy.points[noisy.group == group], LEVEL)[:, 0]
    assert 0.04 < np.std(x) < 0.06
    assert abs(np.mean(x) - 19.5) < 0.01


def test_glass_faces_let_most_beams_through():
    clear, group = wall(reflect=1.0)
    builder = PrimitiveBuilder()
    glass_group = builder.new_group()
    builder.add_box(np.array([20.0, 1.0, 2.0]), np.array([1.0, 6.0, 4.0]), 0.0, np.ones(3),
                    glass_group, reflect=1.0, dropout=np.array([0.0, 0.8, 0.0, 0.0, 0.0, 0.0]))
    solid = np.count_nonzero(sweep(clear, LEVEL).group == group)
    # The face towards the LiDAR is the box's -x face, which drops 80 % of the returns.
    through = np.count_nonzero(sweep(builder.build(), LEVEL, seed=5).group == glass_group)
    assert 0.15 < through / solid < 0.25
