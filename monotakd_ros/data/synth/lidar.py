"""A 64-beam HDL-64E-like LiDAR: beam layout, and one sweep's noisy, partly dropped returns.

The geometry of a sweep comes from ``raycast`` (nearest surface per ray); here each return gets
its intensity (surface reflectivity and incidence), range noise and dropout: glass lets most
beams through and weak far returns fall under the detection threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from monotakd_ros.configuration import bounded, check_fields
from monotakd_ros.data.synth.primitives import Primitives
from monotakd_ros.data.synth.raycast import RayHits, nearest_hits
from monotakd_ros.data.synth.rig import LIDAR_HEIGHT_M, RigPose
from monotakd_ros.errors import ConfigError

# Upper block of the HDL-64E: lasers 1/3 deg apart; the lower block continues below 0.5 deg
# further down with its own spacing to the last laser.
_UPPER_STEP_DEG = 1.0 / 3.0
_BLOCK_GAP_DEG = 0.5
HIT_GROUND = -1


@dataclass(frozen=True)
class LidarConfig:
    """Beam layout and noise of the simulated spinning LiDAR."""

    num_beams: int = bounded(64, ge=2)
    elevation_top_deg: float = bounded(2.0, ge=-90, le=90)
    elevation_bottom_deg: float = bounded(-24.8, ge=-90, le=90)
    azimuth_step_deg: float = bounded(0.2, gt=0, le=360)
    max_range_m: float = bounded(120.0, gt=0)
    min_range_m: float = bounded(2.5, ge=0)  # the ego car's roof hides anything closer
    range_noise_m: float = bounded(0.02, ge=0)
    dropout: float = bounded(0.04, ge=0, lt=1)  # chance that any return is lost
    height_m: float = LIDAR_HEIGHT_M

    def __post_init__(self) -> None:
        check_fields(self, "synth.lidar")
        if not (self.elevation_bottom_deg < self.elevation_top_deg
                and self.min_range_m < self.max_range_m):
            raise ConfigError(f"synth.lidar: need elevation_bottom_deg < elevation_top_deg and "
                              f"min_range_m < max_range_m, got {self}")


@dataclass
class LidarSweep:
    """One sweep: points (N, 4) x y z intensity in the LiDAR frame and what each one hit."""

    points: np.ndarray  # (N, 4) float32
    group: np.ndarray  # (N,) int64 group id of the hit primitive, HIT_GROUND for the ground
    ray: np.ndarray  # (N,) int64 ray index, beam * num_columns + column


class LidarModel:
    """The fixed ray directions of one sensor (beam elevations x azimuth columns)."""

    def __init__(self, config: LidarConfig) -> None:
        self.config = config
        upper = config.num_beams // 2
        top = config.elevation_top_deg
        upper_deg = top - _UPPER_STEP_DEG * np.arange(upper)
        lower_start = upper_deg[-1] - _BLOCK_GAP_DEG
        lower_deg = np.linspace(lower_start, config.elevation_bottom_deg,
                                config.num_beams - upper)
        self.elevation_rad = np.deg2rad(np.concatenate([upper_deg, lower_deg]))  # descending
        self._neg_tan_elevation = -np.tan(self.elevation_rad)  # ascending, for searches
        self.num_columns = int(round(360.0 / config.azimuth_step_deg))
        self.azimuth_step_rad = 2.0 * np.pi / self.num_columns
        self.azimuth_rad = -np.pi + (np.arange(self.num_columns) + 0.5) * self.azimuth_step_rad
        cos_el = np.cos(self.elevation_rad)[:, None]
        dirs = np.stack([cos_el * np.cos(self.azimuth_rad)[None],
                         cos_el * np.sin(self.azimuth_rad)[None],
                         np.broadcast_to(np.sin(self.elevation_rad)[:, None],
                                         (config.num_beams, self.num_columns))], axis=-1)
        self.dirs_lidar = dirs.reshape(-1, 3)  # (B * C, 3) unit rays, beam-major
        self.dirs_lidar32 = self.dirs_lidar.astype(np.float32)
        self.dirs_lidar_t = np.ascontiguousarray(self.dirs_lidar32.T)  # (3, R)

    def dirs_world_t(self, R_world_from_lidar: np.ndarray) -> np.ndarray:
        """(3, R) float32 ray directions in the world, each row contiguous."""
        R = R_world_from_lidar.astype(np.float32)
        d = self.dirs_lidar_t
        return np.stack([R[i, 0] * d[0] + R[i, 1] * d[1] + R[i, 2] * d[2] for i in range(3)])

    @property
    def num_rays(self) -> int:
        """Rays per sweep."""
        return len(self.dirs_lidar)

    def beam_rows(self, elev_lo: np.ndarray, elev_hi: np.ndarray) -> tuple[np.ndarray,
                                                                            np.ndarray]:
        """First and one-past-last beam whose elevation lies in [lo, hi] (beams descend)."""
        neg = -self.elevation_rad  # ascending
        return (np.searchsorted(neg, -elev_hi, side="left"),
                np.searchsorted(neg, -elev_lo, side="right"))

    def beam_rows_tan(self, tan_lo: np.ndarray, tan_hi: np.ndarray) -> tuple[np.ndarray,
                                                                             np.ndarray]:
        """Like ``beam_rows`` for bounds given as tangents of the elevation (no arctan)."""
        return (np.searchsorted(self._neg_tan_elevation, -tan_hi, side="left"),
                np.searchsorted(self._neg_tan_elevation, -tan_lo, side="right"))

    def column_span(self, az_lo: np.ndarray, az_hi: np.ndarray) -> tuple[np.ndarray,
                                                                          np.ndarray]:
        """First column (mod C) and number of columns covering azimuths [lo, hi] (lidar frame)."""
        first = np.floor((az_lo + np.pi) / self.azimuth_step_rad - 0.5).astype(np.int64)
        last = np.ceil((az_hi + np.pi) / self.azimuth_step_rad - 0.5).astype(np.int64)
        count = np.minimum(last - first + 1, self.num_columns)
        return first % self.num_columns, count


GroundReflectivity = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _surfaces(prims: Primitives, hits: RayHits, dirs: np.ndarray, origin: np.ndarray,
              ground_reflectivity: GroundReflectivity) -> tuple[np.ndarray, ...]:
    """(cos incidence, reflectivity, dropout, group) of the surface each ray hit.

    ``dirs`` (R', 3) are the world directions of the hit rays.
    """
    n = len(hits.ray)
    cos_incidence = np.abs(dirs[:, 2])  # the ground's normal is +z
    reflect = np.empty(n, dtype=np.float32)
    drop = np.zeros(n, dtype=np.float32)
    group = np.full(n, HIT_GROUND, dtype=np.int64)
    is_box = np.flatnonzero(hits.kind == 1)
    bi, bf = hits.index[is_box], hits.face[is_box]
    normal = prims.face_normals()[bi, bf]
    cos_incidence[is_box] = np.abs(np.einsum("ni,ni->n", normal, dirs[is_box]))
    reflect[is_box] = prims.box_reflect[bi, bf]
    drop[is_box] = prims.box_dropout[bi, bf]
    group[is_box] = prims.box_group[bi]
    is_sph = np.flatnonzero(hits.kind == 2)
    si = hits.index[is_sph]
    hit = origin + dirs[is_sph] * hits.range_m[is_sph, None]
    normal = (hit - prims.sph_center[si]) / prims.sph_radius[si, None]
    cos_incidence[is_sph] = np.abs(np.einsum("ni,ni->n", normal, dirs[is_sph]))
    reflect[is_sph] = prims.sph_reflect[si]
    group[is_sph] = prims.sph_group[si]
    is_ground = np.flatnonzero(hits.kind == 0)
    hit = origin[:2] + dirs[is_ground, :2] * hits.range_m[is_ground, None]
    reflect[is_ground] = ground_reflectivity(hit[:, 0], hit[:, 1])
    return cos_incidence, reflect, drop, group


def cast_sweep(prims: Primitives, pose: RigPose, model: LidarModel,
               ground_reflectivity: GroundReflectivity, rng: np.random.Generator) -> LidarSweep:
    """Ray-cast one sweep from ``pose`` and return the noisy, partly dropped returns."""
    config = model.config
    dirs_t = model.dirs_world_t(pose.R_world_from_lidar)  # (3, R)
    hits = nearest_hits(prims, pose, model, dirs_t)
    origin = pose.position.astype(np.float32)
    cos_incidence, reflect, drop, group = _surfaces(prims, hits, dirs_t[:, hits.ray].T, origin,
                                                    ground_reflectivity)
    # Weak far returns fall under the detector threshold more often than strong near ones.
    weak_far = np.clip((hits.range_m / config.max_range_m) ** 2 * (1.0 - reflect), 0.0, 1.0)
    keep_prob = (1.0 - config.dropout) * (1.0 - drop) * (1.0 - 0.6 * weak_far)
    keep = np.flatnonzero(rng.random(len(hits.ray), dtype=np.float32) < keep_prob)
    ray = hits.ray[keep]
    noise = rng.standard_normal((2, len(keep)), dtype=np.float32)
    range_m = hits.range_m[keep] + np.float32(config.range_noise_m) * noise[0]
    intensity = reflect[keep] * (0.3 + 0.7 * cos_incidence[keep]) * (1.0 + 0.08 * noise[1])
    points = np.empty((len(keep), 4), dtype=np.float32)
    points[:, :3] = model.dirs_lidar32[ray] * range_m[:, None]
    points[:, 3] = np.clip(intensity, 0.0, 0.99)
    return LidarSweep(points=points, group=group[keep], ray=ray)
