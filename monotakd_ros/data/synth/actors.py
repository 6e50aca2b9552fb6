"""Labelled actors (Car, Van, Pedestrian, Cyclist) and the parts they are built from.

Every part lies inside the actor's labelled box (length along the heading, width, height), so
the label is exactly the box around the geometry the camera and the LiDAR see. Parts are built
in the actor's local frame (x forward, y left, z up, origin at the bottom centre).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monotakd_ros.data.synth.primitives import (
    FACE_BACK,
    FACE_FRONT,
    FACE_LEFT,
    FACE_RIGHT,
    SHAPE_RING,
    SHAPE_WHEEL,
    PrimitiveBuilder,
    local_face_quads,
    rotate_yaw,
)

GLASS_BGR = np.array([52.0, 44.0, 38.0])
TYRE_BGR = np.array([28.0, 28.0, 30.0])
HEADLIGHT_BGR = np.array([225.0, 232.0, 235.0])
TAILLIGHT_BGR = np.array([30.0, 30.0, 170.0])
PLATE_BGR = np.array([225.0, 225.0, 225.0])
GRILLE_BGR = np.array([35.0, 35.0, 38.0])
BUMPER_BGR = np.array([45.0, 45.0, 48.0])
SKIN_BGR = np.array([[120.0, 150.0, 200.0], [90.0, 115.0, 160.0], [60.0, 80.0, 110.0]])
_GLASS_DROPOUT = 0.65  # a LiDAR beam mostly passes through glass


@dataclass
class Actor:
    """One labelled object: its class, size (m), motion in the world and look."""

    kind: str  # "Car", "Van", "Pedestrian", "Cyclist"
    length_m: float
    width_m: float
    height_m: float
    x_m: float  # bottom centre at t = 0, world frame
    y_m: float
    yaw_rad: float
    speed_mps: float
    color: np.ndarray  # (3,) main BGR colour (paint, shirt)
    color2: np.ndarray  # (3,) second BGR colour (trousers, bicycle)
    style: np.ndarray  # (8,) uniforms in [0, 1) fixing proportions and details
    z_m: float = 0.0  # height of the surface it stands on (a sidewalk is above the road)

    def pose_at(self, time_s: float) -> tuple[float, float, float]:
        """(x, y, yaw) of the bottom centre after ``time_s`` of straight motion."""
        step = self.speed_mps * time_s
        return (self.x_m + step * np.cos(self.yaw_rad), self.y_m + step * np.sin(self.yaw_rad),
                self.yaw_rad)

    @property
    def size_lwh(self) -> np.ndarray:
        """(3,) length, width, height."""
        return np.array([self.length_m, self.width_m, self.height_m])


class _Placer:
    """Adds parts given in an actor's local frame to a builder, in world coordinates."""

    def __init__(self, builder: PrimitiveBuilder, group: int, x: float, y: float,
                 yaw: float, z: float = 0.0) -> None:
        self.builder, self.group, self.yaw = builder, group, yaw
        self.origin = np.array([x, y, z])
        self._decals: list[tuple[float, ...]] = []
        # Plain floats: parts are placed one by one, where tiny numpy arrays cost more.
        self._x, self._y, self._z = float(x), float(y), float(z)
        self.cos, self.sin = float(np.cos(yaw)), float(np.sin(yaw))

    def world(self, local: tuple[float, float, float]) -> tuple[float, float, float]:
        """Local point -> world point."""
        lx, ly, lz = local
        return (self._x + lx * self.cos - ly * self.sin, self._y + lx * self.sin + ly * self.cos,
                self._z + lz)

    def box(self, x0: float, x1: float, y0: float, y1: float, z0: float, z1: float,
            color: np.ndarray, order: int = 0, reflect: float | np.ndarray = 0.3,
            dropout: float | np.ndarray = 0.0, shape: int = 0) -> int:
        """Add a box given by its local extents."""
        centre = self.world(((x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2))
        return self.builder.add_box(centre, (x1 - x0, y1 - y0, z1 - z0), self.yaw, color,
                                    self.group, order, reflect, dropout, shape)

    def decals(self, box: int, center_local: np.ndarray, half: np.ndarray,
               specs: list[tuple[int, float, float, float, float, np.ndarray]]) -> None:
        """Queue decals (face, u0, u1, v0, v1, colour[, top inset at u0, at u1]) on a box."""
        for face, u0, u1, v0, v1, color, *inset in specs:
            lo, hi = inset if inset else (0.0, 0.0)
            self._decals.append((box, *center_local, *half, face, u0, u1, v0, v1, *color, lo,
                                 hi))

    def flush(self) -> None:
        """Add every queued decal to the builder in one go."""
        if not self._decals:
            return
        spec = np.array(self._decals)  # (K, 17)
        faces = spec[:, 7].astype(np.int64)
        local = local_face_quads(spec[:, 1:4], spec[:, 4:7], faces, spec[:, 8:10],
                                 spec[:, 10:12], top_inset=spec[:, 15:17])
        quads = rotate_yaw(local, self.yaw) + self.origin
        self.builder.add_decals(spec[:, 0].astype(np.int64), faces, quads, spec[:, 12:15])
        self._decals = []


def _paint_reflectivity(color: np.ndarray) -> float:
    """LiDAR reflectivity of car paint: bright paint returns more of the 905 nm pulse."""
    return float(0.12 + 0.45 * np.mean(color) / 255.0)


def _wheels(p: _Placer, xs: tuple[float, float], wheel_y: float, radius: float,
            tyre_w: float) -> None:
    for x in xs:
        for side in (1.0, -1.0):
            p.box(x - radius, x + radius, side * wheel_y - tyre_w / 2, side * wheel_y + tyre_w / 2,
                  0.0, 2 * radius, TYRE_BGR, order=0, reflect=0.05, dropout=0.3,
                  shape=SHAPE_WHEEL)


def _glass_box(p: _Placer, x0: float, x1: float, half_w: float, z0: float, z1: float,
               color: np.ndarray, reflect: float, windscreen: bool, rear_window: bool,
               side_from_x: float, rake_m: float = 0.6) -> None:
    """A painted box with inset glass: windscreen, rear window, side windows from x on.

    The side windows' outer edges lean in by ``rake_m`` per metre of height, which draws a
    sloping windscreen and rear window on the box. Seen by the LiDAR, glazed faces mostly let
    the beam through.
    """
    drop = np.array([_GLASS_DROPOUT if windscreen else 0.0, _GLASS_DROPOUT if rear_window
                     else 0.0, _GLASS_DROPOUT, _GLASS_DROPOUT, 0.0, 0.0])
    box = p.box(x0, x1, -half_w, half_w, z0, z1, color, order=2, reflect=reflect, dropout=drop)
    half = np.array([(x1 - x0) / 2, half_w, (z1 - z0) / 2])
    cx = (x0 + x1) / 2
    frame = 0.07
    v = (-half[2] + 0.05, half[2] - 0.1)  # a painted roof line above the glass
    rake = rake_m * (v[1] - v[0])  # how far a raked window edge leans over its height
    specs: list[tuple] = []
    if windscreen:
        specs.append((FACE_FRONT, -half_w + frame, half_w - frame, *v, GLASS_BGR, 0.1, 0.1))
    if rear_window:
        specs.append((FACE_BACK, -half_w + frame, half_w - frame, *v, GLASS_BGR * 1.15, 0.1,
                      0.1))
    # Side windows from side_from_x to the front, split by a pillar; u = -x on the left face,
    # so the front of the car is at u0 there and at u1 on the right face.
    split = 0.5 * (max(side_from_x, x0 + frame) + x1 - frame)
    back, front = (max(side_from_x, x0 + frame), split - 0.05), (split + 0.05, x1 - frame)
    for (lo, hi), lean_back, lean_front in ((back, rake * rear_window, 0.0),
                                            (front, 0.0, rake * windscreen)):
        if hi - lo > 0.15 + lean_back + lean_front:
            specs.append((FACE_LEFT, cx - hi, cx - lo, *v, GLASS_BGR, lean_front, lean_back))
            specs.append((FACE_RIGHT, lo - cx, hi - cx, *v, GLASS_BGR, lean_back, lean_front))
    p.decals(box, np.array([cx, 0.0, (z0 + z1) / 2]), half, specs)


def add_car(p: _Placer, actor: Actor) -> None:
    """A car: wheels, a body and a narrower glazed cabin, with lights, plates and bumpers."""
    length, width, height = actor.length_m, actor.width_m, actor.height_m
    s = actor.style
    wheel_r = min(0.29 + 0.06 * s[0], 0.24 * height)
    body_bottom = 0.2 + 0.1 * s[1]
    body_top = height * (0.56 + 0.06 * s[2])
    hatch = s[3] < 0.45  # hatchback/estate: the cabin reaches the rear
    if hatch:
        cabin_len = length * (0.56 + 0.1 * s[4])
        cabin_x0 = -length / 2 + 0.12
    else:
        cabin_len = length * (0.46 + 0.1 * s[4])
        cabin_x0 = -0.05 * length - cabin_len / 2
    axle = length / 2 - max(0.72, 0.21 * length)
    _wheels(p, (axle, -axle + 0.05), width / 2 - 0.12, wheel_r, 0.22)
    paint_reflect = _paint_reflectivity(actor.color)
    body = p.box(-length / 2, length / 2, -width / 2, width / 2, body_bottom, body_top,
                 actor.color, order=1, reflect=paint_reflect)
    _glass_box(p, cabin_x0, cabin_x0 + cabin_len, width * (0.42 + 0.03 * s[5]), body_top,
               height, actor.color, paint_reflect, True, True, cabin_x0)
    _add_car_lights(p, body, length, width, body_bottom, body_top)


def _add_car_lights(p: _Placer, body: int, length: float, width: float, z0: float,
                    z1: float) -> None:
    """Headlights, grille, tail lights, number plates and bumpers on the body's ends."""
    half = np.array([length / 2, width / 2, (z1 - z0) / 2])
    hz = half[2]
    lamp_v = (hz * 0.2, hz * 0.75)
    bumper_v = (-hz, -hz * 0.45)
    specs = []
    for face, lamp in ((FACE_FRONT, HEADLIGHT_BGR), (FACE_BACK, TAILLIGHT_BGR)):
        specs.append((face, -width / 2, width / 2, *bumper_v, BUMPER_BGR))
        specs.append((face, -width / 2 + 0.08, -width / 2 + 0.33, *lamp_v, lamp))
        specs.append((face, width / 2 - 0.33, width / 2 - 0.08, *lamp_v, lamp))
        specs.append((face, -0.26, 0.26, -hz * 0.4, -hz * 0.02, PLATE_BGR))
    specs.append((FACE_FRONT, -width / 2 + 0.4, width / 2 - 0.4, hz * 0.2, hz * 0.65,
                  GRILLE_BGR))
    p.decals(body, np.array([0.0, 0.0, (z0 + z1) / 2]), half, specs)


def add_van(p: _Placer, actor: Actor) -> None:
    """A van: wheels, a low front body and a tall box behind a glazed windscreen."""
    length, width, height = actor.length_m, actor.width_m, actor.height_m
    s = actor.style
    body_bottom = 0.28
    body_top = height * (0.42 + 0.06 * s[1])
    _wheels(p, (length / 2 - 0.8, -length / 2 + 1.0), width / 2 - 0.13, 0.32 + 0.04 * s[0],
            0.24)
    reflect = _paint_reflectivity(actor.color)
    body = p.box(-length / 2, length / 2, -width / 2, width / 2, body_bottom, body_top,
                 actor.color, order=1, reflect=reflect)
    box_x1 = length / 2 - 0.7 - 0.3 * s[2]
    # Only the cab is glazed at the sides; the cargo area behind it is plain.
    _glass_box(p, -length / 2, box_x1, width / 2 - 0.02, body_top, height, actor.color,
               reflect, True, s[3] < 0.5, box_x1 - 1.1)
    _add_car_lights(p, body, length, width, body_bottom, body_top)


def add_pedestrian(p: _Placer, actor: Actor, time_s: float) -> None:
    """A pedestrian: two legs, a torso, two arms and a head, swinging while walking."""
    length, width, height = actor.length_m, actor.width_m, actor.height_m
    s = actor.style
    stride = min(0.2, length / 2 - 0.08) if actor.speed_mps > 0.1 else 0.03
    phase = 2 * np.pi * (s[0] + time_s * actor.speed_mps / 1.4)
    swing = stride * np.sin(phase)
    leg_h = 0.47 * height
    torso_w = min(0.4, width - 0.2)
    for side, sign in ((0.09, 1.0), (-0.09, -1.0)):
        x = sign * swing
        p.box(x - 0.065, x + 0.065, side - 0.065, side + 0.065, 0.0, leg_h, actor.color2,
              reflect=0.25)
    torso_top = leg_h + 0.33 * height
    p.box(-0.12, 0.12, -torso_w / 2, torso_w / 2, leg_h - 0.03, torso_top, actor.color,
          reflect=0.35)
    for sign in (1.0, -1.0):
        y = sign * (torso_w / 2 + 0.05)
        x = -sign * swing * 0.6
        p.box(x - 0.045, x + 0.045, y - 0.04, y + 0.04, torso_top - 0.3 * height,
              torso_top - 0.02, actor.color, reflect=0.35)
    head_r = 0.105 * height / 1.73
    skin = SKIN_BGR[int(s[1] * len(SKIN_BGR)) % len(SKIN_BGR)]
    p.builder.add_sphere(p.world((0.0, 0.0, height - head_r)), head_r, skin,
                         p.group, order=1, reflect=0.3)


def add_cyclist(p: _Placer, actor: Actor, time_s: float) -> None:
    """A cyclist: two thin wheels, a frame of bars and a rider."""
    length, width, height = actor.length_m, actor.width_m, actor.height_m
    k = height / 1.73  # parts are designed for a 1.73 m cyclist
    wheel_r = min(0.34, length / 4)
    hub = length / 2 - wheel_r
    for x in (hub, -hub):
        p.box(x - wheel_r, x + wheel_r, -0.025, 0.025, 0.0, 2 * wheel_r, TYRE_BGR,
              reflect=0.1, dropout=0.7, shape=SHAPE_RING)
    frame = actor.color2
    bar = 0.02
    seat_x = -0.22
    p.box(seat_x, hub - 0.08, -bar, bar, 0.78 * k, 0.82 * k, frame, reflect=0.3)  # top tube
    p.box(seat_x - bar, seat_x + bar, -bar, bar, wheel_r, 0.88 * k, frame, reflect=0.3)
    p.box(hub - 0.08, hub - 0.04, -bar, bar, wheel_r, 1.0 * k, frame, reflect=0.3)  # fork
    p.box(-hub, seat_x, -bar, bar, wheel_r - 0.02, wheel_r + 0.02, frame, reflect=0.3)
    p.box(hub - 0.12, hub - 0.04, -0.24, 0.24, 0.98 * k, 1.02 * k, TYRE_BGR, reflect=0.2)
    pedal = 0.12 * np.sin(2 * np.pi * (actor.style[0] + time_s * actor.speed_mps / 4.0))
    for side, sign in ((0.1, 1.0), (-0.1, -1.0)):
        x = sign * pedal - 0.05
        p.box(x - 0.07, x + 0.07, side - 0.06, side + 0.06, 0.3 * k, 0.92 * k, actor.color2 * 0.5,
              reflect=0.25)
    torso_w = min(0.38, width - 0.2)
    p.box(-0.3, -0.02, -torso_w / 2, torso_w / 2, 0.9 * k, 1.44 * k, actor.color, reflect=0.35)
    for sign in (1.0, -1.0):
        y = sign * (torso_w / 2 + 0.04)
        p.box(-0.05, hub - 0.1, y - 0.035, y + 0.035, 1.18 * k, 1.28 * k, actor.color,
              reflect=0.35)
    head_r = 0.11 * k
    skin = SKIN_BGR[int(actor.style[1] * len(SKIN_BGR)) % len(SKIN_BGR)]
    p.builder.add_sphere(p.world((-0.08, 0.0, height - head_r)), head_r, skin,
                         p.group, order=1, reflect=0.3)


def add_actor(builder: PrimitiveBuilder, actor_index: int, actor: Actor, time_s: float) -> int:
    """Add one actor's parts as a new group at its pose at ``time_s``; returns the group id."""
    group = builder.new_group(actor=actor_index, layer=1)
    p = _Placer(builder, group, *actor.pose_at(time_s), actor.z_m)
    if actor.kind == "Car":
        add_car(p, actor)
    elif actor.kind == "Van":
        add_van(p, actor)
    elif actor.kind == "Pedestrian":
        add_pedestrian(p, actor, time_s)
    else:
        add_cyclist(p, actor, time_s)
    p.flush()
    return group
