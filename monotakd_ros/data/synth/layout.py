"""The road layout: lanes, parking strips, kerbs, sidewalks, markings and a cross street.

The road runs along the world x axis; y points left. The ego lane is centred on y = 0 and
traffic keeps right, so lanes with ``direction = -1`` (oncoming) lie at positive y.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ASPHALT_REFLECT = 0.16
MARKING_REFLECT = 0.65
TERRAIN_REFLECT = 0.32


@dataclass(frozen=True)
class Lane:
    """A driving lane: lateral centre and travel direction along x (+1 or -1)."""

    y_m: float
    direction: int


@dataclass(frozen=True)
class LineMarking:
    """A painted line along x at lateral ``y_m``; ``dash_m = 0`` means a solid line."""

    y_m: float
    width_m: float
    dash_m: float
    gap_m: float


@dataclass(frozen=True, eq=False)
class RoadLayout:
    """Cross-section and extent of the street the world is built around."""

    kind: str  # "residential", "city" or "suburban"
    x_min_m: float
    x_max_m: float
    lane_width_m: float
    lanes: tuple[Lane, ...]  # ego lane first
    bike_lane_y_m: float | None  # centre of the bike lane on the right, if any
    parking_right_y_m: float | None  # centre of the right parking strip, if any
    parking_left_y_m: float | None
    kerb_right_y_m: float
    kerb_left_y_m: float
    sidewalk_right_m: float  # widths
    sidewalk_left_m: float
    kerb_height_m: float
    cross_x_m: float | None  # centre of a cross street, if any
    cross_half_width_m: float
    lines: tuple[LineMarking, ...]
    crosswalk: np.ndarray  # (K, 4) x0 x1 y0 y1 zebra stripes

    def in_cross_street(self, x: np.ndarray) -> np.ndarray:
        """Whether world x lies within the cross street (always False without one)."""
        if self.cross_x_m is None:
            return np.zeros(np.shape(x), dtype=bool)
        return np.abs(np.asarray(x) - self.cross_x_m) < self.cross_half_width_m

    def ground_reflectivity(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """LiDAR reflectivity of the ground at world (x, y): asphalt, paint or terrain."""
        on_road = (y > self.kerb_right_y_m) & (y < self.kerb_left_y_m)
        on_road |= self.in_cross_street(x)
        reflect = np.where(on_road, ASPHALT_REFLECT, TERRAIN_REFLECT)
        painted = self.painted(x, y)
        return np.where(painted, MARKING_REFLECT, reflect)

    def painted(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether world (x, y) lies on a lane line or a zebra stripe."""
        painted = np.zeros(np.shape(x), dtype=bool)
        free = ~self.in_cross_street(x)
        for line in self.lines:
            on = np.abs(y - line.y_m) < line.width_m / 2
            if line.dash_m > 0:
                on &= np.mod(x, line.dash_m + line.gap_m) < line.dash_m
            painted |= on & free
        if len(self.crosswalk):
            x0, x1, y0, y1 = self.crosswalk.T
            near = (x > x0.min()) & (x < x1.max())
            if near.any():
                xs, ys = x[near, None], y[near, None]
                painted[near] |= np.any((xs > x0) & (xs < x1) & (ys > y0) & (ys < y1), axis=1)
        return painted


def sample_layout(rng: np.random.Generator, x_min_m: float, x_max_m: float) -> RoadLayout:
    """Draw a street: residential, city or suburban, with or without a cross street."""
    kind = str(rng.choice(["residential", "city", "suburban"], p=[0.5, 0.3, 0.2]))
    lane_w = float(rng.uniform(2.9, 3.6))
    lanes_right = 2 if (kind == "city" and rng.random() < 0.35) else 1
    lanes_left = 0 if (kind == "residential" and rng.random() < 0.15) else 1
    if kind == "city" and lanes_right == 2 and rng.random() < 0.5:
        lanes_left = 2
    ego_lane = int(rng.integers(0, lanes_right))
    right_lanes = [Lane(y_m=(ego_lane - i) * lane_w, direction=1) for i in range(lanes_right)]
    right_edge = right_lanes[-1].y_m - lane_w / 2
    left_start = right_lanes[0].y_m + lane_w / 2
    left_lanes = [Lane(y_m=left_start + (i + 0.5) * lane_w, direction=-1)
                  for i in range(lanes_left)]
    left_edge = left_start + lanes_left * lane_w
    ego = right_lanes[ego_lane]
    lanes = (ego, *[lane for lane in right_lanes if lane is not ego], *left_lanes)

    lines = []
    if lanes_left:
        centre_dash = 0.0 if rng.random() < 0.3 else 3.0
        lines.append(LineMarking(left_start, 0.12, centre_dash, 6.0))
    for i in range(1, lanes_right):
        lines.append(LineMarking(right_lanes[i].y_m + lane_w / 2, 0.12, 3.0, 6.0))
    for i in range(1, lanes_left):
        lines.append(LineMarking(left_start + i * lane_w, 0.12, 3.0, 6.0))

    bike_y = None
    if rng.random() < (0.5 if kind != "suburban" else 0.2):
        bike_w = float(rng.uniform(1.3, 1.7))
        lines.append(LineMarking(right_edge, 0.15, 0.0, 0.0))
        bike_y = right_edge - bike_w / 2
        right_edge -= bike_w
    elif kind == "suburban" or rng.random() < 0.3:
        lines.append(LineMarking(right_edge + 0.2, 0.12, 0.0, 0.0))
    parking_p = {"residential": 0.85, "city": 0.6, "suburban": 0.15}[kind]
    park_r = park_l = None
    if rng.random() < parking_p:
        park_r = right_edge - 1.1
        right_edge -= 2.2
    if lanes_left and rng.random() < parking_p * 0.8:
        park_l = left_edge + 1.1
        left_edge += 2.2
    kerb_h = float(rng.uniform(0.1, 0.17))
    walk = {"residential": (2.0, 3.5), "city": (3.0, 5.5), "suburban": (2.0, 3.0)}[kind]

    cross_x, cross_hw = None, 0.0
    crosswalk = np.zeros((0, 4))
    if kind != "suburban" and rng.random() < 0.35:
        cross_hw = float(rng.uniform(3.5, 5.5))
        cross_x = float(rng.uniform(18.0, min(55.0, x_max_m - 30.0)))
        zebra_x1 = cross_x - cross_hw - 1.0
        ys = np.arange(right_edge + 0.4, left_edge - 0.4, 1.0)
        crosswalk = np.stack([np.full(len(ys), zebra_x1 - 3.0), np.full(len(ys), zebra_x1),
                              ys, ys + 0.5], axis=1)
    return RoadLayout(
        kind=kind, x_min_m=x_min_m, x_max_m=x_max_m, lane_width_m=lane_w, lanes=lanes,
        bike_lane_y_m=bike_y, parking_right_y_m=park_r, parking_left_y_m=park_l,
        kerb_right_y_m=right_edge, kerb_left_y_m=left_edge,
        sidewalk_right_m=float(rng.uniform(*walk)), sidewalk_left_m=float(rng.uniform(*walk)),
        kerb_height_m=kerb_h, cross_x_m=cross_x, cross_half_width_m=cross_hw,
        lines=tuple(lines), crosswalk=crosswalk,
    )
