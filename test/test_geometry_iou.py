"""Rotated BEV, 3D and 2D IoU against hand-computed cases and independent methods."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers_geometry import iou3d_matrix_lidar

from monotakd_ros.errors import GeometryError
from monotakd_ros.geometry.boxes import corners_cam
from monotakd_ros.geometry.iou import (
    bev_iou_matrix,
    bev_iou_matrix_cam,
    bev_iou_pairs,
    iou2d_matrix,
    iou2d_matrix_aligned_bev,
    iou3d_matrix_cam,
)


def rectangle(cx: float, cy: float, length: float, width: float, yaw: float) -> list:
    """Counter-clockwise corners of one BEV box, written out independently of the library."""
    c, s = math.cos(yaw), math.sin(yaw)
    local = [(length / 2, width / 2), (-length / 2, width / 2),
             (-length / 2, -width / 2), (length / 2, -width / 2)]
    return [(cx + u * c - v * s, cy + u * s + v * c) for u, v in local]


def clip_polygon(subject: list, clipper: list) -> list:
    """Plain-Python Sutherland-Hodgman: subject polygon clipped by a convex CCW clipper."""
    output = subject
    for i in range(len(clipper)):
        (ax, ay), (bx, by) = clipper[i], clipper[(i + 1) % len(clipper)]

        def side(p: tuple, ax: float = ax, ay: float = ay, bx: float = bx,
                 by: float = by) -> float:
            return (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax)

        points, output = output, []
        for j in range(len(points)):
            p, q = points[j], points[(j + 1) % len(points)]
            sp, sq = side(p), side(q)
            if sp >= 0:
                output.append(p)
            if (sp >= 0) != (sq >= 0):
                t = sp / (sp - sq)
                output.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
        if not output:
            return []
    return output


def polygon_area(points: list) -> float:
    return 0.5 * abs(sum(points[i][0] * points[(i + 1) % len(points)][1]
                         - points[(i + 1) % len(points)][0] * points[i][1]
                         for i in range(len(points))))


def reference_bev_iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = polygon_area(clip_polygon(rectangle(*a), rectangle(*b)))
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def random_bev_boxes(rng: np.random.Generator, count: int) -> np.ndarray:
    return np.column_stack([rng.uniform(-2, 2, (count, 2)), rng.uniform(0.3, 4.0, (count, 2)),
                            rng.uniform(-4, 4, count)])


# ---- hand-computed cases ----------------------------------------------------------------

def test_unit_squares_offset_by_half_give_one_third() -> None:
    # Overlap 0.5 x 1 = 0.5; union 1 + 1 - 0.5 = 1.5; IoU = 1/3. Also offset along y.
    a = np.array([[0.0, 0.0, 1.0, 1.0, 0.0], [3.0, 3.0, 1.0, 1.0, 0.0]])
    b = np.array([[0.5, 0.0, 1.0, 1.0, 0.0], [3.0, 2.5, 1.0, 1.0, 0.0]])
    np.testing.assert_allclose(bev_iou_pairs(a, b), [1 / 3, 1 / 3], atol=1e-12)


def test_square_and_45_degree_square_give_one_over_root_two() -> None:
    # The rotated square pokes out at 4 corners by sqrt(2)/2 - 1/2 = d; each cut-off triangle
    # has area d^2, so the octagon has area 1 - 4 d^2 = 2 (sqrt 2 - 1) and IoU = 1 / sqrt 2.
    a = np.array([[5.0, -1.0, 1.0, 1.0, 0.0]])
    b = np.array([[5.0, -1.0, 1.0, 1.0, math.pi / 4]])
    np.testing.assert_allclose(bev_iou_pairs(a, b), [1 / math.sqrt(2)], atol=1e-12)


def test_identical_disjoint_touching_and_contained() -> None:
    rng = np.random.default_rng(1)
    boxes = random_bev_boxes(rng, 50)
    np.testing.assert_allclose(bev_iou_pairs(boxes, boxes), np.ones(50), atol=1e-9)
    far = boxes.copy()
    far[:, 0] += 20.0
    np.testing.assert_array_equal(bev_iou_pairs(boxes, far), np.zeros(50))
    # Touching along an edge: zero area; a 2x2 box inside a 4x4 box: 4 / 16.
    a = np.array([[0.0, 0.0, 2.0, 2.0, 0.0], [0.0, 0.0, 4.0, 4.0, 0.0]])
    b = np.array([[2.0, 0.0, 2.0, 2.0, 0.0], [0.5, 0.5, 2.0, 2.0, 0.0]])
    np.testing.assert_allclose(bev_iou_pairs(a, b), [0.0, 0.25], atol=1e-9)


def test_zero_size_and_empty_inputs() -> None:
    zero = np.array([[1.0, 1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 2.0, 0.0, 0.4]])
    box = np.array([[1.0, 1.0, 2.0, 2.0, 0.0], [1.0, 1.0, 2.0, 0.0, 0.4]])
    result = bev_iou_pairs(zero, box)
    assert np.all(np.isfinite(result)) and np.all(result == 0.0)
    assert bev_iou_matrix(np.zeros((0, 5)), box).shape == (0, 2)
    assert bev_iou_matrix(box, np.zeros((0, 5))).shape == (2, 0)
    assert iou3d_matrix_cam(np.zeros((0, 7)), np.zeros((3, 7))).shape == (0, 3)
    assert iou2d_matrix(np.zeros((2, 4)), np.zeros((0, 4))).shape == (2, 0)
    assert bev_iou_pairs(torch.zeros(0, 5), torch.zeros(0, 5)).shape == (0,)


# ---- independent methods ------------------------------------------------------------------

def test_random_pairs_match_reference_polygon_clipping() -> None:
    rng = np.random.default_rng(7)
    a, b = random_bev_boxes(rng, 400), random_bev_boxes(rng, 400)
    expected = [reference_bev_iou(a[i], b[i]) for i in range(400)]
    assert sum(e > 0.05 for e in expected) > 150  # the sample really exercises overlaps
    np.testing.assert_allclose(bev_iou_pairs(a, b), expected, atol=1e-9)


def test_matrix_matches_monte_carlo_estimate() -> None:
    rng = np.random.default_rng(3)
    a, b = random_bev_boxes(rng, 3), random_bev_boxes(rng, 4)
    samples = rng.uniform(-5, 5, (400_000, 2))

    def inside(box: np.ndarray) -> np.ndarray:
        d = samples - box[:2]
        c, s = math.cos(box[4]), math.sin(box[4])
        return (np.abs(d[:, 0] * c + d[:, 1] * s) <= box[2] / 2) & (
            np.abs(-d[:, 0] * s + d[:, 1] * c) <= box[3] / 2)

    cell_area = 100.0 / len(samples)
    for i in range(3):
        for j in range(4):
            inter = np.count_nonzero(inside(a[i]) & inside(b[j])) * cell_area
            union = a[i, 2] * a[i, 3] + b[j, 2] * b[j, 3] - inter
            assert bev_iou_matrix(a, b)[i, j] == pytest.approx(inter / union, abs=0.01)


def test_matrix_equals_pairs_and_is_symmetric() -> None:
    rng = np.random.default_rng(4)
    a, b = random_bev_boxes(rng, 6), random_bev_boxes(rng, 5)
    matrix = bev_iou_matrix(a, b)
    rows, cols = np.meshgrid(np.arange(6), np.arange(5), indexing="ij")
    np.testing.assert_allclose(matrix.ravel(), bev_iou_pairs(a[rows.ravel()], b[cols.ravel()]))
    np.testing.assert_allclose(bev_iou_matrix(b, a), matrix.T, atol=1e-12)


def test_torch_float32_and_float64_agree_with_numpy() -> None:
    rng = np.random.default_rng(5)
    a, b = random_bev_boxes(rng, 300), random_bev_boxes(rng, 300)
    a[:, :2] += 40.0  # far from the origin, where float32 precision matters
    b[:, :2] += 40.0
    expected = bev_iou_pairs(a, b)
    result64 = bev_iou_pairs(torch.from_numpy(a), torch.from_numpy(b))
    result32 = bev_iou_pairs(torch.from_numpy(a).float(), torch.from_numpy(b).float())
    assert isinstance(result64, torch.Tensor) and result64.dtype == torch.float64
    assert result32.dtype == torch.float32
    np.testing.assert_allclose(result64.numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(result32.numpy(), expected, atol=2e-4)
    matrix = bev_iou_matrix(torch.from_numpy(a[:20]).float(), torch.from_numpy(b[:30]).float())
    np.testing.assert_allclose(matrix.numpy(), bev_iou_matrix(a[:20], b[:30]), atol=2e-4)


# ---- 3D, camera and 2D --------------------------------------------------------------------

def test_iou3d_lidar_with_vertical_offsets() -> None:
    # Two 2 x 2 x 2 cubes: shifted up by 1 -> shared 2*2*1 = 4, union 16 - 4 = 12 -> 1/3.
    # Shifted up by 1 and sideways by 1 -> shared 1*2*1 = 2, union 14 -> 1/7. Up by 2: 0.
    cube = np.array([[10.0, 5.0, -1.0, 2.0, 2.0, 2.0, 0.7]])
    moved = np.array([[10.0, 5.0, 0.0, 2.0, 2.0, 2.0, 0.7],
                      [10.0 + math.cos(0.7), 5.0 + math.sin(0.7), 0.0, 2.0, 2.0, 2.0, 0.7],
                      [10.0, 5.0, 1.0, 2.0, 2.0, 2.0, 0.7]])
    np.testing.assert_allclose(iou3d_matrix_lidar(cube, moved), [[1 / 3, 1 / 7, 0.0]],
                               atol=1e-9)


def test_camera_iou_uses_true_ground_overlap_and_y_down_heights() -> None:
    rng = np.random.default_rng(6)
    count = 60
    boxes = np.column_stack([rng.uniform(-2, 2, count), rng.uniform(1.0, 2.0, count),
                             rng.uniform(10, 14, count), rng.uniform(1, 4, count),
                             rng.uniform(1, 2, count), rng.uniform(0.5, 2, count),
                             rng.uniform(-3, 3, count)])
    a, b = boxes[:30], boxes[30:]
    bev, iou3d = bev_iou_matrix_cam(a, b), iou3d_matrix_cam(a, b)
    corners_a, corners_b = corners_cam(a)[:, :4, [0, 2]], corners_cam(b)[:, :4, [0, 2]]
    for i in range(30):
        for j in range(30):
            # The x-z corner ring is clockwise when seen as a plain (x, z) plot: reverse it.
            poly_a = [tuple(p) for p in corners_a[i][::-1]]
            poly_b = [tuple(p) for p in corners_b[j][::-1]]
            inter = polygon_area(clip_polygon(poly_a, poly_b))
            union = a[i, 3] * a[i, 5] + b[j, 3] * b[j, 5] - inter
            assert bev[i, j] == pytest.approx(inter / union, abs=1e-9)
            # Vertical extents are [y - h, y] (y down): overlap of those intervals.
            overlap = max(0.0, min(a[i, 1], b[j, 1]) - max(a[i, 1] - a[i, 4], b[j, 1] - b[j, 4]))
            volume = a[i, 3] * a[i, 4] * a[i, 5] + b[j, 3] * b[j, 4] * b[j, 5]
            expected3d = inter * overlap / (volume - inter * overlap)
            assert iou3d[i, j] == pytest.approx(expected3d, abs=1e-9)
    assert np.count_nonzero(bev > 0.05) > 30


def test_iou2d_and_aligned_bev() -> None:
    a = np.array([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 5.0, 9.0]])  # second has zero width
    b = np.array([[5.0, 0.0, 15.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    np.testing.assert_allclose(iou2d_matrix(a, b), [[50 / 150, 1.0], [0.0, 0.0]])
    # A 4 x 2 box turned by 80 deg snaps to 90 deg: footprint 2 (x) by 4 (y).
    turned = np.array([[0.0, 0.0, 4.0, 2.0, math.radians(80)]])
    upright = np.array([[0.0, 0.0, 2.0, 4.0, 0.0], [0.0, 0.0, 4.0, 2.0, 0.0]])
    np.testing.assert_allclose(iou2d_matrix_aligned_bev(turned, upright), [[1.0, 4 / 12]])
    result = iou2d_matrix_aligned_bev(torch.from_numpy(turned), torch.from_numpy(upright))
    np.testing.assert_allclose(result.numpy(), [[1.0, 4 / 12]])


def test_bad_inputs_raise() -> None:
    with pytest.raises(GeometryError, match=r"a must have shape \(N, 5\), got \(3, 4\)"):
        bev_iou_pairs(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(GeometryError, match="as many rows in a as in b: 3 != 2"):
        bev_iou_pairs(np.zeros((3, 5)), np.zeros((2, 5)))
    with pytest.raises(GeometryError, match="mix numpy arrays and torch tensors"):
        bev_iou_matrix(np.zeros((3, 5)), torch.zeros(2, 5))
