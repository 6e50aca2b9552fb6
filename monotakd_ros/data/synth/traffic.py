"""Placing the actors: parked rows, lane traffic, cross traffic, pedestrians and cyclists.

For a drive every lane and every walking track moves at one speed, nobody crosses the road and
the ego lane holds traffic only ahead of the ego, so straight-line motion never makes two
actors (or an actor and the ego) overlap.

A drive's world is longer than an object frame's (``OBJECT_SPAN_M``). With
``SynthConfig.drive_scenes = "object"`` its pedestrian and cyclist counts grow with its length,
so that every frame sees them as densely as an object frame does, and a cyclist the object
generator would put on the road rides the ego lane's kerb side at that lane's speed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from monotakd_ros.data.synth.actors import Actor
from monotakd_ros.data.synth.clutter import bgr
from monotakd_ros.data.synth.config import SynthConfig
from monotakd_ros.data.synth.layout import RoadLayout

# (mean, std, min, max) of length, width, height per class, close to the KITTI label statistics.
DIMENSION_STATS = {
    "Car": ((3.9, 0.4, 3.2, 5.0), (1.62, 0.1, 1.4, 1.9), (1.53, 0.1, 1.32, 1.85)),
    "Van": ((5.0, 0.45, 4.3, 6.0), (1.9, 0.1, 1.7, 2.1), (2.15, 0.18, 1.85, 2.6)),
    "Pedestrian": ((0.8, 0.15, 0.5, 1.1), (0.62, 0.07, 0.52, 0.8), (1.73, 0.09, 1.5, 1.95)),
    "Cyclist": ((1.76, 0.1, 1.5, 2.0), (0.6, 0.05, 0.52, 0.72), (1.73, 0.07, 1.55, 1.9)),
}
CAR_COLORS = [  # (RGB, weight): mostly white, silver, grey and black, as on real streets
    ((232, 232, 230), 0.22), ((185, 188, 192), 0.18), ((110, 112, 116), 0.14),
    ((28, 28, 30), 0.16), ((35, 60, 120), 0.08), ((150, 25, 25), 0.08), ((30, 70, 50), 0.04),
    ((190, 175, 140), 0.04), ((210, 170, 40), 0.02), ((120, 150, 180), 0.04),
]
CLOTHES = [(30, 35, 60), (25, 25, 28), (225, 225, 220), (170, 40, 40), (50, 80, 150),
           (60, 100, 60), (190, 170, 130), (120, 120, 125), (200, 120, 50)]
TROUSERS = [(45, 55, 85), (28, 28, 30), (90, 90, 95), (150, 135, 100)]




def _clipped_normal(rng: np.random.Generator, stats: tuple[float, float, float, float],
                    ) -> float:
    mean, std, lo, hi = stats
    return float(np.clip(rng.normal(mean, std), lo, hi))


def _weighted_color(rng: np.random.Generator) -> np.ndarray:
    colors, weights = zip(*CAR_COLORS, strict=True)
    rgb = colors[int(rng.choice(len(colors), p=np.array(weights) / sum(weights)))]
    return bgr(*rgb) * rng.uniform(0.92, 1.05)


def make_actor(rng: np.random.Generator, kind: str, x: float, y: float, yaw: float,
               speed: float) -> Actor:
    """An actor of class ``kind`` with KITTI-like size and a random look."""
    length, width, height = (_clipped_normal(rng, s) for s in DIMENSION_STATS[kind])
    if kind in ("Car", "Van"):
        color, color2 = _weighted_color(rng), np.zeros(3)
    else:
        color = bgr(*CLOTHES[int(rng.integers(len(CLOTHES)))]) * rng.uniform(0.85, 1.1)
        color2 = bgr(*TROUSERS[int(rng.integers(len(TROUSERS)))]) * rng.uniform(0.85, 1.1)
        if kind == "Cyclist":
            color2 = bgr(*rng.uniform(20, 200, 3))  # the bicycle frame
    return Actor(kind=kind, length_m=length, width_m=width, height_m=height, x_m=x, y_m=y,
                 yaw_rad=yaw, speed_mps=speed, color=color, color2=color2,
                 style=rng.random(8))


def _corners_2d(actor: Actor, margin: float) -> np.ndarray:
    """(4, 2) footprint corners at t = 0, grown by ``margin``."""
    c, s = np.cos(actor.yaw_rad), np.sin(actor.yaw_rad)
    hl, hw = actor.length_m / 2 + margin, actor.width_m / 2 + margin
    local = np.array([[hl, hw], [hl, -hw], [-hl, -hw], [-hl, hw]])
    return local @ np.array([[c, s], [-s, c]]) + np.array([actor.x_m, actor.y_m])


def footprints_overlap(a: Actor, b: Actor, margin: float = 0.2) -> bool:
    """Separating-axis test of two actors' footprints at t = 0."""
    pa, pb = _corners_2d(a, margin / 2), _corners_2d(b, margin / 2)
    for poly in (pa, pb):
        for i in range(2):
            edge = poly[i + 1] - poly[i]
            axis = np.array([-edge[1], edge[0]])
            proj_a, proj_b = pa @ axis, pb @ axis
            if proj_a.max() < proj_b.min() or proj_b.max() < proj_a.min():
                return False
    return True



class _ActorSet:
    """Actors placed so far; ``place`` refuses one that would overlap another."""

    def __init__(self) -> None:
        self.actors: list[Actor] = []
        self._xy: list[tuple[float, float]] = []
        self._radius: list[float] = []

    def place(self, actor: Actor) -> bool:
        """Add ``actor`` unless its footprint overlaps one already placed."""
        radius = 0.5 * float(np.hypot(actor.length_m, actor.width_m))
        if self._xy:
            xy = np.asarray(self._xy)
            dist = np.hypot(xy[:, 0] - actor.x_m, xy[:, 1] - actor.y_m)
            near = np.flatnonzero(dist < np.asarray(self._radius) + radius + 0.3)
            if any(footprints_overlap(actor, self.actors[i]) for i in near):
                return False
        self.actors.append(actor)
        self._xy.append((actor.x_m, actor.y_m))
        self._radius.append(radius)
        return True


Maker = Callable[[str, float, float, float, float], Actor]


def _near_cross(layout: RoadLayout, x: float, margin: float) -> bool:
    """Whether x lies within ``margin`` of the cross street (or its zebra crossing)."""
    if layout.cross_x_m is None:
        return False
    lo = layout.cross_x_m - layout.cross_half_width_m - margin - 5.0  # zebra before it
    return lo < x < layout.cross_x_m + layout.cross_half_width_m + margin


def _vehicle_kind(rng: np.random.Generator, config: SynthConfig) -> str:
    return "Van" if rng.random() < config.van_fraction else "Car"


def _parked_rows(rng: np.random.Generator, config: SynthConfig, layout: RoadLayout,
                 placed: _ActorSet, make: Maker, x_lo: float, x_hi: float) -> None:
    """Rows of parked cars along both parking strips, with the odd empty stretch."""
    for y_c, yaw in ((layout.parking_right_y_m, 0.0), (layout.parking_left_y_m, np.pi)):
        if y_c is None:
            continue
        x = x_lo + rng.uniform(0, 5)
        while x < x_hi:
            if rng.random() < 0.2:
                x += rng.uniform(4, 15)
                continue
            heading = yaw + (np.pi if rng.random() < 0.15 else 0.0) + rng.normal(0, 0.03)
            actor = make(_vehicle_kind(rng, config), 0.0, y_c + rng.normal(0, 0.1), heading, 0.0)
            actor.x_m = x + actor.length_m / 2
            if not _near_cross(layout, actor.x_m, actor.length_m / 2 + 3.0):
                placed.place(actor)
            x += actor.length_m + rng.uniform(0.6, 2.5)


OBJECT_SPAN_M = 140.0  # x extent of an object frame's actors: -30 m to 110 m around the rig
_CROSSING_PROBABILITY = 0.3  # object frames with a pedestrian crossing the road ...
_CROSSING_SPAN_M = 34.0  # ... somewhere in the 34 m ahead of the rig from 6 m on


def _lane_traffic(rng: np.random.Generator, config: SynthConfig, layout: RoadLayout,
                  placed: _ActorSet, make: Maker, x_lo: float, x_hi: float, ego_speed: float,
                  duration_s: float) -> float:
    """Cars in the lanes; each lane moves at one speed, the ego lane only ahead of the ego.

    Returns the ego lane's speed (m/s).
    """
    ego_lane_speed = ego_speed
    for index, lane in enumerate(layout.lanes):
        if index == 0:
            speed = ego_speed + rng.uniform(0.3, 2.0)
            x = rng.uniform(8.0, 30.0)
            ego_lane_speed = speed
        elif lane.direction > 0:
            speed = max(0.0, ego_speed + rng.uniform(-3.0, 3.0))
            x = x_lo + rng.uniform(0, 20)
        else:
            speed = rng.uniform(6.0, 14.0)
            x = x_lo + rng.uniform(0, 20)
        # Oncoming traffic that enters the view during the drive starts beyond the far end.
        end = x_hi + (speed * duration_s if lane.direction < 0 else 0.0)
        yaw = 0.0 if lane.direction > 0 else np.pi
        while x < end:
            if index == 0 or rng.random() < 0.7:
                actor = make(_vehicle_kind(rng, config), x, lane.y_m + rng.normal(0, 0.15),
                             yaw + rng.normal(0, 0.01), speed)
                placed.place(actor)
            x += rng.uniform(12.0, 45.0)
    return ego_lane_speed


def _cross_traffic(rng: np.random.Generator, config: SynthConfig, layout: RoadLayout,
                   placed: _ActorSet, make: Maker) -> None:
    """Cars waiting on the cross street at the junction."""
    if layout.cross_x_m is None:
        return
    for _ in range(int(rng.integers(0, 4))):
        side = 1.0 if rng.random() < 0.5 else -1.0
        kerb = layout.kerb_left_y_m if side > 0 else layout.kerb_right_y_m
        # Traffic keeps right: cars coming towards the main road from the left travel -y.
        x = layout.cross_x_m + side * layout.lane_width_m / 2
        actor = make(_vehicle_kind(rng, config), x, 0.0, -side * np.pi / 2, 0.0)
        actor.y_m = kerb + side * (actor.length_m / 2 + rng.uniform(1.0, 30.0))
        placed.place(actor)


def _walkers(rng: np.random.Generator, config: SynthConfig, layout: RoadLayout,
             placed: _ActorSet, make: Maker, x_lo: float, x_hi: float, moving: bool,
             ego_lane_speed: float) -> None:
    """Pedestrians and cyclists on sidewalk tracks, on the bike lane and crossing the road."""
    as_objects = moving and config.drive_scenes == "object"
    density = (x_hi - x_lo) / OBJECT_SPAN_M if as_objects else 1.0
    for side in (-1.0, 1.0):
        kerb = layout.kerb_left_y_m if side > 0 else layout.kerb_right_y_m
        walk = layout.sidewalk_left_m if side > 0 else layout.sidewalk_right_m
        near, far = kerb + side * 1.35, kerb + side * (walk - 0.4)
        num_tracks = max(1, int(abs(far - near) / 0.75) + 1)
        tracks = np.linspace(near, far, num_tracks) if abs(far - near) > 0.1 else [near]
        track_speed = [0.0 if rng.random() < 0.25 else rng.uniform(0.9, 1.6) for _ in tracks]
        track_dir = [0.0 if rng.random() < 0.5 else np.pi for _ in tracks]
        count = rng.poisson(config.pedestrians_per_side * density)
        for _ in range(count):
            t = int(rng.integers(len(tracks)))
            yaw = track_dir[t] + rng.normal(0, 0.05)
            if track_speed[t] == 0.0:
                yaw = rng.uniform(-np.pi, np.pi)
            x = rng.uniform(x_lo, x_hi)
            for member in range(1 if rng.random() < 0.7 else 2):  # some walk in pairs
                tt = min(t + member, len(tracks) - 1)
                actor = make("Pedestrian", x + rng.normal(0, 0.3 * member), tracks[tt], yaw,
                             track_speed[tt])
                actor.z_m = layout.kerb_height_m  # on the sidewalk
                if not _near_cross(layout, actor.x_m, 1.0):
                    placed.place(actor)
    for _ in range(rng.poisson(config.cyclists_mean * density)):
        x_from = x_lo
        if layout.bike_lane_y_m is not None and rng.random() < 0.7:
            y, yaw, speed = layout.bike_lane_y_m, 0.0, 4.5  # one speed: no overtaking
        elif not moving:
            y, yaw = layout.lanes[0].y_m - layout.lane_width_m / 2 + 0.6, 0.0
            speed = rng.uniform(3.0, 6.0)
            if rng.random() < 0.3:  # against the traffic on the other side
                y, yaw = layout.kerb_left_y_m - 0.6, np.pi
        elif as_objects:  # ahead of the ego, at the ego lane's speed: never overtaken
            y, yaw = layout.lanes[0].y_m - layout.lane_width_m / 2 + 0.6, 0.0
            speed, x_from = ego_lane_speed, 8.0
        else:
            continue
        actor = make("Cyclist", rng.uniform(x_from, x_hi), y + rng.normal(0, 0.1),
                     yaw + rng.normal(0, 0.04), speed)
        if not _near_cross(layout, actor.x_m, 1.0):
            placed.place(actor)
    if as_objects:  # an object frame's road crossers, waiting at the kerb instead
        for _ in range(rng.poisson(_CROSSING_PROBABILITY * (x_hi - x_lo) / _CROSSING_SPAN_M)):
            side = 1.0 if rng.random() < 0.5 else -1.0
            kerb = layout.kerb_left_y_m if side > 0 else layout.kerb_right_y_m
            actor = make("Pedestrian", rng.uniform(x_lo, x_hi), kerb + side * 0.5,
                         rng.uniform(-np.pi, np.pi), 0.0)
            actor.z_m = layout.kerb_height_m
            placed.place(actor)
    if not moving and rng.random() < _CROSSING_PROBABILITY:  # someone crossing the road
        x = rng.uniform(6.0, 6.0 + _CROSSING_SPAN_M)
        if len(layout.crosswalk) and rng.random() < 0.6:
            x = float(layout.crosswalk[0, :2].mean())
        y = rng.uniform(layout.kerb_right_y_m + 0.5, layout.kerb_left_y_m - 0.5)
        yaw = np.pi / 2 if rng.random() < 0.5 else -np.pi / 2
        placed.place(make("Pedestrian", x, y, yaw + rng.normal(0, 0.1), 1.3))


def sample_actors(rng: np.random.Generator, config: SynthConfig, layout: RoadLayout,
                  ego_speed_mps: float, duration_s: float, x_lo: float, x_hi: float,
                  ) -> list[Actor]:
    """All actors of a world whose labelled region spans x in [x_lo, x_hi].

    ``duration_s > 0`` places them for a drive of that length (see the module notes).
    """
    placed = _ActorSet()
    moving = duration_s > 0

    def make(kind: str, x: float, y: float, yaw: float, speed: float) -> Actor:
        return make_actor(rng, kind, x, y, yaw, speed)

    ego_lane_speed = _lane_traffic(rng, config, layout, placed, make, x_lo, x_hi,
                                   ego_speed_mps, duration_s)
    _cross_traffic(rng, config, layout, placed, make)
    _walkers(rng, config, layout, placed, make, x_lo, x_hi, moving, ego_lane_speed)
    _parked_rows(rng, config, layout, placed, make, x_lo, x_hi)
    return placed.actors
