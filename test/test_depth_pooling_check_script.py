"""scripts/depth_pooling_check.py: on-object shares per pooling; bad input → 2."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from training_fixtures import TINY_MODEL, write_tiny_kitti, write_yaml

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "depth_pooling_check.py"
_spec = importlib.util.spec_from_file_location("depth_pooling_check", _SCRIPT)
script = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(script)  # type: ignore[union-attr]


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
