"""scripts/depth_pooling_check.py: which stride-8 cells an object covers; bad input → 2."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from training_fixtures import TINY_MODEL, write_tiny_kitti, write_yaml

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "depth_pooling_check.py"
_spec = importlib.util.spec_from_file_location("depth_pooling_check", _SCRIPT)
script = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(script)  # type: ignore[union-attr]


def test_object_cells_are_those_whose_centre_lies_in_the_2d_box() -> None:
    # Cell centres sit at pixels 3.5, 11.5, 19.5, ...: a box over u in [10, 20] holds the
    # centres of columns 1 and 2, v in [0, 12] those of rows 0 and 1.
    corners = np.array([[10.0, 0.0], [20.0, 12.0]])
    assert script.object_cells(corners, (24, 80)) == (slice(0, 2), slice(1, 3))
    # Clipped to the grid; a box between two centres covers no cell.
    assert script.object_cells(np.array([[-50.0, 170.0], [5.0, 400.0]]), (24, 80)) == (
        slice(21, 24), slice(0, 1))
    rows, cols = script.object_cells(np.array([[4.0, 4.0], [11.0, 11.0]]), (24, 80))
    assert (rows.stop - rows.start, cols.stop - cols.start) == (0, 0)


def test_counts_cars_of_a_tiny_set_and_refuses_a_missing_split(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = write_yaml(tmp_path / "model.yaml", TINY_MODEL)
    data = write_tiny_kitti(tmp_path / "kitti", num_train=1, num_val=2, cars_per_frame=2)
    assert script.main(["--data", str(data), "--split", "val", "--model-config",
                        str(model)]) == 0
    car = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("Car"))
    cells, mean_share, nearest_share = car.split()[1:]
    # 2 frames x 2 cars filled with returns in front of a ground plane; the blocks at a car's
    # edge mix car and ground returns: their mean misses the car, their nearest return does not.
    assert int(cells) == 27
    assert float(nearest_share) > float(mean_share) + 0.1
    assert script.main(["--data", str(data), "--split", "nosuch", "--model-config",
                        str(model)]) == 2
