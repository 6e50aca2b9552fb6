"""Static world geometry around the road: ground paint, sidewalks, buildings and street furniture.

Long things (sidewalks, facades, hedges) are cut into pieces of at most ``_PIECE_M`` along their
length. Each piece is its own group, which keeps the painter's algorithm right (a long facade
would otherwise be drawn over a car parked in front of its far end) and keeps every
primitive's LiDAR window small.
"""

from __future__ import annotations

import numpy as np

from monotakd_ros.data.synth.layout import RoadLayout
from monotakd_ros.data.synth.primitives import (
    FACE_BACK,
    FACE_FRONT,
    FACE_LEFT,
    FACE_RIGHT,
    PrimitiveBuilder,
    face_quads,
)

_PIECE_M = 8.0
_VISUAL_MARGIN_M = 50.0  # geometry beyond the LiDAR's reach that the camera still sees


def bgr(r: float, g: float, b: float) -> np.ndarray:
    """An RGB colour written the way people read it, stored as BGR."""
    return np.array([b, g, r], dtype=np.float64)


FACADE_COLORS = [bgr(222, 208, 180), bgr(232, 230, 222), bgr(190, 188, 182), bgr(165, 95, 72),
                 bgr(226, 204, 140), bgr(205, 160, 140), bgr(120, 118, 116), bgr(200, 190, 160)]
ROOF_COLORS = [bgr(120, 60, 50), bgr(70, 70, 75), bgr(95, 80, 70)]
LEAF_COLORS = [bgr(60, 92, 45), bgr(82, 112, 52), bgr(48, 74, 40), bgr(95, 115, 60)]
TRUNK_BGR = bgr(88, 70, 52)
POLE_BGR = bgr(112, 114, 118)
SIGN_COLORS = [bgr(30, 70, 160), bgr(200, 30, 30), bgr(235, 235, 235), bgr(230, 190, 40)]


def _pieces(start: float, stop: float) -> list[tuple[float, float]]:
    """Split [start, stop] into near-equal pieces no longer than _PIECE_M."""
    count = max(1, int(np.ceil((stop - start) / _PIECE_M)))
    edges = np.linspace(start, stop, count + 1)
    return list(zip(edges[:-1], edges[1:], strict=True))


def _outside_cross(layout: RoadLayout, x0: float, x1: float, margin: float) -> list[
        tuple[float, float]]:
    """[x0, x1] minus the cross street (widened by ``margin``)."""
    if layout.cross_x_m is None:
        return [(x0, x1)]
    lo = layout.cross_x_m - layout.cross_half_width_m - margin
    hi = layout.cross_x_m + layout.cross_half_width_m + margin
    spans = [(x0, min(x1, lo)), (max(x0, hi), x1)]
    return [(a, b) for a, b in spans if b - a > 0.5]


def _ground_box(builder: PrimitiveBuilder, x0: float, x1: float, y0: float, y1: float, z: float,
                color: np.ndarray) -> np.ndarray:
    """(4, 3) world quad x0..x1 by y0..y1 at height z, counter-clockwise from above."""
    quad = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]])
    builder.add_ground_quad(quad, color)
    return quad


def add_ground_paint(builder: PrimitiveBuilder, layout: RoadLayout,
                     rng: np.random.Generator) -> np.ndarray:
    """Terrain, asphalt, patches and markings; returns the asphalt colour."""
    far = layout.x_max_m + 400.0
    grass = bgr(*rng.uniform([70, 95, 50], [110, 125, 70]))
    _ground_box(builder, layout.x_min_m - 200, far, -400, 400, 0.0, grass)
    grey = rng.uniform(92, 128)
    asphalt = np.array([grey + 4, grey + 2, grey])
    _ground_box(builder, layout.x_min_m - 200, far, layout.kerb_right_y_m,
                layout.kerb_left_y_m, 0.0, asphalt)
    if layout.cross_x_m is not None:
        c, hw = layout.cross_x_m, layout.cross_half_width_m
        _ground_box(builder, c - hw, c + hw, -400, 400, 0.0, asphalt)
    for _ in range(int(rng.integers(0, 6))):  # repaired or wet patches
        x0 = rng.uniform(0, 80)
        y0 = rng.uniform(layout.kerb_right_y_m, layout.kerb_left_y_m - 1)
        shade = asphalt * rng.uniform(0.8, 1.12)
        _ground_box(builder, x0, x0 + rng.uniform(1, 8), y0,
                    min(y0 + rng.uniform(0.5, 3), layout.kerb_left_y_m), 0.0, shade)
    paint = bgr(228, 228, 222)
    for line in layout.lines:
        for a, b in _outside_cross(layout, layout.x_min_m - 100, far, 0.0):
            if line.dash_m <= 0:
                _ground_box(builder, a, b, line.y_m - line.width_m / 2,
                            line.y_m + line.width_m / 2, 0.0, paint)
                continue
            period = line.dash_m + line.gap_m
            for k in range(int(np.ceil(a / period)), int(np.floor(b / period))):
                _ground_box(builder, k * period, k * period + line.dash_m,
                            line.y_m - line.width_m / 2, line.y_m + line.width_m / 2, 0.0, paint)
    for x0, x1, y0, y1 in layout.crosswalk:
        _ground_box(builder, x0, x1, y0, y1, 0.0, paint)
    return asphalt


def add_sidewalks(builder: PrimitiveBuilder, layout: RoadLayout, rng: np.random.Generator,
                  ) -> None:
    """Raised sidewalks beside the kerbs (and along the cross street), drawn with the ground."""
    top = bgr(*rng.uniform([150, 148, 142], [192, 190, 184]))
    if rng.random() < 0.25:
        top = bgr(*rng.uniform([160, 120, 105], [185, 140, 125]))  # red paving
    kerb = bgr(176, 176, 172)
    h = layout.kerb_height_m
    sides = ((layout.kerb_right_y_m - layout.sidewalk_right_m, layout.kerb_right_y_m, FACE_LEFT),
             (layout.kerb_left_y_m, layout.kerb_left_y_m + layout.sidewalk_left_m, FACE_RIGHT))
    x_far = layout.x_max_m + _VISUAL_MARGIN_M
    for y0, y1, kerb_face in sides:
        colors = np.tile(top, (6, 1))
        colors[kerb_face] = kerb
        for a, b in _outside_cross(layout, layout.x_min_m, x_far, 0.0):
            for p0, p1 in _pieces(a, b):
                group = builder.new_group(layer=0)
                builder.add_box(np.array([(p0 + p1) / 2, (y0 + y1) / 2, h / 2]),
                                np.array([p1 - p0, y1 - y0, h]), 0.0, colors, group,
                                reflect=0.3)
    if layout.cross_x_m is None:
        return
    c, hw = layout.cross_x_m, layout.cross_half_width_m
    width = 2.5
    spans = ((layout.kerb_left_y_m + layout.sidewalk_left_m, layout.kerb_left_y_m + 60.0),
             (layout.kerb_right_y_m - 60.0, layout.kerb_right_y_m - layout.sidewalk_right_m))
    for y_lo, y_hi in spans:
        for x0 in (c - hw - width, c + hw):
            for p0, p1 in _pieces(y_lo, y_hi):
                group = builder.new_group(layer=0)
                builder.add_box(np.array([x0 + width / 2, (p0 + p1) / 2, h / 2]),
                                np.array([width, p1 - p0, h]), 0.0, top, group, reflect=0.3)


def add_building(builder: PrimitiveBuilder, x0: float, x1: float, y_front: float,
                 depth: float, height: float, side: int, rng: np.random.Generator,
                 kind: str) -> None:
    """A building whose facade faces the road at ``y_front`` (side -1: right, +1: left)."""
    color = FACADE_COLORS[int(rng.integers(len(FACADE_COLORS)))] * rng.uniform(0.9, 1.05)
    glass = bgr(*rng.uniform([40, 48, 55], [95, 105, 115]))
    face = FACE_LEFT if side < 0 else FACE_RIGHT  # the face looking at the road
    y_centre = y_front + side * depth / 2
    floor_h = rng.uniform(2.8, 3.4)
    win_w, win_h = rng.uniform(0.9, 1.6), rng.uniform(1.1, 1.6)
    spacing = rng.uniform(2.4, 3.6)
    shop = kind == "city" and rng.random() < 0.6
    roof = ROOF_COLORS[int(rng.integers(len(ROOF_COLORS)))] if kind != "city" else None
    pieces = _pieces(x0, x1)
    for index, (p0, p1) in enumerate(pieces):
        group = builder.new_group()
        centre = np.array([(p0 + p1) / 2, y_centre, height / 2])
        half = np.array([(p1 - p0) / 2, depth / 2, height / 2])
        box = builder.add_box(centre, 2 * half, 0.0, color, group, reflect=0.35)
        if roof is not None:
            builder.add_box(np.array([centre[0], y_centre, height + 0.2]),
                            np.array([p1 - p0, depth + 0.5, 0.4]), 0.0, roof, group, order=1,
                            reflect=0.2)
        n_cols = max(1, int((p1 - p0) / spacing))
        builder.add_facade(box, face, (win_w, win_h, n_cols, floor_h, 1 if shop else 0), glass)
        # The end walls of the building, seen when looking along the street.
        end_cols = max(1, int(depth / spacing))
        if index == 0:
            builder.add_facade(box, FACE_BACK, (win_w, win_h, end_cols, floor_h, 0), glass)
        if index == len(pieces) - 1:
            builder.add_facade(box, FACE_FRONT, (win_w, win_h, end_cols, floor_h, 0), glass)
        if shop:
            front = face_quads(centre, half, 0.0, face, [(-half[0] + 0.4, half[0] - 0.4)],
                               [(-height / 2 + 0.3, -height / 2 + 2.8)])
            builder.add_decals(box, face, front, glass * 0.8)


def add_tree(builder: PrimitiveBuilder, x: float, y: float, rng: np.random.Generator,
             scale: float = 1.0) -> None:
    """A trunk with a crown of a few overlapping spheres."""
    group = builder.new_group()
    trunk_h = rng.uniform(1.8, 3.2) * scale
    builder.add_box(np.array([x, y, trunk_h / 2]), np.array([0.3, 0.3, trunk_h]), 0.0,
                    TRUNK_BGR, group, reflect=0.3)
    leaf = LEAF_COLORS[int(rng.integers(len(LEAF_COLORS)))]
    radius = rng.uniform(1.2, 2.2) * scale
    for _ in range(int(rng.integers(2, 5))):
        offset = rng.normal(0, 0.45 * radius, 3)
        r = radius * rng.uniform(0.7, 1.0)
        centre = np.array([x + offset[0], y + offset[1], trunk_h + r * 0.8 + abs(offset[2])])
        builder.add_sphere(centre, r, leaf * rng.uniform(0.85, 1.15), group, reflect=0.45)


def add_lamp(builder: PrimitiveBuilder, x: float, y: float, towards_y: float,
             rng: np.random.Generator) -> None:
    """A street lamp: a pole and an arm over the road with a lamp head."""
    group = builder.new_group()
    h = rng.uniform(6.0, 8.0)
    builder.add_box(np.array([x, y, h / 2]), np.array([0.16, 0.16, h]), 0.0, POLE_BGR, group,
                    reflect=0.5)
    arm = rng.uniform(1.0, 2.0)
    builder.add_box(np.array([x, y + towards_y * arm / 2, h - 0.1]), np.array([0.1, arm, 0.1]),
                    0.0, POLE_BGR, group, reflect=0.5)
    builder.add_box(np.array([x, y + towards_y * arm, h - 0.25]), np.array([0.5, 0.3, 0.2]),
                    0.0, bgr(200, 200, 190), group, order=1, reflect=0.5)


def add_sign(builder: PrimitiveBuilder, x: float, y: float, rng: np.random.Generator) -> None:
    """A sign post with a plate facing the traffic."""
    group = builder.new_group()
    h = rng.uniform(2.2, 2.8)
    builder.add_box(np.array([x, y, h / 2]), np.array([0.08, 0.08, h]), 0.0, POLE_BGR, group,
                    reflect=0.5)
    plate = SIGN_COLORS[int(rng.integers(len(SIGN_COLORS)))]
    builder.add_box(np.array([x - 0.06, y, h + 0.3]), np.array([0.04, 0.6, 0.6]), 0.0, plate,
                    group, order=1, reflect=0.9)


def add_hedge(builder: PrimitiveBuilder, x0: float, x1: float, y: float,
              rng: np.random.Generator) -> None:
    """A hedge (or low wall) along x."""
    h = rng.uniform(0.7, 1.6)
    is_wall = rng.random() < 0.35
    color = bgr(150, 140, 125) * rng.uniform(0.8, 1.1) if is_wall else LEAF_COLORS[
        int(rng.integers(len(LEAF_COLORS)))] * 0.9
    width = 0.3 if is_wall else rng.uniform(0.6, 1.0)
    for p0, p1 in _pieces(x0, x1):
        group = builder.new_group()
        builder.add_box(np.array([(p0 + p1) / 2, y, h / 2]), np.array([p1 - p0, width, h]), 0.0,
                        color, group, reflect=0.3 if is_wall else 0.45)


def add_street_clutter(builder: PrimitiveBuilder, layout: RoadLayout,
                       rng: np.random.Generator) -> list[tuple[float, float, float]]:
    """Buildings, yards and street furniture on both sides.

    Returns the footprints (x, y, radius) of furniture standing on the sidewalks, which
    pedestrians must avoid.
    """
    furniture: list[tuple[float, float, float]] = []
    x_lo, x_hi = layout.x_min_m, layout.x_max_m + _VISUAL_MARGIN_M
    tree_lined = rng.random() < (0.6 if layout.kind != "city" else 0.3)
    for side in (-1, 1):
        kerb = layout.kerb_left_y_m if side > 0 else layout.kerb_right_y_m
        walk = layout.sidewalk_left_m if side > 0 else layout.sidewalk_right_m
        outer = kerb + side * walk
        furniture_y = kerb + side * 0.55
        # Street furniture next to the kerb.
        x = x_lo + rng.uniform(0, 10)
        lamp_every = rng.uniform(22, 40)
        next_lamp = x_lo + rng.uniform(0, lamp_every)
        while x < x_hi:
            for a, b in _outside_cross(layout, x - 1, x + 1, 2.0):
                if b - a < 1.9:
                    continue
                if x >= next_lamp:
                    add_lamp(builder, x, furniture_y, -side, rng)
                    furniture.append((x, furniture_y, 0.3))
                    next_lamp = x + lamp_every
                elif tree_lined and rng.random() < 0.75:
                    add_tree(builder, x, furniture_y, rng)
                    furniture.append((x, furniture_y, 0.4))
                elif rng.random() < 0.15:
                    add_sign(builder, x, furniture_y, rng)
                    furniture.append((x, furniture_y, 0.3))
            x += rng.uniform(7, 14)
        _add_frontage(builder, layout, side, outer, rng)
    return furniture


def _add_frontage(builder: PrimitiveBuilder, layout: RoadLayout, side: int, outer: float,
                  rng: np.random.Generator) -> None:
    """Buildings, yards and trees beyond one sidewalk's outer edge."""
    x_lo, x_hi = layout.x_min_m, layout.x_max_m + _VISUAL_MARGIN_M
    kind = layout.kind
    x = x_lo
    while x < x_hi:
        if kind == "city":
            width, gap = rng.uniform(12, 30), rng.choice([0.0, 0.0, rng.uniform(2, 6)])
            setback, depth, height = rng.uniform(0, 0.5), rng.uniform(10, 16), rng.uniform(9, 22)
        elif kind == "residential":
            width, gap = rng.uniform(8, 16), rng.uniform(3, 10)
            setback, depth, height = rng.uniform(1.5, 7), rng.uniform(8, 12), rng.uniform(5, 10)
        else:
            width, gap = rng.uniform(8, 14), rng.uniform(15, 45)
            setback, depth, height = rng.uniform(8, 25), rng.uniform(8, 12), rng.uniform(4, 8)
        for a, b in _outside_cross(layout, x, x + width, 3.0):
            add_building(builder, a, b, outer + side * setback, depth, height, side, rng, kind)
        if setback > 1.5 and rng.random() < 0.5:
            add_hedge(builder, x - gap, x + width, outer + side * 0.6, rng)
        for _ in range(int(rng.integers(0, 3))):
            tx = x + width + rng.uniform(0, max(gap, 0.5))
            ty = outer + side * rng.uniform(1.5, max(2.0, setback + 4))
            if not layout.in_cross_street(np.array(tx)).item():
                add_tree(builder, tx, ty, rng, scale=rng.uniform(0.8, 1.4))
        x += width + gap
    if kind == "suburban":
        for _ in range(int(rng.integers(4, 12))):  # tree lines across the fields
            add_tree(builder, rng.uniform(x_lo, x_hi), outer + side * rng.uniform(10, 45), rng,
                     scale=rng.uniform(1.0, 1.8))
