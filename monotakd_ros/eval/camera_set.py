"""Multi-camera test set: one synthetic scene set seen through several cameras, and its scores.

Every frame's world and rig pose are drawn once (as ``generate_object_frame`` does) and rendered
through each camera from the same optical centre, so the labels are the same 3D boxes in every
camera (each camera keeps the objects it sees). A detector is then scored per camera with the
KITTI protocol and with the depth error of the cars it finds.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.data.synth.config import SynthConfig
from monotakd_ros.data.synth.generator import (
    SynthFrame,
    frame_rng,
    render_frame,
    sample_rig_pose,
)
from monotakd_ros.data.synth.rig import KITTI_IMAGE_HW
from monotakd_ros.data.synth.scene import sample_world
from monotakd_ros.eval.kitti_eval import evaluate_kitti
from monotakd_ros.eval.overlaps import image_iou_pairs
from monotakd_ros.geometry.projection import boxes3d_to_boxes2d
from monotakd_ros.geometry.rotations import wrap_angle

# image, P -> (boxes_cam (K, 7), scores (K,), class names (K,))
Detector = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, Sequence[str]]]

MATCH_IOU_2D = 0.5  # a detection and a ground-truth car are "the same car" above this image IoU


@dataclass(frozen=True)
class TestCamera:
    """A named camera: image size and intrinsics (None: KITTI's P2)."""

    name: str
    image_hw: tuple[int, int]
    intrinsics: tuple[float, float, float, float] | None = None  # (fx, fy, cx, cy) px

    def synth_config(self) -> SynthConfig:
        """The generator configuration rendering through this camera."""
        return SynthConfig(image_hw=self.image_hw, intrinsics=self.intrinsics)


TEST_CAMERAS = (
    TestCamera("kitti 1242x375 fx721.5", KITTI_IMAGE_HW),
    TestCamera("640x480 fx500", (480, 640), (500.0, 500.0, 320.0, 240.0)),
    TestCamera("1280x720 fx1000", (720, 1280), (1000.0, 1000.0, 640.0, 360.0)),
    TestCamera("1920x1080 fx1400", (1080, 1920), (1400.0, 1400.0, 960.0, 540.0)),
)

# KITTI's image size and principal point with a shorter and a longer focal length: cameras near,
# but not equal to, the training camera (the intrinsics augmentation measurement).
NEAR_KITTI_CAMERAS = (
    TestCamera("kitti 1242x375 fx721.5", KITTI_IMAGE_HW),
    TestCamera("1242x375 fx620", KITTI_IMAGE_HW, (620.0, 620.0, 609.5593, 172.854)),
    TestCamera("1242x375 fx830", KITTI_IMAGE_HW, (830.0, 830.0, 609.5593, 172.854)),
)
CAMERA_SETS = {"four": TEST_CAMERAS, "near_kitti": NEAR_KITTI_CAMERAS}


def render_through_cameras(seed: int, index: int,
                           cameras: Sequence[TestCamera]) -> list[SynthFrame]:
    """Frame ``index`` of object set ``seed`` rendered once per camera (same world, same pose)."""
    rng = frame_rng(seed, index)
    base = SynthConfig()
    world = sample_world(rng, base)
    pose = sample_rig_pose(rng, base)
    # Each camera continues from the same random state: identical sensor noise draws.
    return [render_frame(world, pose, 0.0, camera.synth_config(), copy.deepcopy(rng))
            for camera in cameras]


@dataclass(frozen=True)
class CameraScore:
    """How a detector did on one camera's frames."""

    name: str
    frames: int
    detections: int
    car_ap3d_r40: np.ndarray  # (3,) Easy/Moderate/Hard, percent
    car_apbev_r40: np.ndarray  # (3,)
    matched_cars: int
    gt_cars: int
    median_abs_rel_depth_error: float  # median |z_det - z_gt| / z_gt over matched cars
    median_rel_depth_error: float  # signed: > 0 means too far


def detection_labels(boxes_cam: np.ndarray, scores: np.ndarray, names: Sequence[str],
                     P: np.ndarray, image_hw: tuple[int, int]) -> KittiLabels:
    """KITTI result labels of camera-frame detections; 2D boxes are their projections."""
    if len(boxes_cam) == 0:
        return KittiLabels(score=np.zeros(0))
    boxes_cam = np.asarray(boxes_cam, dtype=np.float64).reshape(-1, 7)
    return KittiLabels(
        names=np.array([_kitti_name(n) for n in names], dtype="<U16"),
        truncated=np.zeros(len(boxes_cam)),
        occluded=np.full(len(boxes_cam), -1, dtype=np.int64),
        alpha=wrap_angle(boxes_cam[:, 6] - np.arctan2(boxes_cam[:, 0], boxes_cam[:, 2])),
        bbox=boxes3d_to_boxes2d(boxes_cam, P, image_hw, clip=True),
        boxes_cam=boxes_cam,
        score=np.asarray(scores, dtype=np.float64).copy(),
    )


def _kitti_name(name: str) -> str:
    return {"car": "Car", "pedestrian": "Pedestrian", "cyclist": "Cyclist"}.get(name.lower(),
                                                                                 name)


def matched_car_depths(gt: KittiLabels, dt: KittiLabels) -> list[tuple[float, float]]:
    """(z_gt, z_det) of ground-truth cars matched greedily (by score) at 2D IoU >= 0.5."""
    gt_index = np.flatnonzero(gt.names == "Car")
    dt_index = np.flatnonzero(dt.names == "Car")
    if len(gt_index) == 0 or len(dt_index) == 0:
        return []
    dt_index = dt_index[np.argsort(-dt.score[dt_index], kind="stable")]
    free = np.ones(len(gt_index), dtype=bool)
    pairs = []
    for d in dt_index:
        ious = image_iou_pairs(np.repeat(dt.bbox[d][None], len(gt_index), axis=0),
                               gt.bbox[gt_index])
        ious[~free] = 0.0
        best = int(np.argmax(ious))
        if ious[best] >= MATCH_IOU_2D:
            free[best] = False
            pairs.append((float(gt.boxes_cam[gt_index[best], 2]), float(dt.boxes_cam[d, 2])))
    return pairs


class CameraTally:
    """Ground truth, detections and matched car depths of one camera, frame by frame."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.gts: list[KittiLabels] = []
        self.dts: list[KittiLabels] = []
        self.depths: list[tuple[float, float]] = []

    def add(self, frame: SynthFrame, detect: Detector) -> None:
        """Run ``detect`` on the frame (image, P2) and keep its labels and detections."""
        boxes_cam, scores, names = detect(frame.image_bgr, frame.calib.P2)
        dt = detection_labels(boxes_cam, scores, names, frame.calib.P2,
                              frame.image_bgr.shape[:2])
        self.gts.append(frame.labels)
        self.dts.append(dt)
        self.depths.extend(matched_car_depths(frame.labels, dt))

    def score(self) -> CameraScore:
        """KITTI AP (Car, R40) and depth errors of everything added."""
        result = evaluate_kitti(self.gts, self.dts, classes=("Car",))
        z = np.array(self.depths, dtype=np.float64).reshape(-1, 2)
        rel = (z[:, 1] - z[:, 0]) / z[:, 0] if len(z) else np.full(1, np.nan)
        return CameraScore(
            name=self.name, frames=len(self.gts), detections=sum(len(d) for d in self.dts),
            car_ap3d_r40=result.average_precision("Car", "3d"),
            car_apbev_r40=result.average_precision("Car", "bev"),
            matched_cars=len(z), gt_cars=int(sum(np.sum(g.names == "Car") for g in self.gts)),
            median_abs_rel_depth_error=float(np.median(np.abs(rel))),
            median_rel_depth_error=float(np.median(rel)),
        )


def score_cameras(seed: int, indices: Sequence[int], cameras: Sequence[TestCamera],
                  detect: Detector) -> list[CameraScore]:
    """One CameraScore per camera on the frames ``indices`` of object set ``seed``."""
    tallies = [CameraTally(camera.name) for camera in cameras]
    for index in indices:
        for tally, frame in zip(tallies, render_through_cameras(seed, index, cameras),
                                strict=True):
            tally.add(frame, detect)
    return [tally.score() for tally in tallies]


def markdown_table(scores: Sequence[CameraScore]) -> str:
    """Per-camera table: AP3D/APBEV R40 (Car), matched cars and depth error."""
    lines = ["| camera | frames | detections | Car AP3D R40 E / M / H | Car APBEV R40 E / M / H "
             "| matched cars / GT cars | median abs rel depth error | median rel depth error |",
             "|---|---|---|---|---|---|---|---|"]
    for s in scores:
        ap3d = " / ".join(f"{v:.2f}" for v in s.car_ap3d_r40)
        apbev = " / ".join(f"{v:.2f}" for v in s.car_apbev_r40)
        lines.append(f"| {s.name} | {s.frames} | {s.detections} | {ap3d} | {apbev} | "
                     f"{s.matched_cars} / {s.gt_cars} | "
                     f"{100 * s.median_abs_rel_depth_error:.1f} % | "
                     f"{100 * s.median_rel_depth_error:+.1f} % |")
    return "\n".join(lines)
