"""Parity checks of inference paths on the trained student: device vs CPU, fp16 vs fp32, ONNX.

Plain functions returning numbers and a verdict, so that pytest (``test/test_inference_gpu.py``)
and the bare-machine runner (``scripts/gpu_check.py``, no pytest there) run the same checks. The
frames come from the synthetic world (KITTI camera, 1242 x 375) with a seed the shipped student
never trained on, so the trained head scores real cars well above its threshold and a
near-threshold tie cannot decide a check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.data.predictions import observation_angle
from monotakd_ros.data.synth.generator import SynthFrame, generate_object_frame
from monotakd_ros.eval.kitti_eval import evaluate_kitti
from monotakd_ros.geometry.projection import boxes3d_to_boxes2d
from monotakd_ros.inference.predictor import CameraDetections, StudentPredictor

VAL_SEED = 7  # the shipped student trained on seed 0 (models/default_student/MODEL_CARD.md)
BOX_TOLERANCE_M = 1e-3  # fp32 on another device: same boxes up to float reassociation
AP_TOLERANCE = 0.5  # fp16 vs fp32, AP points (R40, percent)
SCORE_MARGIN = 0.02  # boxes this close to the threshold may appear on one side only


@dataclass(frozen=True)
class ValFrame:
    """One synthetic validation frame: image, projection and ground truth."""

    image_bgr: np.ndarray  # (375, 1242, 3) uint8
    P2: np.ndarray  # (3, 4)
    labels: KittiLabels


@dataclass(frozen=True)
class BoxAgreement:
    """How two detectors' boxes of the same frames agree after matching."""

    compared: int  # reference boxes scoring >= threshold + SCORE_MARGIN
    unmatched: int  # of those, boxes with no same-class counterpart
    max_box_error_m: float  # largest |Δ| of x, y, z, l, h, w over matched pairs
    max_yaw_error_rad: float
    max_score_error: float

    def within(self, tolerance_m: float) -> bool:
        """All compared boxes matched, within ``tolerance_m`` (and rad) and 1e-3 in score."""
        return (self.compared > 0 and self.unmatched == 0
                and self.max_box_error_m <= tolerance_m
                and self.max_yaw_error_rad <= tolerance_m and self.max_score_error <= 1e-3)


def synthetic_val_frames(count: int, seed: int = VAL_SEED) -> list[ValFrame]:
    """``count`` synthetic KITTI-camera frames with labels (about 0.2 s each to render)."""
    frames: list[SynthFrame] = [generate_object_frame(seed, index) for index in range(count)]
    return [ValFrame(image_bgr=f.image_bgr, P2=f.calib.P2, labels=f.labels) for f in frames]


def detections_as_labels(detections: CameraDetections, P2: np.ndarray,
                         image_hw: tuple[int, int]) -> KittiLabels:
    """KITTI result labels (2D boxes projected, alpha from the box) of one frame's detections."""
    boxes = detections.boxes_cam
    if len(boxes) == 0:
        return KittiLabels(score=np.zeros(0))
    return KittiLabels(
        names=np.array(detections.class_names, dtype="<U16"),
        truncated=np.zeros(len(boxes)),
        occluded=np.full(len(boxes), -1, dtype=np.int64),
        alpha=observation_angle(boxes),
        bbox=boxes3d_to_boxes2d(boxes, P2, image_hw, clip=True),
        boxes_cam=boxes,
        score=detections.scores,
    )


def car_ap_moderate(frames: Sequence[ValFrame],
                    detections: Sequence[CameraDetections]) -> dict[str, float]:
    """Car AP3D and APBEV, R40 Moderate (percent), of per-frame detections vs the labels."""
    results = [detections_as_labels(d, f.P2, f.image_bgr.shape[:2])
               for f, d in zip(frames, detections, strict=True)]
    evaluation = evaluate_kitti([f.labels for f in frames], results, classes=("Car",))
    return {f"ap{metric}": float(evaluation.average_precision("Car", metric, 40)[1])
            for metric in ("3d", "bev")}


def box_agreement(reference: Sequence[CameraDetections], other: Sequence[CameraDetections],
                  score_threshold: float) -> BoxAgreement:
    """Match each confident reference box to the nearest same-class box of ``other``."""
    compared = unmatched = 0
    box_error = yaw_error = score_error = 0.0
    for ref, oth in zip(reference, other, strict=True):
        for i in np.nonzero(ref.scores >= score_threshold + SCORE_MARGIN)[0]:
            compared += 1
            same = [j for j, name in enumerate(oth.class_names) if name == ref.class_names[i]]
            if not same:
                unmatched += 1
                continue
            deltas = np.abs(oth.boxes_cam[same, :6] - ref.boxes_cam[i, :6]).max(axis=1)
            best = int(np.argmin(deltas))
            j = same[best]
            box_error = max(box_error, float(deltas[best]))
            yaw = math.remainder(float(oth.boxes_cam[j, 6] - ref.boxes_cam[i, 6]), 2 * math.pi)
            yaw_error = max(yaw_error, abs(yaw))
            score_error = max(score_error, abs(float(oth.scores[j] - ref.scores[i])))
    return BoxAgreement(compared, unmatched, box_error, yaw_error, score_error)


def predict_all(predictor: StudentPredictor,
                frames: Sequence[ValFrame]) -> list[CameraDetections]:
    """The predictor's detections of every frame."""
    return [predictor.predict(f.image_bgr, f.P2) for f in frames]


def check_device_matches_cpu(checkpoint: Path, device: str, frames: Sequence[ValFrame],
                             score_threshold: float = 0.2) -> dict[str, float | int | bool]:
    """fp32 eager on ``device`` vs the CPU: matched boxes within ``BOX_TOLERANCE_M``."""
    def load(on: str) -> StudentPredictor:
        return StudentPredictor.from_checkpoint(checkpoint, device=on,
                                                score_threshold=score_threshold,
                                                network_path="eager")

    on_cpu = predict_all(load("cpu"), frames)
    on_device = predict_all(load(device), frames)
    agreement = box_agreement(on_cpu, on_device, score_threshold)
    return {**agreement.__dict__, "tolerance_m": BOX_TOLERANCE_M,
            "passed": agreement.within(BOX_TOLERANCE_M)}


def check_fast_paths(checkpoint: Path, device: str, frames: Sequence[ValFrame],
                     paths: Sequence[str]) -> dict[str, dict[str, object]]:
    """Each path vs fp32 eager on ``device``: fp32 paths box for box, half paths by AP.

    A half path passes when Car AP3D and APBEV (R40 Moderate) move by at most ``AP_TOLERANCE``
    points and fp32 finds cars at all; an fp32 path when its matched boxes agree within
    ``BOX_TOLERANCE_M``. ``used`` is the path after any fall-back.
    """
    def detections_of(path: str) -> tuple[str, list[CameraDetections]]:
        predictor = StudentPredictor.from_checkpoint(checkpoint, device=device,
                                                     score_threshold=0.05, network_path=path)
        return predictor.network_path, predict_all(predictor, frames)

    _, reference = detections_of("eager")
    reference_ap = car_ap_moderate(frames, reference)
    report: dict[str, dict[str, object]] = {}
    for path in paths:
        used, detections = detections_of(path)
        agreement = box_agreement(reference, detections, score_threshold=0.2)
        ap = car_ap_moderate(frames, detections)
        ap_change = max(abs(ap[k] - reference_ap[k]) for k in ap)
        if "half" in used:
            passed = ap_change <= AP_TOLERANCE and reference_ap["apbev"] > 0.0
        else:
            passed = agreement.within(BOX_TOLERANCE_M)
        report[path] = {"used": used, **agreement.__dict__, "fp32_ap": reference_ap,
                        "ap": ap, "max_ap_change": ap_change, "passed": passed}
    return report


def check_half_keeps_ap(checkpoint: Path, device: str,
                        frames: Sequence[ValFrame]) -> dict[str, object]:
    """fp16 weights vs fp32 on ``device``: Car AP within ``AP_TOLERANCE`` points."""
    return check_fast_paths(checkpoint, device, frames, ["half"])["half"]


def check_onnx_matches_torch(checkpoint: Path, onnx_path: Path, frames: Sequence[ValFrame],
                             score_threshold: float = 0.2) -> dict[str, float | int | bool]:
    """ONNX Runtime (CPU) vs PyTorch (CPU): decoded boxes within ``BOX_TOLERANCE_M``."""
    from monotakd_ros.inference.onnx_export import onnx_head_output, onnx_session

    session = onnx_session(onnx_path)
    torch_predictor = StudentPredictor.from_checkpoint(checkpoint, device="cpu",
                                                       score_threshold=score_threshold)
    onnx_predictor = StudentPredictor.from_checkpoint(checkpoint, device="cpu",
                                                      score_threshold=score_threshold)
    network: Callable = lambda images, P2: onnx_head_output(  # noqa: E731
        session, images.numpy(), P2.numpy())
    onnx_predictor.set_network(network)
    agreement = box_agreement(predict_all(torch_predictor, frames),
                              predict_all(onnx_predictor, frames), score_threshold)
    return {**agreement.__dict__, "tolerance_m": BOX_TOLERANCE_M,
            "passed": agreement.within(BOX_TOLERANCE_M)}
