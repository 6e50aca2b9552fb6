"""Debug overlay: 3D camera boxes projected into the image they were detected in."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from monotakd_ros.geometry.boxes import BOX_EDGES, corners_cam
from monotakd_ros.geometry.projection import project_rect_to_image

# BGR colours by lower-case class name; others are drawn grey.
CLASS_COLORS_BGR: dict[str, tuple[int, int, int]] = {
    "car": (50, 205, 25),
    "pedestrian": (50, 75, 240),
    "cyclist": (255, 130, 50),
}
_NEAR_Z_M = 0.1  # edges are cut at this depth so boxes beside or behind the camera stay sane
_EDGE_START = np.array([start for start, _ in BOX_EDGES])
_EDGE_END = np.array([end for _, end in BOX_EDGES])
_FRONT_FACE = (0, 5, 1, 4)  # the two diagonals of the heading face mark the front


def draw_boxes_cam(image_bgr: np.ndarray, boxes_cam: np.ndarray, P: np.ndarray,
                   class_names: Sequence[str], scores: Sequence[float]) -> np.ndarray:
    """Copy of ``image_bgr`` (H, W, 3) with each (N, 7) camera box drawn as a wireframe."""
    canvas = np.ascontiguousarray(image_bgr, dtype=np.uint8).copy()
    if len(boxes_cam) == 0:
        return canvas
    corners = corners_cam(boxes_cam)  # (N, 8, 3)
    for index, box_corners in enumerate(corners):
        color = CLASS_COLORS_BGR.get(str(class_names[index]).lower(), (200, 200, 200))
        start, end = box_corners[_EDGE_START], box_corners[_EDGE_END]  # (12, 3) each
        diagonals = box_corners[list(_FRONT_FACE)].reshape(2, 2, 3)
        start = np.concatenate([start, diagonals[:, 0]])
        end = np.concatenate([end, diagonals[:, 1]])
        segments = _segments_in_front(start, end)
        if segments is None:
            continue
        uv_start, _ = project_rect_to_image(segments[0], P)
        uv_end, _ = project_rect_to_image(segments[1], P)
        for a, b in zip(uv_start, uv_end, strict=True):
            if np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and _on_canvas(a, b):
                cv2.line(canvas, _pixel(a), _pixel(b), color, 2, cv2.LINE_AA)
        label_uv, _ = project_rect_to_image(box_corners[4:5], P)
        if box_corners[4, 2] > _NEAR_Z_M and np.all(np.isfinite(label_uv)):
            text = f"{class_names[index]} {float(scores[index]):.2f}"
            cv2.putText(canvas, text, _pixel(label_uv[0]), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        color, 1, cv2.LINE_AA)
    return canvas


def _segments_in_front(start: np.ndarray,
                       end: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Edges (M, 3) -> their parts with z >= near, or None when nothing is in front."""
    keep = (start[:, 2] >= _NEAR_Z_M) | (end[:, 2] >= _NEAR_Z_M)
    if not np.any(keep):
        return None
    start, end = start[keep].copy(), end[keep].copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (_NEAR_Z_M - start[:, 2]) / (end[:, 2] - start[:, 2])
    cut_start = start[:, 2] < _NEAR_Z_M
    cut_end = end[:, 2] < _NEAR_Z_M
    start[cut_start] += t[cut_start, None] * (end[cut_start] - start[cut_start])
    end[cut_end] = start[cut_end] + t[cut_end, None] * (end[cut_end] - start[cut_end])
    return start, end


def _on_canvas(a: np.ndarray, b: np.ndarray, limit: float = 1e5) -> bool:
    """cv2 needs int32 coordinates: skip segments that project absurdly far away."""
    return bool(np.all(np.abs(a) < limit) and np.all(np.abs(b) < limit))


def _pixel(uv: np.ndarray) -> tuple[int, int]:
    return int(round(float(uv[0]))), int(round(float(uv[1])))
