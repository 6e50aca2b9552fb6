"""Labels of the synthetic world, checked on hand-placed actors against the KITTI geometry."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_geometry import points_in_boxes_lidar

from monotakd_ros.data.synth.actors import Actor
from monotakd_ros.data.synth.config import SynthConfig
from monotakd_ros.data.synth.generator import SynthFrame, render_frame
from monotakd_ros.data.synth.layout import sample_layout
from monotakd_ros.data.synth.primitives import PrimitiveBuilder
from monotakd_ros.data.synth.rig import RigPose
from monotakd_ros.data.synth.scene import World, sample_lighting
from monotakd_ros.data.synth.traffic import make_actor
from monotakd_ros.geometry.coord_frames import boxes_cam_to_lidar
from monotakd_ros.geometry.projection import boxes3d_to_boxes2d

POSE = RigPose(0.0, 0.0, 1.73, 0.0, np.deg2rad(1.5), 0.0)
CONFIG = SynthConfig()


def car(x: float, y: float, yaw: float = 0.0, kind: str = "Car", seed: int = 0) -> Actor:
    return make_actor(np.random.default_rng(seed), kind, x, y, yaw, 0.0)


def render(actors: list[Actor], pose: RigPose = POSE) -> SynthFrame:
    rng = np.random.default_rng(11)
    builder = PrimitiveBuilder()
    builder.add_ground_quad(np.array([[-50, -60, 0], [200, -60, 0], [200, 60, 0], [-50, 60, 0]],
                                     dtype=float), np.full(3, 100.0))
    world = World(layout=sample_layout(rng, -50, 200), static=builder.build(), actors=actors,
                  lighting=sample_lighting(rng), ego_speed_mps=0.0)
    return render_frame(world, pose, 0.0, CONFIG, rng)


def label_of(frame: SynthFrame, actor: int):
    (match,) = [a for a in frame.actor_labels if a.actor == actor]
    return match


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


@pytest.mark.parametrize("kind", ["Car", "Van", "Pedestrian", "Cyclist"])
def test_unoccluded_object_2d_box_matches_projected_3d_box(kind: str):
    frame = render([car(14.0, 1.0, 0.4, kind)])
    label = label_of(frame, 0)
    assert label.name == kind and label.occlusion == 0 and label.truncation == 0.0
    projected = boxes3d_to_boxes2d(label.box_cam[None], frame.calib.P2, CONFIG.image_hw)[0]
    # The parts fill their box, so the tight 2-D box sits inside the projected 3-D box.
    assert np.all(label.bbox[:2] >= projected[:2] - 1.0)
    assert np.all(label.bbox[2:] <= projected[2:] + 1.0)
    assert iou(label.bbox, projected) > (0.85 if kind in ("Car", "Van") else 0.6)
    # And the actor's pixels in the id buffer span the same box.
    rows, cols = np.nonzero(frame.id_buffer == 1)
    assert np.allclose([cols.min(), rows.min(), cols.max(), rows.max()], label.bbox, atol=2.0)


def test_car_at_ten_metres_gets_hundreds_of_returns_inside_its_box():
    frame = render([car(10.0, 0.0, 0.3)], RigPose(0, 0, 1.73, 0, 0, 0))
    box = frame.labels.boxes_cam.copy()
    inside = points_in_boxes_lidar(frame.points, boxes_cam_to_lidar(box, frame.calib))[0]
    own = frame.point_actor == 0
    assert own.sum() > 500 and inside[own].mean() > 0.6
    # The rest lie on the faces but range noise (2 cm) puts them just outside.
    box[:, 1] += 0.08
    box[:, 3:6] += 0.16
    grown = points_in_boxes_lidar(frame.points, boxes_cam_to_lidar(box, frame.calib))[0]
    assert grown[own].all()
    # Other returns inside the box are ground seen under the car, at the box's bottom.
    box_bottom = -1.73
    assert np.all(frame.points[inside & ~own, 2] < box_bottom + 0.1)


def test_object_hidden_from_both_sensors_gets_no_returns_and_no_label():
    level = RigPose(0, 0, 1.73, 0, 0, 0)
    hidden = car(17.0, 0.0, seed=4)
    frame = render([car(8.0, 0.0, kind="Van", seed=5), hidden], level)
    assert np.count_nonzero(frame.point_actor == 0) > 500
    assert np.count_nonzero(frame.point_actor == 1) == 0
    assert np.count_nonzero(frame.id_buffer == 2) == 0
    assert [a.actor for a in frame.actor_labels] == [0]
    alone = render([hidden], level)  # the same car in the open is seen and labelled
    assert np.count_nonzero(alone.point_actor == 0) > 200 and len(alone.labels) == 1


def test_object_behind_another_is_labelled_occluded():
    frame = render([car(12.0, 0.0), car(20.0, 0.4, seed=1)])
    near, far = label_of(frame, 0), label_of(frame, 1)
    assert near.occlusion == 0 and near.visible_fraction == pytest.approx(1.0)
    assert far.occlusion >= 2 and far.visible_fraction < 0.5
    # Everywhere the near car covers on its own, it is still what the camera sees.
    near_alone = render([car(12.0, 0.0)]).id_buffer == 1
    assert np.all(frame.id_buffer[near_alone] == 1)
    far_alone = render([car(12.0, 0.0), car(20.0, 0.4, seed=1)][1:]).id_buffer == 1
    hidden = far_alone & near_alone
    assert np.count_nonzero(hidden) > 0.5 * np.count_nonzero(far_alone)
    assert far.visible_fraction == pytest.approx(1 - hidden.sum() / far_alone.sum(), abs=0.02)


def test_object_cut_by_the_image_border_is_truncated():
    frame = render([car(7.0, -4.5, 0.1)])
    label = label_of(frame, 0)
    assert label.bbox[2] == CONFIG.image_hw[1] - 1
    unclipped = boxes3d_to_boxes2d(label.box_cam[None], frame.calib.P2, CONFIG.image_hw,
                                   clip=False)[0]
    clipped = boxes3d_to_boxes2d(label.box_cam[None], frame.calib.P2, CONFIG.image_hw)[0]
    area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
    assert label.truncation == pytest.approx(1 - area(clipped) / area(unclipped), abs=0.1)
    assert 0.1 < label.truncation < 0.9


def test_far_object_becomes_dont_care():
    frame = render([car(75.0, 0.0), car(30.0, -3.0, seed=2)])
    assert label_of(frame, 0).name == "DontCare"
    assert label_of(frame, 1).name == "Car"
    labels = frame.labels
    assert list(labels.names) == ["Car", "DontCare"]  # DontCare regions come last
    assert labels.boxes_cam[1, 2] == -1000.0 and labels.alpha[1] == -10.0


@pytest.mark.parametrize(("yaw", "ry"), [(0.0, -np.pi / 2), (np.pi, np.pi / 2),
                                         (np.pi / 2, np.pi), (-np.pi / 2, 0.0)])
def test_rotation_y_follows_the_kitti_convention(yaw: float, ry: float):
    level = RigPose(0.0, 0.0, 1.73, 0.0, 0.0, 0.0)
    frame = render([car(18.0, 0.0, yaw)], level)
    box = frame.labels.boxes_cam[0]
    # ry = 0 faces the camera's +x; an object driving away from the camera has ry = -pi/2.
    assert np.cos(box[6] - ry) == pytest.approx(1.0, abs=1e-3)
    alpha = frame.labels.alpha[0]
    assert np.cos(alpha - (box[6] - np.arctan2(box[0], box[2]))) == pytest.approx(1.0)


def test_label_bottom_sits_on_the_ground_plane():
    frame = render([car(15.0, 2.0, 0.2), car(25.0, -3.0, 2.0, seed=3)])
    a, b, c, d = frame.plane
    for x, y, z in frame.labels.boxes_cam[:, :3]:
        assert y == pytest.approx(-(a * x + c * z + d) / b, abs=1e-6)
