"""Ray casting of one LiDAR sweep against boxes, spheres and the ground.

Each box is tested only against the rays that can reach it: in the LiDAR frame every azimuth
column is a vertical half-plane whose trace on the box's footprint bounds the horizontal
distance, and with the box's height range that gives the band of beams per column. Spheres use
their angular box. Boxes are ray-cast in distance bands, near first, so rays already stopped
closer than a box skip its slab test. The ground (z = 0 in the world) is a plane intersection
for every ray.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from monotakd_ros.data.synth.primitives import Primitives, apply_3x3
from monotakd_ros.data.synth.rig import RigPose

if TYPE_CHECKING:
    from monotakd_ros.data.synth.lidar import LidarModel

_DISTANCE_BUCKETS_M = np.array([8.0, 20.0, 40.0])  # boxes are ray-cast in these range bands


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For windows of ``counts`` items: the window of each item and its index inside it."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(int(counts.sum())) - starts[owner]


def _rect_pairs(rows0: np.ndarray, rows1: np.ndarray, col0: np.ndarray, ncol: np.ndarray,
                num_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """All (primitive, ray) pairs of the windows rows [r0, r1) x columns col0 + [0, ncol)."""
    nrow = np.maximum(rows1 - rows0, 0)
    prim, k = _expand(nrow * ncol)
    nc = ncol[prim]
    row = rows0[prim] + k // nc
    col = (col0[prim] + k % nc) % num_columns
    return prim, row * num_columns + col


def _tilt_rad(R_world_from_lidar: np.ndarray) -> float:
    """Angle between the LiDAR's z axis and the world's vertical."""
    return float(np.arccos(np.clip(R_world_from_lidar[2, 2], -1.0, 1.0)))


def _box_windows(prims: Primitives, model: LidarModel, pose: RigPose, tilt: float,
                 order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(primitive, ray) candidate pairs for every box, column by column, boxes in ``order``.

    In the LiDAR frame, each azimuth column is a vertical half-plane. Its trace on the box's
    footprint (grown by the box's tilt) gives the horizontal distances [r_in, r_out] at which
    the column can meet the box, and with the box's height range the exact band of beam
    elevations that can hit it.
    """
    R = pose.R_world_from_lidar
    corners = apply_3x3(R.T, prims.box_corners() - pose.position)  # (N, 8, 3) LiDAR frame
    centre = apply_3x3(R.T, prims.box_center - pose.position)  # (N, 3)
    z_lo, z_hi = corners[..., 2].min(axis=1), corners[..., 2].max(axis=1)
    r_near = np.linalg.norm(corners[..., :2], axis=2).min(axis=1)
    # Columns spanned by the footprint (the hull of the corners seen from above).
    centre_az = np.arctan2(centre[:, 1], centre[:, 0])
    corner_az = np.arctan2(corners[..., 1], corners[..., 0]) - centre_az[:, None]
    corner_az = (corner_az + np.pi) % (2.0 * np.pi) - np.pi
    col0, ncol = model.column_span(centre_az + corner_az.min(axis=1),
                                   centre_az + corner_az.max(axis=1))
    # The box's x axis in the LiDAR's horizontal plane, and its tilt-grown half extents.
    axis_x = apply_3x3(R.T, np.stack([np.cos(prims.box_yaw), np.sin(prims.box_yaw),
                                      np.zeros(prims.num_boxes)], axis=1))  # (N, 3)
    yaw_l = np.arctan2(axis_x[:, 1], axis_x[:, 0])
    grow = prims.box_half[:, 2] * np.sin(tilt) + 1e-3
    half_x, half_y = prims.box_half[:, 0] + grow, prims.box_half[:, 1] + grow
    inside = (np.abs(centre[:, 0] * np.cos(yaw_l) + centre[:, 1] * np.sin(yaw_l)) <= half_x) & (
        np.abs(-centre[:, 0] * np.sin(yaw_l) + centre[:, 1] * np.cos(yaw_l)) <= half_y)
    col0 = np.where(inside, 0, col0)
    ncol = np.where(inside, model.num_columns, ncol)
    ncol = np.where(r_near - grow < model.config.max_range_m, ncol, 0)

    position, k = _expand(ncol[order])
    prim = order[position]
    col = (col0[prim] + k) % model.num_columns
    az = model.azimuth_rad[col]
    # 2-D slab test of the ray (cos az, sin az) from the origin against the footprint.
    rel = np.cos(yaw_l[prim]), np.sin(yaw_l[prim])
    o_x = -(centre[prim, 0] * rel[0] + centre[prim, 1] * rel[1])
    o_y = -(-centre[prim, 0] * rel[1] + centre[prim, 1] * rel[0])
    d_x = np.cos(az) * rel[0] + np.sin(az) * rel[1]
    d_y = -np.cos(az) * rel[1] + np.sin(az) * rel[0]
    r_in = np.zeros(len(prim))
    r_out = np.full(len(prim), np.inf)
    for o_a, d_a, h_a in ((o_x, d_x, half_x[prim]), (o_y, d_y, half_y[prim])):
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (-h_a - o_a) / d_a, (h_a - o_a) / d_a
        parallel = np.abs(d_a) < 1e-12
        lo = np.where(parallel, np.where(np.abs(o_a) <= h_a, -np.inf, np.inf), np.minimum(t1, t2))
        hi = np.where(parallel, np.where(np.abs(o_a) <= h_a, np.inf, -np.inf), np.maximum(t1, t2))
        r_in, r_out = np.maximum(r_in, lo), np.minimum(r_out, hi)
    r_out = np.minimum(r_out, model.config.max_range_m)
    met = r_in <= r_out
    # Elevation band, as tangents: z / r over r in [r_in, r_out] and z in [z_lo, z_hi].
    zl, zh = z_lo[prim], z_hi[prim]
    r_in = np.maximum(r_in, 1e-6)
    tan_lo = np.minimum(zl / r_in, zl / r_out)
    tan_hi = np.maximum(zh / r_in, zh / r_out)
    rows0, rows1 = model.beam_rows_tan(tan_lo - 1e-4, tan_hi + 1e-4)
    rows1 = np.where(met, rows1, rows0)
    col_prim, j = _expand(np.maximum(rows1 - rows0, 0))
    ray = (rows0[col_prim] + j) * model.num_columns + col[col_prim]
    return prim[col_prim], ray


def _box_frames(prims: Primitives, origin: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per box: slab bounds relative to the origin, (3, N) twice, and cos/sin of the yaw."""
    cos_yaw, sin_yaw = prims.box_axes()
    rel = origin[None] - prims.box_center  # (N, 3) origin relative to the box, world axes
    local = np.stack([rel[:, 0] * cos_yaw + rel[:, 1] * sin_yaw,
                      -rel[:, 0] * sin_yaw + rel[:, 1] * cos_yaw, rel[:, 2]])  # (3, N)
    lower = (-prims.box_half.T - local).astype(np.float32)
    upper = (prims.box_half.T - local).astype(np.float32)
    return lower, upper, cos_yaw.astype(np.float32), sin_yaw.astype(np.float32)


def _local_dirs(dirs_t: np.ndarray, cos_yaw: np.ndarray, sin_yaw: np.ndarray) -> np.ndarray:
    """(3, P) world ray directions (given as (3, P)) turned into their boxes' frames."""
    local = np.empty_like(dirs_t)
    local[0] = dirs_t[0] * cos_yaw + dirs_t[1] * sin_yaw
    local[1] = dirs_t[1] * cos_yaw - dirs_t[0] * sin_yaw
    local[2] = dirs_t[2]
    return local


def _box_hits(prims: Primitives, prim: np.ndarray, dirs_t: np.ndarray, origin: np.ndarray,
              ) -> tuple[np.ndarray, np.ndarray]:
    """Slab test of (box, ray) pairs, rays given as (3, P): (hit mask, entry distance)."""
    lower, upper, cos_yaw, sin_yaw = _box_frames(prims, origin)
    local = _local_dirs(dirs_t, cos_yaw[prim], sin_yaw[prim])
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.float32(1.0) / local
        t1 = lower[:, prim] * inv  # (3, P) distances to the lower slab planes
        t2 = upper[:, prim] * inv
    lo = np.minimum(t1, t2)
    hi = np.maximum(t1, t2)
    t_near = np.maximum(np.maximum(lo[0], lo[1]), lo[2])
    t_far = np.minimum(np.minimum(hi[0], hi[1]), hi[2])
    return (t_near <= t_far) & (t_near > 0), t_near


def _box_distance(prims: Primitives, origin: np.ndarray) -> np.ndarray:
    """(N,) distance from ``origin`` to the closest point of every box."""
    lower, upper, _, _ = _box_frames(prims, origin)
    gap = np.maximum(np.maximum(lower, -upper), 0.0)  # (3, N) outside distance per axis
    return np.sqrt((gap.astype(np.float64) ** 2).sum(axis=0))


def _entry_faces(prims: Primitives, box: np.ndarray, dirs_t: np.ndarray, range_m: np.ndarray,
                 origin: np.ndarray) -> np.ndarray:
    """Face (0..5) through which each ray entered its box: the one its hit point lies on."""
    lower, upper, cos_yaw, sin_yaw = _box_frames(prims, origin)
    offset = 0.5 * (lower + upper)  # (3, N) box centre relative to the origin, box axes
    inv_half = (2.0 / (upper - lower)).astype(np.float32)
    local = _local_dirs(dirs_t, cos_yaw[box], sin_yaw[box]) * range_m
    # The hit point relative to the box centre, scaled so that each face lies at +-1.
    rel = (local - offset[:, box]) * inv_half[:, box]
    a = np.abs(rel)
    x_wins = (a[0] >= a[1]) & (a[0] >= a[2])
    y_wins = ~x_wins & (a[1] >= a[2])
    axis = np.where(x_wins, 0, np.where(y_wins, 1, 2))
    value = np.where(x_wins, rel[0], np.where(y_wins, rel[1], rel[2]))
    return 2 * axis + (value < 0)


def _sphere_windows(prims: Primitives, model: LidarModel, pose: RigPose,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(primitive, ray) candidate pairs for every sphere (its angular box in the LiDAR frame)."""
    rel = apply_3x3(pose.R_world_from_lidar.T, prims.sph_center - pose.position)  # (M, 3)
    r_h = np.hypot(rel[:, 0], rel[:, 1])
    dist = np.linalg.norm(rel, axis=1)
    radius = prims.sph_radius
    ang = np.arcsin(np.clip(radius / np.maximum(dist, 1e-6), 0.0, 1.0))
    elev = np.arctan2(rel[:, 2], r_h)
    rows0, rows1 = model.beam_rows(elev - ang - 1e-4, elev + ang + 1e-4)
    half_az = np.arcsin(np.clip(radius / np.maximum(r_h, 1e-6), 0.0, 1.0))
    az = np.arctan2(rel[:, 1], rel[:, 0])
    col0, ncol = model.column_span(az - half_az, az + half_az)
    ncol = np.where(r_h <= radius, model.num_columns, ncol)
    rows1 = np.where(dist - radius < model.config.max_range_m, rows1, rows0)
    return _rect_pairs(rows0, rows1, col0, ncol, model.num_columns)


def _sphere_hits(prims: Primitives, prim: np.ndarray, dirs_t: np.ndarray, origin: np.ndarray,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Ray-sphere test of pairs: (hit mask, entry distance)."""
    rel = (origin[None] - prims.sph_center).astype(np.float32)[prim]  # (P, 3)
    b = np.einsum("pi,ip->p", rel, dirs_t)
    c = np.einsum("pi,pi->p", rel, rel) - prims.sph_radius.astype(np.float32)[prim] ** 2
    disc = b * b - c
    t = -b - np.sqrt(np.maximum(disc, 0.0))
    return (disc >= 0) & (t > 0), t


@dataclass
class RayHits:
    """The nearest surface along each ray that met one (R' rays)."""

    ray: np.ndarray  # (R',) ray index
    range_m: np.ndarray  # (R',) distance from the LiDAR origin
    kind: np.ndarray  # (R',) 0 ground, 1 box, 2 sphere
    index: np.ndarray  # (R',) box or sphere index
    face: np.ndarray  # (R',) box face


def nearest_hits(prims: Primitives, pose: RigPose, model: LidarModel,
                  dirs_t: np.ndarray) -> RayHits:
    """Closest of ground, box and sphere intersections for every ray, within range."""
    config = model.config
    origin = pose.position
    with np.errstate(divide="ignore"):
        t_best = np.where(dirs_t[2] < -1e-6, np.float32(-origin[2]) / dirs_t[2],
                          np.float32(np.inf))
    kind = np.zeros(model.num_rays, dtype=np.int8)
    index = np.zeros(model.num_rays, dtype=np.int64)
    candidates = []
    if prims.num_boxes:
        # Near boxes first: a ray already stopped closer than a far box needs no slab test.
        reach = _box_distance(prims, origin)
        bucket = np.searchsorted(_DISTANCE_BUCKETS_M, reach)
        order = np.argsort(bucket, kind="stable")
        prim, ray = _box_windows(prims, model, pose, _tilt_rad(pose.R_world_from_lidar), order)
        # Pairs come out grouped by bucket, so each bucket is one slice.
        edges = np.searchsorted(bucket[prim], np.arange(len(_DISTANCE_BUCKETS_M) + 2))
        for b in range(len(_DISTANCE_BUCKETS_M) + 1):
            p_b, r_b = prim[edges[b]:edges[b + 1]], ray[edges[b]:edges[b + 1]]
            if b > 0:
                open_ray = np.flatnonzero(t_best[r_b] > reach[p_b])
                p_b, r_b = p_b[open_ray], r_b[open_ray]
            hit, t = _box_hits(prims, p_b, dirs_t[:, r_b], origin)
            p_b, r_b, t = p_b[hit], r_b[hit], t[hit]
            np.minimum.at(t_best, r_b, t)
            candidates.append((1, p_b, r_b, t))
    if prims.num_spheres:
        prim, ray = _sphere_windows(prims, model, pose)
        open_ray = np.flatnonzero(t_best[ray] > np.linalg.norm(
            prims.sph_center - origin, axis=1)[prim] - prims.sph_radius[prim])
        prim, ray = prim[open_ray], ray[open_ray]
        hit, t = _sphere_hits(prims, prim, dirs_t[:, ray], origin)
        np.minimum.at(t_best, ray[hit], t[hit])
        candidates.append((2, prim[hit], ray[hit], t[hit]))
    for k, prim, ray, t in candidates:
        win = t == t_best[ray]
        kind[ray[win]] = k
        index[ray[win]] = prim[win]
    rays = np.flatnonzero((t_best > config.min_range_m) & (t_best < config.max_range_m))
    hits = RayHits(ray=rays, range_m=t_best[rays], kind=kind[rays], index=index[rays],
                 face=np.zeros(len(rays), dtype=np.int64))
    on_box = np.flatnonzero(hits.kind == 1)
    hits.face[on_box] = _entry_faces(prims, hits.index[on_box], dirs_t[:, rays[on_box]],
                                     hits.range_m[on_box], origin)
    return hits


