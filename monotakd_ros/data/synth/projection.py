"""The scene as the camera sees it: every primitive projected once, drawn group by group.

``CameraView`` transforms and projects all box corners, wheel rims, spheres and quads of a frame
in a few vectorised steps; drawing a group then only walks its few visible faces. Faces that
cross the near plane are clipped in 3-D before projection.
"""

from __future__ import annotations

import cv2
import numpy as np

from monotakd_ros.data.synth.primitives import (
    FACE_CORNERS,
    SHAPE_BOX,
    SHAPE_RING,
    Primitives,
    apply_3x3,
    facade_windows,
    wheel_vertices,
)
from monotakd_ros.data.synth.rig import camera_center_rect
from monotakd_ros.geometry.calib import CameraCalib

NEAR_M = 0.2
# The faces in each 6-bit visibility mask, looked up instead of searched per box.
_FACE_SETS = [tuple(f for f in range(6) if mask >> f & 1) for mask in range(64)]
SHIFT = 3  # sub-pixel bits of the cv2 polygon fills
_SCALE = float(1 << SHIFT)


def clip_polygon_near(poly_rect: np.ndarray, near: float = NEAR_M) -> np.ndarray:
    """(K, 3) convex polygon in the rectified frame clipped to z >= near (Sutherland-Hodgman)."""
    out = []
    count = len(poly_rect)
    for i in range(count):
        a, b = poly_rect[i], poly_rect[(i + 1) % count]
        a_in, b_in = a[2] >= near, b[2] >= near
        if a_in:
            out.append(a)
        if a_in != b_in:
            t = (near - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.asarray(out).reshape(-1, 3)


class CameraView:
    """Projected primitives of one frame, ready to be drawn into images or masks."""

    def __init__(self, prims: Primitives, calib: CameraCalib, T_rect_from_W: np.ndarray,
                 image_hw: tuple[int, int]) -> None:
        self.prims, self.calib, self.image_hw = prims, calib, image_hw
        self.R = T_rect_from_W[:3, :3]
        self.t = T_rect_from_W[:3, 3]
        centre_rect = camera_center_rect(calib)
        self.camera_world = self.R.T @ (centre_rect - self.t)  # (3,) camera centre, world
        self.corners_rect = self.to_rect(prims.box_corners())  # (N, 8, 3)
        self.corners_px = self.project(self.corners_rect)  # (N, 8, 2)
        self.box_clipped = (self.corners_rect[..., 2] < NEAR_M).any(axis=1)
        # Fixed-point corners for cv2 (meaningless for clipped boxes, which are redone).
        self.corners_fixed = self.fixed_px(self.corners_rect)
        extent = self.corners_px.max(axis=1) - self.corners_px.min(axis=1)  # (N, 2)
        size_px = np.where(self.box_clipped, np.inf, extent.max(axis=1))
        # Parts smaller than a pixel are skipped; so are wheels under 3 px (the body hides them).
        min_px = np.where(prims.box_shape == SHAPE_BOX, 0.7, 3.0)
        self.box_drawn = self._boxes_in_view() & (size_px >= min_px)
        self.box_detailed = self.box_drawn & (size_px >= 8.0)
        self.facade_order = np.argsort(prims.facade_box, kind="stable")
        self.facade_start = np.searchsorted(prims.facade_box[self.facade_order],
                                            np.arange(prims.num_boxes + 1))
        self.face_visible = self._front_faces()  # (N, 6)
        self.face_mask = (self.face_visible * (1 << np.arange(6))).sum(axis=1).tolist()
        self._prepare_windows()
        wheels = np.flatnonzero(prims.box_shape != SHAPE_BOX)
        self.wheel_row = np.full(prims.num_boxes, -1)
        self.wheel_row[wheels] = np.arange(len(wheels))
        self._prepare_wheels(wheels)
        self.sph_rect = self.to_rect(prims.sph_center)  # (M, 3)
        self.sph_px = self.project(self.sph_rect)
        self.sph_radius_px = calib.P2[0, 0] * prims.sph_radius / np.maximum(
            self.sph_rect[:, 2], 1e-6)
        self.decal_rect = self.to_rect(prims.decal_quad)  # (K, 4, 3)
        self.decal_clipped = (self.decal_rect[..., 2] < NEAR_M).any(axis=1)
        self.decal_fixed = self.fixed_px(self.decal_rect)
        order = np.argsort(prims.decal_box, kind="stable")
        self.decal_order = order
        self.decal_start = np.searchsorted(prims.decal_box[order], np.arange(prims.num_boxes + 1))
        has_decals = np.diff(self.decal_start) > 0
        has_windows = np.zeros(prims.num_boxes, dtype=bool)
        has_windows[prims.facade_box[np.diff(self.window_start) > 0]] = True
        self.box_has_extras = self.box_detailed & (has_decals | has_windows)
        self.group_boxes, self.group_spheres = self._group_members()

    def _prepare_wheels(self, wheels: np.ndarray) -> None:
        """Fixed-point rims, hubs and tyre hulls' inputs of every wheel box."""
        rims_rect = self.to_rect(wheel_vertices(self.prims, wheels))  # (K, 2, 8, 3)
        self.wheel_ok = (rims_rect[..., 2] >= NEAR_M).all(axis=(1, 2))
        depth = rims_rect[..., 2].mean(axis=2)  # (K, 2)
        self.wheel_near = (depth[:, 1] < depth[:, 0]).astype(np.int64)
        rims_px = np.where(self.wheel_ok[:, None, None, None], self.project(rims_rect), 0.0)
        near_rim = rims_px[np.arange(len(wheels)), self.wheel_near]  # (K, 8, 2)
        centre = near_rim.mean(axis=1, keepdims=True)
        self.wheel_rims = np.round(rims_px * _SCALE).astype(np.int32)  # (K, 2, 8, 2)
        self.wheel_hub = np.round((centre + 0.55 * (near_rim - centre)) * _SCALE).astype(
            np.int32)
        near_depth = depth[np.arange(len(wheels)), self.wheel_near]
        self.wheel_thick = np.maximum(1, np.round(
            self.calib.P2[0, 0] * 0.05 / np.maximum(near_depth, NEAR_M))).astype(int)

    def _prepare_windows(self) -> None:
        """Window quads of every facade the camera sees in detail, projected in one go."""
        prims = self.prims
        box, face = prims.facade_box, prims.facade_face
        seen = np.flatnonzero(self.box_detailed[box] & self.face_visible[box, face])
        quads, owner = facade_windows(prims, seen)
        self.window_rect = self.to_rect(quads)  # (K, 4, 3)
        self.window_clipped = (self.window_rect[..., 2] < NEAR_M).any(axis=1)
        self.window_fixed = self.fixed_px(self.window_rect)
        self.window_start = np.searchsorted(owner, np.arange(len(box) + 1))

    def to_rect(self, points_world: np.ndarray) -> np.ndarray:
        """(..., 3) world points -> (..., 3) rectified camera points."""
        return apply_3x3(self.R, points_world) + self.t

    def fixed_px(self, points_rect: np.ndarray) -> np.ndarray:
        """(..., 3) rectified points -> (..., 2) int32 fixed-point pixels (0 behind the camera)."""
        in_front = points_rect[..., 2:3] >= NEAR_M
        px = np.where(in_front, self.project(points_rect), 0.0)
        return np.round(px * _SCALE).astype(np.int32)

    def to_world(self, points_rect: np.ndarray) -> np.ndarray:
        """(..., 3) rectified camera points -> (..., 3) world points."""
        return apply_3x3(self.R.T, points_rect - self.t)

    def project(self, points_rect: np.ndarray) -> np.ndarray:
        """(..., 3) rectified points -> (..., 2) pixels (meaningless where z < NEAR_M)."""
        P = self.calib.P2
        uvw = apply_3x3(P[:, :3], points_rect) + P[:, 3]
        depth = np.maximum(uvw[..., 2:3], 1e-6)
        return uvw[..., :2] / depth

    def _boxes_in_view(self) -> np.ndarray:
        """(N,) whether any part of a box may be inside the image."""
        h, w = self.image_hw
        z = self.corners_rect[..., 2]
        front = z > NEAR_M
        any_front = front.any(axis=1)
        all_front = front.all(axis=1)
        u, v = self.corners_px[..., 0], self.corners_px[..., 1]
        outside = (u.max(axis=1) < 0) | (u.min(axis=1) > w) | (v.max(axis=1) < 0) | (
            v.min(axis=1) > h)
        return any_front & ~(all_front & outside)

    def _front_faces(self) -> np.ndarray:
        """(N, 6) whether each face looks towards the camera."""
        normals = self.prims.face_normals()  # (N, 6, 3) world
        # The half extent along each face's normal: x, x, y, y, z, z.
        offsets = self.prims.box_half[:, [0, 0, 1, 1, 2, 2]]  # (N, 6)
        centres = self.prims.box_center[:, None, :] + normals * offsets[..., None]
        towards = np.einsum("nfi,nfi->nf", normals, self.camera_world[None, None] - centres)
        return towards > 1e-9

    def _group_members(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per group, its boxes and spheres in drawing order (order, then far to near)."""
        prims = self.prims
        dist_box = np.linalg.norm(prims.box_center - self.camera_world, axis=1)
        dist_sph = np.linalg.norm(prims.sph_center - self.camera_world, axis=1)
        box_rank = np.lexsort((-dist_box, prims.box_order, prims.box_group))
        sph_rank = np.lexsort((-dist_sph, prims.sph_order, prims.sph_group))
        box_split = np.searchsorted(prims.box_group[box_rank], np.arange(prims.num_groups + 1))
        sph_split = np.searchsorted(prims.sph_group[sph_rank], np.arange(prims.num_groups + 1))
        boxes = [box_rank[box_split[g]:box_split[g + 1]] for g in range(prims.num_groups)]
        spheres = [sph_rank[sph_split[g]:sph_split[g + 1]] for g in range(prims.num_groups)]
        return boxes, spheres

    def group_distance(self) -> np.ndarray:
        """(G,) distance from the camera to the closest point of each group."""
        prims = self.prims
        cos_yaw, sin_yaw = prims.box_axes()
        rel = self.camera_world[None] - prims.box_center
        local = np.stack([rel[:, 0] * cos_yaw + rel[:, 1] * sin_yaw,
                          -rel[:, 0] * sin_yaw + rel[:, 1] * cos_yaw, rel[:, 2]], axis=1)
        gap = np.maximum(np.abs(local) - prims.box_half, 0.0)
        dist = np.full(prims.num_groups, np.inf)
        np.minimum.at(dist, prims.box_group, np.linalg.norm(gap, axis=1))
        sph = np.maximum(np.linalg.norm(prims.sph_center - self.camera_world, axis=1)
                         - prims.sph_radius, 0.0)
        np.minimum.at(dist, prims.sph_group, sph)
        return dist

    def polygon_px(self, poly_rect: np.ndarray) -> np.ndarray | None:
        """(K, 3) rectified polygon -> int32 fixed-point pixels, clipped; None if behind."""
        if (poly_rect[:, 2] < NEAR_M).any():
            poly_rect = clip_polygon_near(poly_rect)
            if len(poly_rect) < 3:
                return None
        return np.round(self.project(poly_rect) * _SCALE).astype(np.int32)

    def draw_box(self, image: np.ndarray, box: int, colors: list[list[float]]) -> None:
        """Draw one box's visible faces (or its wheel) in ``colors`` (6 BGR lists)."""
        if not self.box_drawn[box]:
            return
        shape = self.prims.box_shape[box]
        if shape != SHAPE_BOX:
            self._draw_wheel(image, box, shape, np.asarray(colors[0]))
            return
        clipped = self.box_clipped[box]
        px = self.corners_fixed[box]
        for face in _FACE_SETS[self.face_mask[box]]:
            idx = FACE_CORNERS[face]
            pts = self.polygon_px(self.corners_rect[box, idx]) if clipped else px[idx]
            if pts is not None:
                cv2.fillConvexPoly(image, pts, colors[face], cv2.LINE_8, SHIFT)

    def fill_box(self, target: np.ndarray, box: int, value: int) -> None:
        """Fill one box's silhouette (the hull of its corners) with ``value``."""
        if not self.box_drawn[box]:
            return
        if not self.box_clipped[box]:
            hull = cv2.convexHull(self.corners_fixed[box])
            cv2.fillConvexPoly(target, hull, value, cv2.LINE_8, SHIFT)
            return
        for face in _FACE_SETS[self.face_mask[box]]:
            pts = self.polygon_px(self.corners_rect[box, FACE_CORNERS[face]])
            if pts is not None:
                cv2.fillConvexPoly(target, pts, value, cv2.LINE_8, SHIFT)

    def _draw_wheel(self, image: np.ndarray, box: int, shape: int, color: np.ndarray) -> None:
        """A tyre (hull of both rims, then the near rim's hub) or a bicycle wheel outline."""
        row = self.wheel_row[box]
        if not self.wheel_ok[row]:
            return
        rims = self.wheel_rims[row]  # (2, 8, 2)
        if shape == SHAPE_RING:
            cv2.polylines(image, [rims[self.wheel_near[row]]], True, color.tolist(),
                          int(self.wheel_thick[row]), cv2.LINE_8, SHIFT)
            return
        cv2.fillConvexPoly(image, cv2.convexHull(rims.reshape(-1, 2)), color.tolist(),
                           cv2.LINE_8, SHIFT)
        cv2.fillConvexPoly(image, self.wheel_hub[row], (color * 0.3 + 110).tolist(),
                           cv2.LINE_8, SHIFT)

    def draw_decals(self, image: np.ndarray, box: int, colors: np.ndarray) -> None:
        """Draw the decals of ``box`` whose face is visible; ``colors`` is (K_all, 3)."""
        lo, hi = self.decal_start[box], self.decal_start[box + 1]
        if lo == hi or not self.box_detailed[box]:
            return
        for k in self.decal_order[lo:hi]:
            if not self.face_visible[box, self.prims.decal_face[k]]:
                continue
            pts = self.polygon_px(self.decal_rect[k]) if self.decal_clipped[k] else \
                self.decal_fixed[k]
            if pts is not None:
                cv2.fillConvexPoly(image, pts, colors[k].tolist(), cv2.LINE_8, SHIFT)

    def draw_facades(self, image: np.ndarray, box: int, colors: np.ndarray) -> None:
        """Draw the window grids on ``box``'s visible faces; ``colors`` is (F_all, 3)."""
        lo, hi = self.facade_start[box], self.facade_start[box + 1]
        for facade in self.facade_order[lo:hi]:
            first, last = self.window_start[facade], self.window_start[facade + 1]
            if first == last:
                continue
            color = colors[facade].tolist()
            if not self.window_clipped[first:last].any():
                cv2.fillPoly(image, self.window_fixed[first:last], color, cv2.LINE_8, SHIFT)
                continue
            for quad in self.window_rect[first:last]:
                pts = self.polygon_px(quad)
                if pts is not None:
                    cv2.fillConvexPoly(image, pts, color, cv2.LINE_8, SHIFT)

    def _sphere_px(self, sphere: int) -> tuple[list[int], int] | None:
        """Fixed-point centre and radius of a sphere's disc, None when it is too near."""
        if self.sph_rect[sphere, 2] - self.prims.sph_radius[sphere] < NEAR_M:
            return None
        centre = np.round(self.sph_px[sphere] * _SCALE).astype(np.int64).tolist()
        return centre, int(round(self.sph_radius_px[sphere] * _SCALE))

    def draw_sphere(self, image: np.ndarray, sphere: int, colors: np.ndarray) -> None:
        """A disc in ``colors[0]`` with a sunlit highlight in ``colors[1]``."""
        disc = self._sphere_px(sphere)
        if disc is None:
            return
        centre, radius = disc
        cv2.circle(image, centre, radius, colors[0].tolist(), -1, cv2.LINE_8, SHIFT)
        if radius > 3 * _SCALE:
            offset = np.array([-0.25, -0.3]) * radius
            lit = (np.asarray(centre) + offset).astype(np.int64).tolist()
            cv2.circle(image, lit, int(radius * 0.55), colors[1].tolist(), -1, cv2.LINE_8, SHIFT)

    def fill_sphere(self, target: np.ndarray, sphere: int, value: int) -> None:
        """Fill a sphere's disc with ``value``."""
        disc = self._sphere_px(sphere)
        if disc is not None:
            cv2.circle(target, disc[0], disc[1], value, -1, cv2.LINE_8, SHIFT)
