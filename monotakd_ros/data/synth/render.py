"""The camera image and object-id buffer of one frame (painter's algorithm with cv2 fills).

Drawing order: sky gradient, ground paint (terrain, asphalt, markings) with distance haze,
sidewalks, cast shadows, then every standing group from far to near. Faces are flat-shaded by
the sun, fade into the horizon colour with distance, and the finished image gets a slight blur
and sensor noise. The id buffer receives the same fills with ``actor index + 1`` (0 elsewhere).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from monotakd_ros.data.synth.projection import NEAR_M, SHIFT, CameraView
from monotakd_ros.data.synth.scene import Lighting

_SHADOW_RANGE_M = 110.0
_CONTACT_DARKEN = 0.5


@lru_cache(maxsize=4)
def _noise_tiles(h: int, w: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Fixed (positive, negative) uint8 noise images, 32 px larger than the frame each way."""
    rng = np.random.default_rng(1234)
    fine = rng.normal(0.0, sigma, (h + 32, w + 32, 1))
    coarse = cv2.GaussianBlur(rng.normal(0.0, 9.0, (h + 32, w + 32)).astype(np.float32),
                              (0, 0), 6.0)[..., None]
    noise = np.clip(fine + coarse + rng.normal(0.0, sigma * 0.3, (h + 32, w + 32, 3)), -40, 40)
    return np.ascontiguousarray(np.maximum(noise, 0).astype(np.uint8)), np.ascontiguousarray(
        np.maximum(-noise, 0).astype(np.uint8))


def _haze(distance_m: np.ndarray, lighting: Lighting) -> np.ndarray:
    """Fraction of the horizon colour mixed in at each distance."""
    return 1.0 - np.exp(-np.asarray(distance_m) / lighting.haze_m)


def _shade(base: np.ndarray, normals: np.ndarray, distance_m: np.ndarray,
           lighting: Lighting) -> np.ndarray:
    """Flat-shaded, tinted and hazed colours: base (..., 3), normals (..., 3), distance (...)."""
    sun = np.einsum("...i,i->...", normals, lighting.sun_dir)
    light = lighting.ambient + lighting.sun * np.maximum(sun, 0.0)
    lit = base * light[..., None] * lighting.tint
    fade = _haze(distance_m, lighting)[..., None]
    return np.clip(lit * (1.0 - fade) + lighting.sky_horizon * fade, 0, 255)


def _ground_ray_distance(view: CameraView, rows: np.ndarray) -> tuple[np.ndarray, float]:
    """Distance to the ground along the centre column's pixel rays, and the horizon row."""
    P = view.calib.P2
    u = P[0, 2]
    dirs_rect = np.stack([(u - P[0, 2]) / P[0, 0] * np.ones_like(rows, dtype=np.float64),
                          (rows - P[1, 2]) / P[1, 1], np.ones(len(rows))], axis=1)
    dirs_world = dirs_rect @ view.R  # rows of R^T d
    cam = view.camera_world
    with np.errstate(divide="ignore"):
        t = np.where(dirs_world[:, 2] < -1e-9, -cam[2] / dirs_world[:, 2], np.inf)
    forward = view.R.T @ np.array([0.0, 0.0, 1.0])
    far = cam + 1e5 * np.array([forward[0], forward[1], 0.0]) / np.hypot(*forward[:2])
    far[2] = 0.0
    horizon_row = float(view.project(view.to_rect(far))[1])
    return t * np.linalg.norm(dirs_world, axis=1), horizon_row


def _sky(view: CameraView, lighting: Lighting, horizon_row: float) -> np.ndarray:
    """(H, W, 3) uint8 vertical sky gradient from the zenith colour down to the horizon."""
    h, w = view.image_hw
    rows = np.arange(h, dtype=np.float64)
    span = max(horizon_row + 60.0, 1.0)
    a = np.clip(rows / span, 0.0, 1.0)[:, None] ** 0.7
    column = (lighting.sky_top * (1 - a) + lighting.sky_horizon * a) * lighting.tint
    column = np.clip(column, 0, 255).astype(np.uint8)[:, None, :]  # (H, 1, 3)
    return cv2.resize(column, (w, h), interpolation=cv2.INTER_NEAREST)


def _draw_ground(view: CameraView, image: np.ndarray, lighting: Lighting) -> None:
    """Terrain, asphalt and paint quads, in the order they were added."""
    prims = view.prims
    up = np.array([0.0, 0.0, 1.0])
    colors = _shade(prims.ground_color, np.broadcast_to(up, prims.ground_color.shape),
                    np.zeros(len(prims.ground_color)), lighting)
    quads_rect = view.to_rect(prims.ground_quad)  # (Q, 4, 3)
    h, w = view.image_hw
    for quad, color in zip(quads_rect, colors, strict=True):
        if (quad[:, 2] < NEAR_M).all():
            continue
        pts = view.polygon_px(quad)
        if pts is None:
            continue
        px = pts / (1 << SHIFT)
        if px[:, 0].max() < 0 or px[:, 0].min() > w or px[:, 1].max() < 0 or px[:, 1].min() > h:
            continue
        cv2.fillConvexPoly(image, pts, color.tolist(), cv2.LINE_8, SHIFT)


def _haze_ground(view: CameraView, image: np.ndarray, lighting: Lighting,
                 ground_dist: np.ndarray) -> None:
    """Fade the ground into the horizon colour by its distance, row by row."""
    alpha = _haze(np.where(np.isfinite(ground_dist), ground_dist, 0.0), lighting)
    rows = np.flatnonzero(alpha > 0.03)
    if not len(rows):
        return
    band = slice(rows.min(), rows.max() + 1)
    a = alpha[band].astype(np.float32)[:, None, None]
    mixed = image[band].astype(np.float32) * (1 - a) + (lighting.sky_horizon * lighting.tint
                                                        ).astype(np.float32) * a
    image[band] = np.clip(mixed, 0, 255).astype(np.uint8)


def _group_colors(view: CameraView, lighting: Lighting) -> tuple[np.ndarray, ...]:
    """Shaded (N, 6, 3) box, (M, 2, 3) sphere, (K, 3) decal and (F, 3) facade colours."""
    prims = view.prims
    normals = prims.face_normals()
    box_dist = np.linalg.norm(prims.box_center - view.camera_world, axis=1)
    box_colors = _shade(prims.box_color, normals, box_dist[:, None].repeat(6, 1), lighting)
    sph_dist = np.linalg.norm(prims.sph_center - view.camera_world, axis=1)
    body = _shade(prims.sph_color, np.tile([0.0, 0.0, 0.3], (prims.num_spheres, 1)), sph_dist,
                  lighting)
    lit = _shade(prims.sph_color * 1.15, np.tile(lighting.sun_dir, (prims.num_spheres, 1)),
                 sph_dist, lighting)
    sph_colors = np.stack([body, lit], axis=1)
    decal_normals = normals[prims.decal_box, prims.decal_face]
    decal_colors = _shade(prims.decal_color, decal_normals, box_dist[prims.decal_box], lighting)
    facade_normals = normals[prims.facade_box, prims.facade_face]
    facade_colors = _shade(prims.facade_color, facade_normals, box_dist[prims.facade_box],
                           lighting)
    return box_colors, sph_colors, decal_colors, facade_colors


def _ground_outlines(view: CameraView, lighting: Lighting) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 8, 3) and (M, 8, 3) outlining each box's and sphere's sun shadow."""
    prims = view.prims
    sun = lighting.sun_dir
    along = sun[:2] / max(sun[2], 0.2)  # ground offset per metre of height
    boxes = prims.box_corners()
    boxes[..., :2] -= boxes[..., 2:3] * along
    boxes[..., 2] = 0.0
    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles), np.zeros(8)], axis=1)
    spheres = prims.sph_center[:, None] + ring[None] * prims.sph_radius[:, None, None]
    spheres[..., :2] -= prims.sph_center[:, None, 2:3] * along
    spheres[..., 2] = 0.0
    return boxes, spheres


def _shadow_mask(view: CameraView, lighting: Lighting, distance: np.ndarray) -> np.ndarray:
    """(H, W) uint8: 1 where the sun is blocked, 2 under actors (contact shadow)."""
    prims = view.prims
    h, w = view.image_hw
    mask = np.zeros((h, w), dtype=np.uint8)
    box_shadow, sph_shadow = _ground_outlines(view, lighting)
    footprints = prims.box_corners()[:, :4]  # (N, 4, 3)
    footprints[..., 2] = 0.0
    # Project every outline point at once; hulls are then taken in the image, which is exact
    # for ground polygons wholly in front of the camera.
    points = [view.to_rect(box_shadow), view.to_rect(sph_shadow), view.to_rect(footprints)]
    pixels = [view.fixed_px(p) for p in points]
    # Only what the camera sees casts a shadow (a tree just out of view loses its shadow).
    seen = np.bincount(prims.box_group, weights=view.box_drawn, minlength=prims.num_groups)
    seen += np.bincount(prims.sph_group, weights=view.sph_rect[:, 2] > NEAR_M,
                        minlength=prims.num_groups)
    casting = (prims.group_layer == 1) & (distance < _SHADOW_RANGE_M) & (seen > 0)
    # Thin parts (poles, arms) are left out: in a group's hull their thin shadows would fill the
    # wedge between a pole and its lamp.
    thick = prims.box_half[:, :2].min(axis=1) >= 0.1
    for g in np.flatnonzero(casting):
        boxes, spheres = view.group_boxes[g], view.group_spheres[g]
        if prims.group_actor[g] < 0:
            boxes = boxes[thick[boxes]]
            if not len(boxes) and not len(spheres):
                continue
        jobs = [(1, [(0, boxes), (1, spheres)])]
        if prims.group_actor[g] >= 0:
            jobs.append((2, [(2, boxes)]))
        for value, parts in jobs:
            rect = np.concatenate([points[k][idx].reshape(-1, 3) for k, idx in parts])
            if (rect[:, 2] < NEAR_M).any():
                _fill_ground_hull(view, mask, view.to_world(rect), value)
                continue
            px = np.concatenate([pixels[k][idx].reshape(-1, 2) for k, idx in parts])
            lo, hi = px.min(axis=0) >> SHIFT, px.max(axis=0) >> SHIFT
            if hi[0] < 0 or hi[1] < 0 or lo[0] >= w or lo[1] >= h:
                continue
            cv2.fillConvexPoly(mask, cv2.convexHull(px), value, cv2.LINE_8, SHIFT)
    return mask


def _fill_ground_hull(view: CameraView, mask: np.ndarray, points_world: np.ndarray,
                      value: int) -> None:
    """Fill the convex hull of ground points (P, 3), clipped by the near plane, into ``mask``."""
    hull_idx = cv2.convexHull(points_world[:, :2].astype(np.float32), returnPoints=False)
    poly = view.to_rect(points_world[hull_idx[:, 0]])
    pts = view.polygon_px(poly)
    if pts is not None:
        cv2.fillConvexPoly(mask, pts, value, cv2.LINE_8, SHIFT)


def _apply_shadows(image: np.ndarray, mask: np.ndarray, lighting: Lighting) -> None:
    """Darken shadowed ground: sun shadows keep only the ambient share of the light."""
    sun_factor = lighting.ambient / (lighting.ambient + lighting.sun * lighting.sun_dir[2])
    for value, factor in ((1, sun_factor), (2, sun_factor * _CONTACT_DARKEN)):
        dark = cv2.convertScaleAbs(image, alpha=float(factor))
        cv2.copyTo(dark, (mask == value).view(np.uint8), image)


def render_camera(view: CameraView, lighting: Lighting, noise_sigma: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 BGR image and (H, W) uint16 actor-id buffer of one frame."""
    prims = view.prims
    h, w = view.image_hw
    ground_dist, horizon_row = _ground_ray_distance(view, np.arange(h, dtype=np.float64))
    image = _sky(view, lighting, horizon_row)
    ids = np.zeros((h, w), dtype=np.uint16)
    _draw_ground(view, image, lighting)
    _haze_ground(view, image, lighting, ground_dist)
    box_colors, sph_colors, decal_colors, facade_colors = _group_colors(view, lighting)
    box_color_lists = box_colors.tolist()  # cv2 takes colours as sequences
    distance = view.group_distance()
    far_first = np.argsort(-distance, kind="stable")
    far_first = far_first[np.isfinite(distance[far_first])]
    for layer in (0, 1):
        if layer == 1:
            _apply_shadows(image, _shadow_mask(view, lighting, distance), lighting)
        for g in far_first[prims.group_layer[far_first] == layer]:
            # The id buffer starts empty, so the ground layer never needs to touch it.
            value = int(prims.group_actor[g] + 1)
            for b in view.group_boxes[g]:
                if not view.box_drawn[b]:
                    continue
                view.draw_box(image, b, box_color_lists[b])
                if view.box_has_extras[b]:
                    view.draw_decals(image, b, decal_colors)
                    view.draw_facades(image, b, facade_colors)
                if layer == 1:
                    view.fill_box(ids, b, value)
            for s in view.group_spheres[g]:
                view.draw_sphere(image, s, sph_colors[s])
                view.fill_sphere(ids, s, value)
    image = cv2.GaussianBlur(image, (3, 3), 0.6)
    pos, neg = _noise_tiles(h, w, float(noise_sigma))
    dy, dx = (int(v) for v in rng.integers(0, 32, 2))
    cv2.add(image, pos[dy:dy + h, dx:dx + w], dst=image)
    cv2.subtract(image, neg[dy:dy + h, dx:dx + w], dst=image)
    return image, ids
