"""Raw drives generated with ``drive_scenes: object`` see the object set's scene distribution."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from monotakd_ros.data.synth.actors import Actor
from monotakd_ros.data.synth.config import SynthConfig
from monotakd_ros.data.synth.drive import FRAME_PERIOD_NS, SynthDrive, drive_scene_keys
from monotakd_ros.data.synth.generator import (
    MAX_OBJECT_FRAMES,
    frame_rng,
    generate_object_frame,
    scene_key,
)
from monotakd_ros.data.synth.scene import sample_world
from monotakd_ros.data.synth.writer import write_object_dataset
from monotakd_ros.errors import DatasetError

CLASSES = ("Car", "Van", "Pedestrian", "Cyclist")
AHEAD_M = (2.0, 50.0)  # the range a KITTI camera labels well
HALF_FOV_TAN = 0.8  # about the 78 deg horizontal field of view of KITTI's camera 2


def _in_view(actors: list[Actor], time_s: float, ego_xy: np.ndarray,
             counts: Counter, distances: dict[str, list[float]]) -> None:
    """Count the actors in the camera's view cone and note their distances (ego yaw ~ 0)."""
    for actor in actors:
        x, y, _ = actor.pose_at(time_s)
        dx, dy = x - ego_xy[0], y - ego_xy[1]
        if AHEAD_M[0] < dx < AHEAD_M[1] and abs(dy) < dx * HALF_FOV_TAN:
            counts[actor.kind] += 1
            distances[actor.kind].append(float(np.hypot(dx, dy)))


def _object_statistics(seed: int, frames: int) -> tuple[Counter, dict, int]:
    counts: Counter = Counter()
    distances: dict[str, list[float]] = {k: [] for k in CLASSES}
    for index in range(frames):
        world = sample_world(frame_rng(seed, index), SynthConfig())
        _in_view(world.actors, 0.0, np.zeros(2), counts, distances)
    return counts, distances, frames


def _drive_statistics(seed: int, drives: int, scenes: str) -> tuple[Counter, dict, int]:
    counts: Counter = Counter()
    distances: dict[str, list[float]] = {k: [] for k in CLASSES}
    frames = 0
    config = SynthConfig(drive_scenes=scenes)  # type: ignore[arg-type]
    for number in range(drives):
        drive = SynthDrive(seed, 200, config, drive=number)
        for index in range(0, 200, 25):  # a few frames per drive, 2.5 s apart
            time_s = index * FRAME_PERIOD_NS * 1e-9
            _in_view(drive.world.actors, time_s, drive.motion.pose(time_s).position[:2],
                     counts, distances)
            frames += 1
    return counts, distances, frames


def _shares(counts: Counter) -> dict[str, float]:
    total = sum(counts.values())
    return {k: counts[k] / total for k in CLASSES}


@pytest.fixture(scope="module")
def objects() -> tuple[Counter, dict, int]:
    return _object_statistics(seed=0, frames=150)


def test_object_scene_drives_match_the_object_set(objects: tuple[Counter, dict, int]) -> None:
    obj_counts, obj_dist, obj_frames = objects
    counts, dist, frames = _drive_statistics(seed=1000, drives=40, scenes="object")
    obj_shares, shares = _shares(obj_counts), _shares(counts)
    for kind in CLASSES:
        assert shares[kind] == pytest.approx(obj_shares[kind], abs=0.03), kind
    assert obj_shares["Pedestrian"] > 0.1 and obj_shares["Cyclist"] > 0.015  # all classes
    per_frame = sum(counts.values()) / frames
    obj_per_frame = sum(obj_counts.values()) / obj_frames
    assert per_frame == pytest.approx(obj_per_frame, rel=0.12)  # measured +4 % over 100 drives
    for kind in ("Car", "Pedestrian"):
        assert np.mean(dist[kind]) == pytest.approx(np.mean(obj_dist[kind]), rel=0.12), kind


def test_street_drives_are_short_of_pedestrians_and_cyclists(
        objects: tuple[Counter, dict, int]) -> None:
    """The default drives differ (what the experiment's old raw drives were): the check bites."""
    counts, _, _ = _drive_statistics(seed=1000, drives=40, scenes="street")
    obj_shares, shares = _shares(objects[0]), _shares(counts)
    assert shares["Pedestrian"] < obj_shares["Pedestrian"] - 0.05
    assert shares["Cyclist"] < obj_shares["Cyclist"] / 2


def test_street_drives_are_unchanged_by_the_option() -> None:
    """``street`` keeps every random draw: drives written before are reproduced exactly."""
    a = SynthDrive(7, 50, SynthConfig(), drive=1).world.actors
    b = SynthDrive(7, 50, SynthConfig(drive_scenes="street"), drive=1).world.actors
    c = SynthDrive(7, 50, SynthConfig(drive_scenes="object"), drive=1).world.actors
    assert [(x.kind, x.x_m, x.y_m) for x in a] == [(x.kind, x.x_m, x.y_m) for x in b]
    assert [(x.kind, x.x_m) for x in c] != [(x.kind, x.x_m) for x in a]


@pytest.mark.parametrize("raw_seed", [0, 1000])  # even the object set's own seed
def test_raw_drive_scenes_never_share_a_random_stream_with_object_frames(raw_seed: int) -> None:
    object_seed = 0
    held_out = {scene_key(object_seed, i) for i in range(MAX_OBJECT_FRAMES - 50,
                                                          MAX_OBJECT_FRAMES)}
    held_out |= {scene_key(object_seed, i) for i in range(2000)}
    for drive in range(3):
        keys = drive_scene_keys(raw_seed, drive, 300)
        assert len(keys) == 301 and not keys & held_out
    # the drive world is not a renamed object world: its actors differ from object frame 0's
    world = SynthDrive(raw_seed, 10, SynthConfig(), drive=0).world
    first = sample_world(frame_rng(object_seed, 0), SynthConfig())
    assert [a.x_m for a in world.actors[:3]] != [a.x_m for a in first.actors[:3]]


def test_object_frames_stop_below_the_drive_streams(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(DatasetError, match="object frame index 1000003"):
        generate_object_frame(0, MAX_OBJECT_FRAMES)
    with pytest.raises(DatasetError, match="at most 1000003 object frames"):
        write_object_dataset(tmp_path / "set", MAX_OBJECT_FRAMES + 1, seed=0)
