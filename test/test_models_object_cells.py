"""models/object_cells.py: 2D boxes of LiDAR boxes and the stride-8 cells they cover."""

from __future__ import annotations

import numpy as np
import torch

from monotakd_ros.geometry.boxes import corners_lidar
from monotakd_ros.geometry.projection import project_rect_to_image
from monotakd_ros.models.object_cells import cells_in_boxes, object_cell_mask, projected_boxes_px

# Camera from LiDAR: x_cam = -y, y_cam = -z, z_cam = x; a 100 px focal length, centre (50, 40).
T = torch.tensor([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [1.0, 0.0, 0.0, 0.0],
                  [0.0, 0.0, 0.0, 1.0]])
P2 = torch.tensor([[100.0, 0.0, 50.0, 0.0], [0.0, 100.0, 40.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
CUBE_AHEAD = [10.0, 0.0, 0.0, 2.0, 2.0, 2.0, 0.0]  # corners at x 9/11, y ±1, z ±1


def test_a_cube_ahead_projects_to_the_box_worked_by_hand() -> None:
    # u = 100 · X / Z + 50 with X in ±1 and Z in 9..11: extremes at Z = 9, 50 ± 11.11.
    boxes_px, in_front = projected_boxes_px(torch.tensor([CUBE_AHEAD]), T, P2)
    expected = [50 - 100 / 9, 40 - 100 / 9, 50 + 100 / 9, 40 + 100 / 9]
    assert torch.allclose(boxes_px[0], torch.tensor(expected), atol=1e-4)
    assert in_front.tolist() == [True]


def test_projected_boxes_match_the_numpy_corners_for_turned_boxes() -> None:
    rng = np.random.default_rng(3)
    boxes = np.column_stack([rng.uniform(5, 40, 20), rng.uniform(-8, 8, 20),
                             rng.uniform(-2, 0, 20), rng.uniform(0.5, 4.5, 20),
                             rng.uniform(0.5, 2, 20), rng.uniform(1, 2, 20),
                             rng.uniform(-np.pi, np.pi, 20)])
    boxes_px, in_front = projected_boxes_px(torch.tensor(boxes), T, P2)
    Tn, Pn = T.double().numpy(), P2.double().numpy()
    for box, got in zip(corners_lidar(boxes), boxes_px, strict=True):
        pixels, _ = project_rect_to_image(box @ Tn[:3, :3].T + Tn[:3, 3], Pn)
        want = np.concatenate([pixels.min(axis=0), pixels.max(axis=0)])
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-3)
    assert bool(in_front.all())


def test_cells_are_those_whose_centre_lies_in_the_box() -> None:
    # Cell centres sit at pixels 3.5, 11.5, 19.5, ...: u in [10, 20] holds columns 1 and 2,
    # v in [0, 12] rows 0 and 1; a box between two centres covers no cell; clipped to the grid.
    boxes = torch.tensor([[10.0, 0.0, 20.0, 12.0], [4.0, 4.0, 11.0, 11.0],
                          [-50.0, 170.0, 5.0, 400.0]])
    cells = cells_in_boxes(boxes, (24, 80), 8)
    assert cells.shape == (3, 24, 80)
    assert torch.nonzero(cells[0]).tolist() == [[0, 1], [0, 2], [1, 1], [1, 2]]
    assert int(cells[1].sum()) == 0
    assert torch.nonzero(cells[2]).tolist() == [[21, 0], [22, 0], [23, 0]]


def test_the_mask_skips_boxes_behind_the_camera_and_ignored_ones() -> None:
    behind = [-5.0, 0.0, 0.0, 2.0, 2.0, 2.0, 0.0]
    straddling = [0.5, 0.0, 0.0, 2.0, 2.0, 2.0, 0.0]  # corners at x -0.5 and 1.5
    ignored = [10.0, 4.0, 0.0, 2.0, 2.0, 2.0, 0.0]
    frame0 = torch.tensor([CUBE_AHEAD, behind, straddling, ignored])
    classes0 = torch.tensor([1, 0, 2, -1])
    mask = object_cell_mask([frame0, torch.zeros(0, 7)], [classes0, torch.zeros(0)],
                            T.expand(2, 4, 4), P2.expand(2, 3, 4), (10, 12), 8)
    assert mask.shape == (2, 10, 12)
    # The cube's box u 38.9..61.1, v 28.9..51.1: column centres 43.5, 51.5, 59.5 and row
    # centres 35.5, 43.5 (51.5 is just outside).
    assert torch.nonzero(mask[0]).tolist() == [[r, c] for r in (4, 5) for c in (5, 6, 7)]
    assert int(mask[1].sum()) == 0
