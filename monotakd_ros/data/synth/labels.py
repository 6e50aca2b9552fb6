"""KITTI labels computed from the rendered geometry of each actor.

* 2D box: bounds of the projection of the actor's parts (near-plane clipped), clipped to the
  image. Truncation is the share of that projected box outside the image.
* Occlusion: the actor's pixels in the id buffer against its silhouette drawn alone (both inside
  the image), mapped to KITTI's 0 (visible) .. 3 (hidden) levels.
* 3D box: the actor's labelled box; its bottom centre and heading are carried into the rectified
  camera frame (``ry`` from the heading, ``alpha = ry - atan2(x, z)``).
* Objects that are too far or too small on screen become DontCare regions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monotakd_ros.data.kitti.labels import KittiLabels
from monotakd_ros.data.synth.actors import Actor
from monotakd_ros.data.synth.projection import NEAR_M, CameraView

# Occluded share of the silhouette at which KITTI's levels 1, 2 and 3 begin.
OCCLUSION_STEPS = (0.1, 0.5, 0.85)
MIN_LIDAR_POINTS = 5  # a camera-hidden object needs this many returns to be labelled
_EDGES = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4],
                   [0, 4], [1, 5], [2, 6], [3, 7]])


@dataclass
class ActorLabel:
    """What the camera sees of one actor in one frame."""

    actor: int  # index into the world's actors
    name: str  # KITTI class, or "DontCare"
    box_cam: np.ndarray  # (7,) x y z l h w ry, bottom centre in the rectified frame
    bbox: np.ndarray  # (4,) left top right bottom, clipped to the image
    truncation: float  # 0..1
    occlusion: int  # 0..3
    visible_fraction: float  # share of the in-image silhouette not hidden by others


def wrap_angle(angle: float) -> float:
    """Angle wrapped into [-pi, pi)."""
    return float((angle + np.pi) % (2.0 * np.pi) - np.pi)


def actor_box_cam(actor: Actor, time_s: float, T_rect_from_W: np.ndarray) -> np.ndarray:
    """(7,) KITTI camera box of ``actor`` at ``time_s``: bottom centre, l h w, ry."""
    x, y, yaw = actor.pose_at(time_s)
    R, t = T_rect_from_W[:3, :3], T_rect_from_W[:3, 3]
    bottom = R @ np.array([x, y, actor.z_m]) + t
    heading = R @ np.array([np.cos(yaw), np.sin(yaw), 0.0])
    ry = wrap_angle(np.arctan2(-heading[2], heading[0]))
    return np.array([*bottom, actor.length_m, actor.height_m, actor.width_m, ry])


def _group_extent_px(view: CameraView, group: int) -> np.ndarray | None:
    """(4,) u0 v0 u1 v1 of a group's projected parts, or None when it is behind the camera."""
    points = []
    for b in view.group_boxes[group]:
        corners = view.corners_rect[b]
        front = corners[:, 2] >= NEAR_M
        if front.all():
            points.append(view.corners_px[b])
            continue
        a, c = corners[_EDGES[:, 0]], corners[_EDGES[:, 1]]
        crossing = (a[:, 2] >= NEAR_M) != (c[:, 2] >= NEAR_M)
        s = (NEAR_M - a[crossing, 2]) / (c[crossing, 2] - a[crossing, 2])
        cut = a[crossing] + s[:, None] * (c[crossing] - a[crossing])
        kept = np.concatenate([corners[front], cut])
        if len(kept):
            points.append(view.project(kept))
    for s in view.group_spheres[group]:
        if view.sph_rect[s, 2] - view.prims.sph_radius[s] >= NEAR_M:
            r = view.sph_radius_px[s]
            points.append(view.sph_px[s] + np.array([[-r, -r], [r, r]]))
    if not points:
        return None
    uv = np.concatenate(points)
    return np.array([uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()])


def _silhouette_pixels(view: CameraView, group: int, mask: np.ndarray,
                       box: tuple[int, int, int, int]) -> int:
    """Pixels the group covers when drawn alone, inside ``box`` (mask is zero on return)."""
    for b in view.group_boxes[group]:
        view.fill_box(mask, b, 1)
    for s in view.group_spheres[group]:
        view.fill_sphere(mask, s, 1)
    u0, v0, u1, v1 = box
    count = int(np.count_nonzero(mask[v0:v1, u0:u1]))
    # The fills stay inside the box (it bounds the same projected points); clear with a margin.
    mask[max(v0 - 2, 0):v1 + 2, max(u0 - 2, 0):u1 + 2] = 0
    return count


def _occlusion_level(occluded_share: float) -> int:
    return int(np.searchsorted(OCCLUSION_STEPS, occluded_share, side="right"))


def label_actors(view: CameraView, actors: list[Actor], time_s: float, ids: np.ndarray,
                 lidar_points: np.ndarray, T_rect_from_W: np.ndarray, max_distance_m: float,
                 min_height_px: float) -> list[ActorLabel]:
    """One ``ActorLabel`` per actor in the image that the camera or the LiDAR sees.

    ``lidar_points`` (num_actors,) counts the sweep's returns on each actor: an object hidden
    from the camera is still labelled (occlusion 3) when the LiDAR sees it, as annotators
    working on both sensors would.
    """
    h, w = view.image_hw
    prims = view.prims
    mask = np.zeros((h, w), dtype=np.uint8)
    labels = []
    for group in np.flatnonzero(prims.group_actor >= 0):
        index = int(prims.group_actor[group])
        extent = _group_extent_px(view, group)
        if extent is None:
            continue
        u0, v0, u1, v1 = extent
        full_area = max((u1 - u0) * (v1 - v0), 1e-9)
        bbox = np.array([np.clip(u0, 0, w - 1), np.clip(v0, 0, h - 1), np.clip(u1, 0, w - 1),
                         np.clip(v1, 0, h - 1)])
        in_area = (bbox[2] - bbox[0]) * (bbox[3] - bbox[1])
        if in_area <= 0:
            continue
        pixel_box = (int(np.floor(bbox[0])), int(np.floor(bbox[1])),
                     int(np.ceil(bbox[2])) + 1, int(np.ceil(bbox[3])) + 1)
        silhouette = _silhouette_pixels(view, group, mask, pixel_box)
        if silhouette == 0:
            continue
        pu0, pv0, pu1, pv1 = pixel_box
        visible = int(np.count_nonzero(ids[pv0:pv1, pu0:pu1] == index + 1))
        if visible == 0 and lidar_points[index] < MIN_LIDAR_POINTS:
            continue
        visible_fraction = min(visible / silhouette, 1.0)
        box_cam = actor_box_cam(actors[index], time_s, T_rect_from_W)
        name = actors[index].kind
        too_far = float(np.hypot(box_cam[0], box_cam[2])) > max_distance_m
        if too_far or bbox[3] - bbox[1] < min_height_px:
            if visible == 0:
                continue
            name = "DontCare"
        labels.append(ActorLabel(
            actor=index, name=name, box_cam=box_cam, bbox=bbox,
            truncation=float(np.clip(1.0 - in_area / full_area, 0.0, 1.0)),
            occlusion=_occlusion_level(1.0 - visible_fraction),
            visible_fraction=visible_fraction))
    return labels


def kitti_labels(actor_labels: list[ActorLabel]) -> KittiLabels:
    """The label_2 view: objects first, then DontCare regions with KITTI's filler values."""
    ordered = [a for a in actor_labels if a.name != "DontCare"] + [
        a for a in actor_labels if a.name == "DontCare"]
    n = len(ordered)
    labels = KittiLabels(
        names=np.array([a.name for a in ordered], dtype="<U16"),
        truncated=np.zeros(n), occluded=np.zeros(n, dtype=np.int64), alpha=np.zeros(n),
        bbox=np.zeros((n, 4)), boxes_cam=np.zeros((n, 7)))
    for i, a in enumerate(ordered):
        labels.bbox[i] = a.bbox
        if a.name == "DontCare":
            labels.truncated[i], labels.occluded[i], labels.alpha[i] = -1.0, -1, -10.0
            labels.boxes_cam[i] = [-1000.0, -1000.0, -1000.0, -1.0, -1.0, -1.0, -10.0]
            continue
        labels.truncated[i] = a.truncation
        labels.occluded[i] = a.occlusion
        labels.boxes_cam[i] = a.box_cam
        labels.alpha[i] = wrap_angle(a.box_cam[6] - np.arctan2(a.box_cam[0], a.box_cam[2]))
    return labels
