"""Synthetic raw drives: smooth ego motion, moving actors, OXTS, stamps and tracklets."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from monotakd_ros.data.synth.drive import FRAME_PERIOD_NS, SynthDrive, generate_drive
from monotakd_ros.data.synth.generator import SynthFrame
from monotakd_ros.geometry.coord_frames import boxes_lidar_to_cam

SEED, FRAMES = 21, 6
EARTH_RADIUS_M = 6378137.0


@cache
def drive() -> tuple[SynthDrive, list[SynthFrame]]:
    d = generate_drive(SEED, FRAMES)
    frames = list(d)
    return d, frames


def world_from_lidar(frame: SynthFrame, points: np.ndarray) -> np.ndarray:
    return points @ frame.pose.R_world_from_lidar.T + frame.pose.position


def mercator_m(lat: np.ndarray, lon: np.ndarray, lat0: float) -> np.ndarray:
    """The KITTI devkit's latlonToMercator, written out independently."""
    scale = np.cos(np.deg2rad(lat0))
    mx = scale * lon * np.pi * EARTH_RADIUS_M / 180.0
    my = scale * EARTH_RADIUS_M * np.log(np.tan((90.0 + lat) * np.pi / 360.0))
    return np.stack([mx, my], axis=1)


def test_drive_yields_its_frames_then_stops():
    d, frames = drive()
    assert len(frames) == FRAMES == len(d)
    with pytest.raises(StopIteration):
        next(d)


def test_ego_moves_smoothly_at_constant_speed():
    d, frames = drive()
    positions = np.array([f.pose.position for f in frames])
    step = np.diff(positions, axis=0)
    assert np.allclose(step[:, 0], d.world.ego_speed_mps * 0.1, rtol=1e-9)
    assert np.abs(step[:, 1]).max() < 0.05  # a gentle weave, no jumps
    yaw = np.array([f.pose.yaw_rad for f in frames])
    assert np.abs(np.rad2deg(yaw)).max() < 2.0


def test_stamps_are_10_hz_with_the_sweep_just_before_the_image():
    _, frames = drive()
    image = np.array([f.image_stamp_ns for f in frames])
    velodyne = np.array([f.velodyne_stamp_ns for f in frames])
    assert np.all(np.abs(np.diff(image) - FRAME_PERIOD_NS) < 1_000_000)
    assert np.all((velodyne < image) & (image - velodyne < 3_000_000))


def test_oxts_positions_follow_the_ego_through_the_devkit_projection():
    d, frames = drive()
    lat = np.array([f.oxts.lat for f in frames])
    lon = np.array([f.oxts.lon for f in frames])
    metres = mercator_m(lat, lon, lat[0])
    travelled = np.linalg.norm(np.diff(metres, axis=0), axis=1)
    assert np.allclose(travelled, d.world.ego_speed_mps * 0.1, atol=0.01)
    for f in frames:
        assert f.oxts.vf == pytest.approx(d.world.ego_speed_mps, rel=0.01)
        assert f.oxts.au == pytest.approx(9.81, abs=0.6)  # gravity plus suspension bounce
        assert (f.oxts.navstat, f.oxts.posmode, f.oxts.velmode, f.oxts.orimode) == (4, 5, 5, 6)
    heading = np.arctan2(np.diff(metres[:, 1]), np.diff(metres[:, 0]))
    yaw = np.array([f.oxts.yaw for f in frames])
    assert np.allclose(np.cos(heading - yaw[:-1]), 1.0, atol=1e-3)


def test_parked_actors_stay_and_traffic_moves_at_its_speed():
    d, frames = drive()
    checked = {"parked": 0, "moving": 0}
    for tracklet in d.tracklets():
        if len(tracklet.poses) < 3:
            continue
        bottoms = np.array([
            world_from_lidar(frames[tracklet.first_frame + i], pose[None, :3])[0]
            for i, pose in enumerate(tracklet.poses)])
        step = np.linalg.norm(np.diff(bottoms[:, :2], axis=0), axis=1)
        speeds = {round(a.speed_mps, 9) for a in d.world.actors
                  if a.kind == tracklet.object_type and a.length_m == tracklet.l}
        (speed,) = speeds
        assert np.allclose(step, speed * 0.1, atol=1e-6)
        checked["parked" if speed == 0 else "moving"] += 1
    assert checked["parked"] >= 1 and checked["moving"] >= 1


def test_tracklets_reproduce_the_frame_labels():
    d, frames = drive()
    matched = 0
    for tracklet in d.tracklets():
        for i, pose in enumerate(tracklet.poses):
            f = frames[tracklet.first_frame + i]
            height = tracklet.h
            box_lidar = np.array([[pose[0], pose[1], pose[2] + height / 2, tracklet.l,
                                   tracklet.w, height, pose[5]]])
            box_cam = boxes_lidar_to_cam(box_lidar, f.calib)[0]
            same = np.flatnonzero(np.all(np.abs(f.labels.boxes_cam[:, :3] - box_cam[:3]) < 0.05,
                                         axis=1))
            assert len(same) == 1
            assert np.cos(f.labels.boxes_cam[same[0], 6] - box_cam[6]) > 0.999
            matched += 1
    num_labels = sum(int(np.count_nonzero(f.labels.names != "DontCare")) for f in frames)
    assert matched == num_labels > 10


def test_drives_are_deterministic_and_distinct():
    a = next(generate_drive(SEED, 2))
    b = next(generate_drive(SEED, 2))
    c = next(generate_drive(SEED, 2, drive=1))
    assert np.array_equal(a.image_bgr, b.image_bgr) and np.array_equal(a.points, b.points)
    assert a.oxts == b.oxts
    assert not np.array_equal(a.image_bgr, c.image_bgr)
