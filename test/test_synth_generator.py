"""Whole synthetic object frames: determinism and agreement of image, LiDAR and labels."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from helpers_geometry import points_in_boxes_lidar

from monotakd_ros.data.synth.config import SynthConfig
from monotakd_ros.data.synth.generator import SynthFrame, frame_rng, generate_object_frame
from monotakd_ros.data.synth.rig import T_rect_from_world
from monotakd_ros.data.synth.scene import sample_world
from monotakd_ros.geometry.coord_frames import boxes_cam_to_lidar
from monotakd_ros.geometry.projection import lidar_depth_map, project_rect_to_image

SEED = 5
FRAMES = range(6)


@cache
def frame(index: int) -> SynthFrame:
    return generate_object_frame(SEED, index)


def objects(f: SynthFrame) -> np.ndarray:
    return np.flatnonzero(f.labels.names != "DontCare")


def grown(boxes_cam: np.ndarray, margin_m: float) -> np.ndarray:
    out = boxes_cam.copy()
    out[:, 1] += margin_m
    out[:, 3:6] += 2 * margin_m
    return out


def test_frames_are_deterministic_per_seed_and_index():
    a, b = generate_object_frame(SEED, 3), generate_object_frame(SEED, 3)
    assert np.array_equal(a.image_bgr, b.image_bgr)
    assert np.array_equal(a.points, b.points)
    assert np.array_equal(a.labels.boxes_cam, b.labels.boxes_cam)
    assert np.array_equal(a.labels.names, b.labels.names)
    c = generate_object_frame(SEED, 4)
    d = generate_object_frame(SEED + 1, 3)
    assert not np.array_equal(a.image_bgr, c.image_bgr)
    assert not np.array_equal(a.image_bgr, d.image_bgr)


def test_frame_has_kitti_shapes_and_types():
    f = frame(0)
    assert f.image_bgr.shape == (375, 1242, 3) and f.image_bgr.dtype == np.uint8
    assert f.points.ndim == 2 and f.points.shape[1] == 4 and f.points.dtype == np.float32
    assert 60_000 < len(f.points) < 140_000
    assert f.points[:, 3].min() >= 0.0 and f.points[:, 3].max() < 1.0
    assert np.linalg.norm(f.points[:, :3], axis=1).max() < 120.5
    a, b, c, d = f.plane
    assert b < -0.99 and 1.5 < d < 1.8  # normal points up (-y), camera ~1.65 m above it


def test_near_cars_get_hundreds_of_lidar_points_inside_their_box():
    checked = 0
    for index in FRAMES:
        f = frame(index)
        for k in objects(f):
            box = f.labels.boxes_cam[k]
            if f.labels.names[k] != "Car" or box[2] > 15 or f.labels.occluded[k] or \
                    f.labels.truncated[k] > 0:
                continue
            inside = points_in_boxes_lidar(f.points, boxes_cam_to_lidar(box[None], f.calib))[0]
            assert inside.sum() >= 200
            checked += 1
    assert checked >= 1


def test_every_return_on_an_actor_lies_in_its_labelled_box():
    for index in FRAMES:
        f = frame(index)
        for label in f.actor_labels:
            if label.name == "DontCare":
                continue
            own = f.point_actor == label.actor
            if not own.any():
                continue
            # Objects stand upright in the world, labels are upright in the camera (as in
            # KITTI) and the rig pitches ~2 deg: a 5 m van's corners differ by ~0.1 m.
            box_lidar = boxes_cam_to_lidar(grown(label.box_cam[None], 0.15), f.calib)
            inside = points_in_boxes_lidar(f.points[own], box_lidar)[0]
            assert inside.mean() > 0.99


def test_labelled_objects_stand_on_what_is_under_them():
    supports = []
    for index in FRAMES[:3]:
        f = frame(index)
        world = sample_world(frame_rng(SEED, index), SynthConfig())  # the frame's own world
        T = T_rect_from_world(f.calib, f.pose)
        static = world.static
        ground_boxes = np.flatnonzero(static.group_layer[static.box_group] == 0)
        for k in objects(f):
            bottom_rect = f.labels.boxes_cam[k, :3]
            bottom = np.linalg.solve(T[:3, :3], bottom_rect - T[:3, 3])
            # Independent support height: the top of any sidewalk slab under the point.
            centre, half = static.box_center[ground_boxes], static.box_half[ground_boxes]
            under = np.all(np.abs(bottom[:2] - centre[:, :2]) <= half[:, :2], axis=1)
            support = (centre[under, 2] + half[under, 2]).max() if under.any() else 0.0
            assert bottom[2] == pytest.approx(support, abs=1e-6)
            supports.append(support)
    assert min(supports) == 0.0 and max(supports) > 0.09  # on the road and on a sidewalk


def test_lidar_depth_map_agrees_with_the_rendered_objects():
    agree, total = 0, 0
    near_pixels, depth_pixels = 0, 0
    for index in FRAMES:
        f = frame(index)
        depth = lidar_depth_map(f.points, f.calib, (375, 1242))
        for label in f.actor_labels:
            if label.name == "DontCare" or label.occlusion or label.box_cam[2] > 30:
                continue
            mask = (f.id_buffer == label.actor + 1) & (depth > 0)
            if mask.sum() < 20:
                continue
            x, y, z, length, height, width, _ = label.box_cam
            reach = 0.5 * np.hypot(length, width) + 0.3
            near_enough = np.abs(depth[mask] - z) < reach
            # The LiDAR sits 0.27 m behind the camera: along a thin object's outline about a
            # pixel of background shows through.
            assert near_enough.mean() > 0.7
            near_pixels += int(near_enough.sum())
            depth_pixels += len(near_enough)
        # Returns on actors land on pixels the camera shows as that actor (up to parallax).
        on_actor = f.point_actor >= 0
        uv, d = project_rect_to_image(f.calib.lidar_to_rect(f.points[on_actor]), f.calib.P2)
        col, row = np.floor(uv[:, 0] + 0.5).astype(int), np.floor(uv[:, 1] + 0.5).astype(int)
        seen = (d > 1) & (col >= 0) & (col < 1242) & (row >= 0) & (row < 375)
        ids = f.id_buffer[row[seen], col[seen]].astype(np.int64) - 1
        agree += int(np.count_nonzero(ids == f.point_actor[on_actor][seen]))
        total += int(seen.sum())
    assert total > 5000 and agree / total > 0.85
    assert depth_pixels > 1000 and near_pixels / depth_pixels > 0.9


def test_labels_cover_the_classes_and_difficulty_levels():
    names, occluded, truncated, heights = [], [], [], []
    for index in FRAMES:
        f = frame(index)
        names += list(f.labels.names)
        keep = objects(f)
        occluded += list(f.labels.occluded[keep])
        truncated += list(f.labels.truncated[keep])
        heights += list(f.labels.bbox[keep, 3] - f.labels.bbox[keep, 1])
        assert np.allclose(np.cos(f.labels.alpha[keep] - f.labels.boxes_cam[keep, 6] + np.arctan2(
            f.labels.boxes_cam[keep, 0], f.labels.boxes_cam[keep, 2])), 1.0)
    assert {"Car", "Pedestrian", "DontCare"} <= set(names)
    assert {"Van", "Cyclist"} & set(names)
    assert {0, 1, 2} <= set(occluded)
    assert max(truncated) > 0.15 and min(heights) < 40 and max(heights) > 40
