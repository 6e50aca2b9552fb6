"""Scene primitives of the synthetic world: upright oriented boxes and spheres.

Everything lives in the world frame W (x along the road, y left, z up, ground at z = 0). A box
turns only about z (``yaw_rad``); its local axes are x forward, y left, z up and its six faces are
numbered ``+x, -x, +y, -y, +z, -z``. A box's ``shape`` only changes how it is drawn (a wheel is
drawn as an octagonal disc across local y); the LiDAR always sees the box itself.

Primitives are grouped: a group is one labelled actor or one piece of clutter (a tree, a lamp
post). Groups are the unit of the painter's algorithm; ``order`` sorts parts inside a group, and
groups on layer 0 (sidewalks) are drawn with the ground, before everything standing on it.
Decals are flat coloured quads drawn on a box face (lights, plates); facades are grids of windows
on a box face, turned into quads only when the renderer sees them; ground quads are drawn on the
ground in the order given (road, markings). None of them is seen by the LiDAR.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np

SHAPE_BOX = 0
SHAPE_WHEEL = 1  # solid tyre: octagonal prism across local y
SHAPE_RING = 2  # bicycle wheel: octagon outline across local y

FACE_FRONT, FACE_BACK, FACE_LEFT, FACE_RIGHT, FACE_TOP, FACE_BOTTOM = range(6)
# Unit normals of the six faces in the box's local frame, in face order.
FACE_NORMALS_LOCAL = np.array(
    [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float64
)
# Corner signs (8, 3): corners 0-3 bottom, 4-7 top, counter-clockwise seen from above.
CORNER_SIGNS = np.array(
    [[1, 1, -1], [1, -1, -1], [-1, -1, -1], [-1, 1, -1],
     [1, 1, 1], [1, -1, 1], [-1, -1, 1], [-1, 1, 1]], dtype=np.float64
)
# Corner indices of each face, in face order.
FACE_CORNERS = np.array(
    [[0, 1, 5, 4], [2, 3, 7, 6], [3, 0, 4, 7], [1, 2, 6, 5], [4, 5, 6, 7], [0, 3, 2, 1]]
)
WHEEL_SIDES = 8


@dataclass
class Primitives:
    """Arrays of N boxes and M spheres in the world frame (colours are BGR in 0..255)."""

    box_center: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (N, 3) m
    box_half: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (N, 3) m
    box_yaw: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (N,) rad
    box_shape: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # (N,)
    box_color: np.ndarray = field(default_factory=lambda: np.zeros((0, 6, 3)))  # (N, 6, 3)
    box_reflect: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)))  # (N, 6) 0..1
    box_dropout: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)))  # (N, 6) 0..1
    box_group: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (N,)
    box_order: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (N,)
    sph_center: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (M, 3) m
    sph_radius: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (M,) m
    sph_color: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (M, 3)
    sph_reflect: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (M,) 0..1
    sph_group: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (M,)
    sph_order: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (M,)
    group_actor: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (G,) or -1
    group_layer: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (G,)
    decal_quad: np.ndarray = field(default_factory=lambda: np.zeros((0, 4, 3)))  # (K, 4, 3)
    decal_color: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (K, 3)
    decal_box: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (K,)
    decal_face: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (K,)
    ground_quad: np.ndarray = field(default_factory=lambda: np.zeros((0, 4, 3)))  # (Q, 4, 3)
    ground_color: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (Q, 3)
    facade_box: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (F,)
    facade_face: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (F,)
    # (F, 5) window width, window height, columns, floor height, first floor with windows
    facade_grid: np.ndarray = field(default_factory=lambda: np.zeros((0, 5)))
    facade_color: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (F, 3)

    @property
    def num_boxes(self) -> int:
        """Number of boxes."""
        return len(self.box_center)

    @property
    def num_groups(self) -> int:
        """Number of groups."""
        return len(self.group_actor)

    @property
    def num_spheres(self) -> int:
        """Number of spheres."""
        return len(self.sph_center)

    def box_axes(self) -> tuple[np.ndarray, np.ndarray]:
        """(N,) cos and sin of every box's yaw."""
        return np.cos(self.box_yaw), np.sin(self.box_yaw)

    def box_corners(self) -> np.ndarray:
        """(N, 8, 3) box corners in the world frame."""
        cos_yaw, sin_yaw = self.box_axes()
        local = CORNER_SIGNS[None] * self.box_half[:, None, :]  # (N, 8, 3)
        world = np.empty_like(local)
        world[..., 0] = local[..., 0] * cos_yaw[:, None] - local[..., 1] * sin_yaw[:, None]
        world[..., 1] = local[..., 0] * sin_yaw[:, None] + local[..., 1] * cos_yaw[:, None]
        world[..., 2] = local[..., 2]
        return world + self.box_center[:, None, :]

    def face_normals(self) -> np.ndarray:
        """(N, 6, 3) outward face normals in the world frame."""
        cos_yaw, sin_yaw = self.box_axes()
        n = FACE_NORMALS_LOCAL[None]  # (1, 6, 3)
        world = np.empty((self.num_boxes, 6, 3))
        world[..., 0] = n[..., 0] * cos_yaw[:, None] - n[..., 1] * sin_yaw[:, None]
        world[..., 1] = n[..., 0] * sin_yaw[:, None] + n[..., 1] * cos_yaw[:, None]
        world[..., 2] = n[..., 2]
        return world


_BLAS_SAFE_ROWS = 8192  # below this OpenBLAS computes (N, 3) @ (3, 3) on one thread


def apply_3x3(M: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points @ M.T`` for (..., 3) points and a (3, 3) matrix (C-contiguous result).

    A BLAS product of a long (N, 3) array wakes worker threads whose spinning, on a small
    shared CPU, costs more than the product; long arrays take three multiply-adds instead.
    """
    M = np.asarray(M, dtype=points.dtype)
    if points.size <= 3 * _BLAS_SAFE_ROWS:
        return np.ascontiguousarray(points @ M.T)
    rows = np.ascontiguousarray(M.T)  # row j holds column j of M
    out = np.empty(points.shape[:-1] + (M.shape[0],), dtype=points.dtype)
    np.multiply(points[..., 0:1], rows[0], out=out)
    out += points[..., 1:2] * rows[1]
    out += points[..., 2:3] * rows[2]
    return out


def concat_primitives(parts: list[Primitives]) -> Primitives:
    """One primitive set holding every part, group and box indices renumbered."""
    if not parts:
        return Primitives()
    group_offsets = np.cumsum([0] + [p.num_groups for p in parts[:-1]])
    box_offsets = np.cumsum([0] + [p.num_boxes for p in parts[:-1]])
    values = {}
    for f in fields(Primitives):
        arrays = [getattr(p, f.name) for p in parts]
        if f.name in ("box_group", "sph_group"):
            arrays = [a + off for a, off in zip(arrays, group_offsets, strict=True)]
        elif f.name in ("decal_box", "facade_box"):
            arrays = [a + off for a, off in zip(arrays, box_offsets, strict=True)]
        values[f.name] = np.concatenate(arrays)
    return Primitives(**values)


class PrimitiveBuilder:
    """Collects groups, boxes, spheres and quads one by one, then packs them into arrays."""

    def __init__(self) -> None:
        self._groups: list[tuple[int, int]] = []
        self._boxes: list[tuple] = []
        self._spheres: list[tuple] = []
        self._decals: list[tuple] = []
        self._ground: list[tuple] = []
        self._facades: list[tuple] = []

    def new_group(self, actor: int = -1, layer: int = 1) -> int:
        """Start a group (``actor`` is the labelled actor's index, -1 for clutter)."""
        self._groups.append((actor, layer))
        return len(self._groups) - 1

    def add_box(self, center: Sequence[float], size_lwh: Sequence[float], yaw_rad: float,
                color: np.ndarray, group: int, order: int = 0, reflect: float | np.ndarray = 0.3,
                dropout: float | np.ndarray = 0.0, shape: int = SHAPE_BOX) -> int:
        """Add a box by its geometric centre and size; ``color`` is (3,) or per face (6, 3)."""
        self._boxes.append((center, size_lwh, yaw_rad, shape, color, reflect, dropout, group,
                            order))
        return len(self._boxes) - 1

    def add_sphere(self, center: Sequence[float], radius_m: float, color: np.ndarray, group: int,
                   order: int = 0, reflect: float = 0.3) -> None:
        """Add a sphere."""
        self._spheres.append((center, radius_m, color, reflect, group, order))

    def add_decals(self, boxes: int | np.ndarray, faces: int | np.ndarray,
                   quads_world: np.ndarray, colors: np.ndarray) -> None:
        """Add flat quads (K, 4, 3) on boxes; boxes, faces and colours per quad or shared."""
        count = len(quads_world)
        self._decals.append((quads_world, np.broadcast_to(colors, (count, 3)),
                             np.broadcast_to(boxes, (count,)), np.broadcast_to(faces, (count,))))

    def add_facade(self, box: int, face: int, grid: tuple[float, float, int, float, int],
                   color: np.ndarray) -> None:
        """Add a window grid (width, height, columns, floor height, first floor) to a face."""
        self._facades.append((box, face, grid, color))

    def add_ground_quad(self, quad_world: np.ndarray, color: np.ndarray) -> None:
        """Add a quad (4, 3) on the ground, drawn after the ones added before it."""
        self._ground.append((quad_world, color))

    def build(self) -> Primitives:
        """Pack everything added so far."""
        prims = Primitives()
        if self._groups:
            actor, layer = zip(*self._groups, strict=True)
            prims.group_actor = np.asarray(actor, dtype=np.int64)
            prims.group_layer = np.asarray(layer, dtype=np.int64)
        if self._boxes:
            cols = list(zip(*self._boxes, strict=True))
            prims.box_center = np.asarray(cols[0], dtype=np.float64).reshape(-1, 3)
            prims.box_half = 0.5 * np.asarray(cols[1], dtype=np.float64).reshape(-1, 3)
            prims.box_yaw = np.asarray(cols[2], dtype=np.float64)
            prims.box_shape = np.asarray(cols[3], dtype=np.int8)
            num = len(self._boxes)
            prims.box_color = np.empty((num, 6, 3))
            prims.box_reflect = np.empty((num, 6))
            prims.box_dropout = np.empty((num, 6))
            for i, (color, reflect, dropout) in enumerate(zip(cols[4], cols[5], cols[6],
                                                              strict=True)):
                prims.box_color[i] = color  # (3,) or per face (6, 3)
                prims.box_reflect[i] = reflect
                prims.box_dropout[i] = dropout
            prims.box_group = np.asarray(cols[7], dtype=np.int64)
            prims.box_order = np.asarray(cols[8], dtype=np.int64)
        if self._spheres:
            cols = list(zip(*self._spheres, strict=True))
            prims.sph_center = np.asarray(cols[0], dtype=np.float64).reshape(-1, 3)
            prims.sph_radius = np.asarray(cols[1], dtype=np.float64)
            prims.sph_color = np.asarray(cols[2], dtype=np.float64).reshape(-1, 3)
            prims.sph_reflect = np.asarray(cols[3], dtype=np.float64)
            prims.sph_group = np.asarray(cols[4], dtype=np.int64)
            prims.sph_order = np.asarray(cols[5], dtype=np.int64)
        if self._decals:
            prims.decal_quad = np.concatenate([q for q, _, _, _ in self._decals]).reshape(-1, 4, 3)
            prims.decal_color = np.concatenate([c for _, c, _, _ in self._decals]).astype(
                np.float64)
            prims.decal_box = np.concatenate([b for _, _, b, _ in self._decals]).astype(np.int64)
            prims.decal_face = np.concatenate([f for _, _, _, f in self._decals]).astype(np.int64)
        if self._facades:
            cols = list(zip(*self._facades, strict=True))
            prims.facade_box = np.asarray(cols[0], dtype=np.int64)
            prims.facade_face = np.asarray(cols[1], dtype=np.int64)
            prims.facade_grid = np.asarray(cols[2], dtype=np.float64).reshape(-1, 5)
            prims.facade_color = np.asarray(cols[3], dtype=np.float64).reshape(-1, 3)
        if self._ground:
            cols = list(zip(*self._ground, strict=True))
            prims.ground_quad = np.asarray(cols[0], dtype=np.float64).reshape(-1, 4, 3)
            prims.ground_color = np.asarray(cols[1], dtype=np.float64).reshape(-1, 3)
        return prims


def wheel_vertices(prims: Primitives, index: np.ndarray) -> np.ndarray:
    """(K, 2, 8, 3) world vertices of the two octagonal caps of wheel boxes ``index``.

    Cap 0 is on the box's +y side, cap 1 on its -y side; the octagon is inscribed in the box's
    x-z rectangle so the drawn wheel never leaves the box the LiDAR sees.
    """
    angles = (np.arange(WHEEL_SIDES) + 0.5) * (2.0 * np.pi / WHEEL_SIDES)
    # Scale so the octagon's flat sides touch the box (circumradius = half / cos(pi/8)).
    ring = np.stack([np.cos(angles), np.sin(angles)], axis=1) / np.cos(np.pi / WHEEL_SIDES)
    half = prims.box_half[index]  # (K, 3)
    local = np.zeros((len(index), 2, WHEEL_SIDES, 3))
    local[..., 0] = ring[None, None, :, 0] * half[:, None, None, 0]
    local[..., 2] = ring[None, None, :, 1] * half[:, None, None, 2]
    local[:, 0, :, 1] = half[:, None, 1]
    local[:, 1, :, 1] = -half[:, None, 1]
    cos_yaw = np.cos(prims.box_yaw[index])[:, None, None]
    sin_yaw = np.sin(prims.box_yaw[index])[:, None, None]
    world = np.empty_like(local)
    world[..., 0] = local[..., 0] * cos_yaw - local[..., 1] * sin_yaw
    world[..., 1] = local[..., 0] * sin_yaw + local[..., 1] * cos_yaw
    world[..., 2] = local[..., 2]
    return world + prims.box_center[index][:, None, None, :]


# Per face: (u axis, v axis) in the box's local frame. On a side face u runs to the right seen
# from outside and v up; on the top and bottom faces u is local x and v local y.
_FACE_UV = np.array([
    [[0, 1, 0], [0, 0, 1]], [[0, -1, 0], [0, 0, 1]], [[-1, 0, 0], [0, 0, 1]],
    [[1, 0, 0], [0, 0, 1]], [[1, 0, 0], [0, 1, 0]], [[1, 0, 0], [0, 1, 0]],
], dtype=np.float64)
_QUAD_UV = np.array([[0, 0], [1, 0], [1, 1], [0, 1]])  # which of (u0, u1) / (v0, v1)


def local_face_quads(centers: np.ndarray, halves: np.ndarray, faces: np.ndarray,
                     u_ranges: np.ndarray, v_ranges: np.ndarray, lift_m: float = 0.01,
                     top_inset: np.ndarray | None = None) -> np.ndarray:
    """(K, 4, 3) quads on the faces of K boxes, in the frame the boxes are given in.

    Box k has centre ``centers[k]`` and half extents ``halves[k]`` (axis-aligned in that frame);
    quad k lies on its face ``faces[k]`` at (u, v) from the face centre, ``lift_m`` above it.
    ``top_inset`` (K, 2) moves the top corners inwards from u0 and u1, turning rectangles into
    trapezoids (a windscreen, a raked side window).
    """
    normal = FACE_NORMALS_LOCAL[faces]  # (K, 3)
    base = centers + normal * (np.abs(np.einsum("ki,ki->k", normal, halves)) + lift_m)[:, None]
    u = u_ranges[:, _QUAD_UV[:, 0]]  # (K, 4) corners: (u0 v0) (u1 v0) (u1 v1) (u0 v1)
    if top_inset is not None:
        u[:, 2] -= top_inset[:, 1]
        u[:, 3] += top_inset[:, 0]
    v = v_ranges[:, _QUAD_UV[:, 1]]
    return (base[:, None] + u[..., None] * _FACE_UV[faces, 0][:, None]
            + v[..., None] * _FACE_UV[faces, 1][:, None])


def rotate_yaw(points: np.ndarray, yaw_rad: float | np.ndarray) -> np.ndarray:
    """(..., 3) points turned about z by ``yaw_rad`` (scalar or broadcastable to (...))."""
    cos_yaw, sin_yaw = np.cos(yaw_rad), np.sin(yaw_rad)
    out = np.empty(points.shape, dtype=points.dtype)
    out[..., 0] = points[..., 0] * cos_yaw - points[..., 1] * sin_yaw
    out[..., 1] = points[..., 0] * sin_yaw + points[..., 1] * cos_yaw
    out[..., 2] = points[..., 2]
    return out


def face_quads(center: np.ndarray, half: np.ndarray, yaw_rad: float, faces: int | np.ndarray,
               u_ranges: np.ndarray, v_ranges: np.ndarray) -> np.ndarray:
    """(K, 4, 3) world quads on faces of one box from (K, 2) u and v ranges in metres."""
    u_ranges = np.asarray(u_ranges, dtype=np.float64).reshape(-1, 2)
    v_ranges = np.asarray(v_ranges, dtype=np.float64).reshape(-1, 2)
    count = len(u_ranges)
    faces = np.full(count, faces) if np.ndim(faces) == 0 else np.asarray(faces)
    local = local_face_quads(np.zeros((count, 3)), np.tile(half, (count, 1)), faces, u_ranges,
                             v_ranges)
    return rotate_yaw(local, yaw_rad) + center


def facade_windows(prims: Primitives, facades: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World quads (K, 4, 3) of the windows of ``facades`` and the facade of each window."""
    box, face = prims.facade_box[facades], prims.facade_face[facades]
    win_w, win_h, n_cols, floor_h, first = prims.facade_grid[facades].T
    half = prims.box_half[box]  # (F, 3)
    across_x = (face == FACE_FRONT) | (face == FACE_BACK)  # these faces span local y
    width = 2.0 * np.where(across_x, half[:, 1], half[:, 0])
    n_cols = n_cols.astype(np.int64)
    n_floors = np.maximum(((2 * half[:, 2] - 0.8) / floor_h).astype(np.int64)
                          - first.astype(np.int64), 0)
    counts = n_cols * n_floors
    owner = np.repeat(np.arange(len(facades)), counts)
    k = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    col, floor = k % n_cols[owner], k // n_cols[owner] + first[owner]
    u = (col + 0.5) * width[owner] / n_cols[owner] - width[owner] / 2
    v0 = -half[owner, 2] + floor * floor_h[owner] + 0.9
    ranges_u = np.stack([u - win_w[owner] / 2, u + win_w[owner] / 2], axis=1)  # (K, 2)
    ranges_v = np.stack([v0, v0 + win_h[owner]], axis=1)
    local = local_face_quads(np.zeros((len(owner), 3)), half[owner], face[owner], ranges_u,
                             ranges_v)
    world = rotate_yaw(local, prims.box_yaw[box[owner]][:, None])
    return world + prims.box_center[box[owner]][:, None], facades[owner]
