"""Sampling a world: the street, its static clutter, the actors and the lighting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monotakd_ros.data.synth.actors import Actor, add_actor
from monotakd_ros.data.synth.clutter import (
    add_ground_paint,
    add_sidewalks,
    add_street_clutter,
    bgr,
)
from monotakd_ros.data.synth.config import SynthConfig
from monotakd_ros.data.synth.layout import RoadLayout, sample_layout
from monotakd_ros.data.synth.primitives import PrimitiveBuilder, Primitives, concat_primitives
from monotakd_ros.data.synth.traffic import sample_actors


@dataclass(frozen=True)
class Lighting:
    """Sun, sky and camera response of one world."""

    sun_dir: np.ndarray  # (3,) unit vector towards the sun, world frame
    sun: float  # direct light strength
    ambient: float
    sky_top: np.ndarray  # (3,) BGR
    sky_horizon: np.ndarray  # (3,) BGR
    haze_m: float  # distance at which 63 % of a colour has faded into the horizon colour
    tint: np.ndarray  # (3,) white balance gains


@dataclass
class World:
    """Everything of one world: static clutter, moving actors, light, ego speed."""

    layout: RoadLayout
    static: Primitives
    actors: list[Actor]
    lighting: Lighting
    ego_speed_mps: float

    def primitives_at(self, time_s: float) -> Primitives:
        """Static clutter plus every actor at its pose at ``time_s``."""
        builder = PrimitiveBuilder()
        for index, actor in enumerate(self.actors):
            add_actor(builder, index, actor, time_s)
        return concat_primitives([self.static, builder.build()])


def sample_lighting(rng: np.random.Generator) -> Lighting:
    """Sunny to overcast daylight with a bright, often washed-out sky as in KITTI."""
    elevation = rng.uniform(np.deg2rad(20), np.deg2rad(65))
    azimuth = rng.uniform(-np.pi, np.pi)
    sun_dir = np.array([np.cos(elevation) * np.cos(azimuth),
                        np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    overcast = rng.random() < 0.3
    horizon = rng.uniform(215, 250)
    # Clear skies run from a saturated blue to a pale, hazy one; overcast skies are grey.
    clear = rng.uniform(0.0, 1.0)
    top = (bgr(95, 150, 215) * (1 - clear) + bgr(200, 215, 235) * clear) if not overcast else \
        np.full(3, rng.uniform(190, 235))
    return Lighting(
        sun_dir=sun_dir, sun=rng.uniform(0.15, 0.3) if overcast else rng.uniform(0.45, 0.7),
        ambient=rng.uniform(0.55, 0.7), sky_top=top,
        sky_horizon=np.array([horizon + 4, horizon + 2, horizon - 2]).clip(0, 255),
        haze_m=rng.uniform(180, 450), tint=rng.uniform(0.95, 1.05, 3),
    )


def sample_world(rng: np.random.Generator, config: SynthConfig, duration_s: float = 0.0,
                 ego_speed_mps: float | None = None) -> World:
    """A complete world for a single frame (``duration_s = 0``) or a drive of that length.

    The ego starts at x = 0 in lane 0 and, in a drive, travels ``ego_speed_mps * duration_s``
    along x; the road reaches well beyond both ends of that path.
    """
    speed = float(rng.uniform(4.0, 12.0)) if ego_speed_mps is None else ego_speed_mps
    path_m = speed * duration_s
    layout = sample_layout(rng, -60.0, path_m + 140.0)
    builder = PrimitiveBuilder()
    add_ground_paint(builder, layout, rng)
    add_sidewalks(builder, layout, rng)
    add_street_clutter(builder, layout, rng)
    actors = sample_actors(rng, config, layout, speed, duration_s, -30.0, path_m + 110.0)
    return World(layout=layout, static=builder.build(), actors=actors,
                 lighting=sample_lighting(rng), ego_speed_mps=speed)
