"""Pictures of an evaluation: PR curves, a bird's-eye view, and boxes drawn on camera images.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot), so importing this module does
not change the process-wide backend and works without a display.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.errors import EvaluationError
from monotakd_ros.eval.average_precision import NUM_SAMPLE_POINTS
from monotakd_ros.eval.kitti_eval import KittiEvalResult
from monotakd_ros.geometry.boxes import BOX_EDGES, corners_cam
from monotakd_ros.geometry.projection import project_rect_to_image

_DIFFICULTY_NAMES = ("Easy", "Moderate", "Hard")
_PR_METRICS = ("3d", "bev", "bbox")
_GT_BGR = (60, 200, 60)
_DT_BGR = (40, 40, 230)
_NEAR_Z_M = 0.1  # corners closer than this to the camera plane are not drawn


def _save(figure: Figure, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        FigureCanvasAgg(figure).print_png(str(path))
    except OSError as err:
        raise EvaluationError(f"{path}: cannot write the figure ({err})") from err


def plot_pr_curves(result: KittiEvalResult, path: Path) -> None:
    """One panel per class and metric (3D, BEV, 2D): precision at the 41 recall positions."""
    recall_positions = np.linspace(0.0, 1.0, NUM_SAMPLE_POINTS)
    rows = max(len(result.classes), 1)
    figure = Figure(figsize=(4.0 * len(_PR_METRICS), 3.2 * rows))
    for row, cls in enumerate(result.classes):
        for column, metric in enumerate(_PR_METRICS):
            axes = figure.add_subplot(rows, len(_PR_METRICS), row * len(_PR_METRICS) + column + 1)
            ap = result.average_precision(cls, metric, 40)
            for level, name in enumerate(_DIFFICULTY_NAMES):
                axes.plot(recall_positions, result.precision[cls][metric][level],
                          label=f"{name} (AP40 {ap[level]:.1f})")
            axes.set_title(f"{cls} {metric} @IoU {result.min_overlap[cls]:.2f}")
            axes.set_xlim(0.0, 1.0)
            axes.set_ylim(0.0, 1.05)
            axes.set_xlabel("recall (devkit sample position)")
            axes.set_ylabel("precision")
            axes.grid(alpha=0.3)
            axes.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    _save(figure, path)


def _footprints(boxes_cam: np.ndarray) -> np.ndarray:
    """(N, 4, 2) ground-plane (x, z) corners of camera boxes."""
    return corners_cam(boxes_cam)[:, :4][:, :, [0, 2]]


def plot_bev(ground_truth: KittiLabels, detections: KittiLabels, path: Path, title: str) -> None:
    """Top view (camera x right, z forward) of one frame: ground truth and scored detections."""
    figure = Figure(figsize=(6.0, 7.0))
    axes = figure.add_subplot(1, 1, 1)
    for footprint in _footprints(ground_truth.boxes_cam):
        axes.fill(footprint[:, 0], footprint[:, 1], facecolor="none", edgecolor="tab:green",
                  linewidth=2.0)
    scores = detections.score if detections.score is not None else np.ones(len(detections))
    for footprint, score, name in zip(_footprints(detections.boxes_cam), scores,
                                      detections.names, strict=True):
        axes.fill(footprint[:, 0], footprint[:, 1], facecolor="none", edgecolor="tab:red",
                  linewidth=1.2, linestyle="--")
        axes.annotate(f"{name} {score:.2f}", footprint.mean(axis=0), fontsize=7,
                      color="tab:red")
    axes.plot([0.0], [0.0], marker="^", color="black")
    axes.plot([], [], color="tab:green", label=f"ground truth ({len(ground_truth)})")
    axes.plot([], [], color="tab:red", linestyle="--", label=f"detections ({len(detections)})")
    axes.set_aspect("equal", adjustable="datalim")
    axes.set_xlabel("camera x (m, right)")
    axes.set_ylabel("camera z (m, forward)")
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right", fontsize=8)
    _save(figure, path)


def busiest_frame(frames: Sequence[KittiLabels]) -> int:
    """Index of the frame with the most ground truth objects (the first on ties)."""
    if not frames:
        raise EvaluationError("no frames to choose a bird's-eye view from")
    return int(np.argmax([len(labels) for labels in frames]))


def _draw_boxes(image: np.ndarray, boxes_cam: np.ndarray, P: np.ndarray,
                color: tuple[int, int, int], thickness: int) -> None:
    for corners in corners_cam(boxes_cam):
        uv, depth_m = project_rect_to_image(corners, P)
        for start, end in BOX_EDGES:
            if depth_m[start] > _NEAR_Z_M and depth_m[end] > _NEAR_Z_M:
                cv2.line(image, tuple(int(round(v)) for v in uv[start]),
                         tuple(int(round(v)) for v in uv[end]), color, thickness, cv2.LINE_AA)


def draw_overlay(image_bgr: np.ndarray, ground_truth: KittiLabels, detections: KittiLabels,
                 P: np.ndarray) -> np.ndarray:
    """A copy of the image with ground truth (green) and detections (red, scored) drawn on."""
    canvas = np.ascontiguousarray(image_bgr).copy()
    _draw_boxes(canvas, ground_truth.boxes_cam, P, _GT_BGR, 2)
    _draw_boxes(canvas, detections.boxes_cam, P, _DT_BGR, 1)
    scores = detections.score if detections.score is not None else np.ones(len(detections))
    for box, score, name in zip(detections.bbox, scores, detections.names, strict=True):
        origin = (int(box[0]), max(int(box[1]) - 3, 10))
        cv2.putText(canvas, f"{name} {score:.2f}", origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    _DT_BGR, 1, cv2.LINE_AA)
    return canvas


def write_overlay(path: Path, image_bgr: np.ndarray) -> None:
    """Write an overlay image (PNG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image_bgr):
        raise EvaluationError(f"{path}: cannot write the overlay image")
