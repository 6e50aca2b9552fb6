"""scripts/paired_scores.py: per-seed differences of two models' APs; bad input → 2."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "paired_scores.py"
_spec = importlib.util.spec_from_file_location("paired_scores", _SCRIPT)
script = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(script)  # type: ignore[union-attr]


def _scores(path: Path, car_3d: list[float], split: str = "test") -> Path:
    path.write_text(json.dumps({"split": split, "ap_r40": {"Car": {
        "3d": car_3d, "bev": [v + 10.0 for v in car_3d]}}}))
    return path


def _table_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str], first_3d: list[list[float]],
                second_3d: list[list[float]], *options: str) -> dict[str, list[str]]:
    """The script's rows (cells split on " | ") by metric, for seeds 0, 1, 2."""
    first = [_scores(tmp_path / f"a{s}.json", v) for s, v in enumerate(first_3d)]
    second = [_scores(tmp_path / f"b{s}.json", v) for s, v in enumerate(second_3d)]
    assert script.main(["--first", *map(str, first), "--second", *map(str, second),
                        "--seeds", "0", "1", "2", *options]) == 0
    return {line.split(" | ")[0].strip("| "): line.split(" | ")
            for line in capsys.readouterr().out.splitlines() if line.startswith("| AP")}


def test_differences_pair_by_seed_with_the_t_interval(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _table_rows(tmp_path, capsys, [[50.0 + s, 40.0 + 2 * s, 30.0] for s in range(3)],
                       [[45.0, 40.0, 30.0 + s] for s in range(3)], "--names", "teacher", "TA")
    # Easy: differences 5, 6, 7 → mean 6, std 1, half-width t(0.975, 2) · 1 / √3 = 2.484.
    assert rows["AP3D Easy"][3] == "+5.00, +6.00, +7.00"
    assert rows["AP3D Easy"][4] == "+6.00 ± 1.00"
    assert rows["AP3D Easy"][5] == "[+3.52, +8.48]"
    assert rows["AP3D Easy"][6] == "holds |"
    # Moderate: 0, 2, 4 → [−2.97, +6.97] contains 0; Hard: 0, −1, −2 → contains 0 too.
    assert rows["AP3D Moderate"][5] == "[-2.97, +6.97]"
    assert rows["AP3D Moderate"][6].startswith("does not hold: no evidence either way")
    assert rows["APBEV Easy"][1] == "61.00 ± 1.00" and rows["APBEV Easy"][2] == "55.00 ± 0.00"


def test_bad_input_is_refused_with_exit_2(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    good = _scores(tmp_path / "a.json", [1.0, 2.0, 3.0])
    other_split = _scores(tmp_path / "b.json", [1.0, 2.0, 3.0], split="val")
    short = tmp_path / "short.json"
    short.write_text(json.dumps({"split": "test", "ap_r40": {"Car": {"3d": [1.0],
                                                                       "bev": [1.0]}}}))
    cases = [
        (["--first", str(good), "--second", str(other_split), "--seeds", "0"], "splits"),
        (["--first", str(good), "--second", str(short), "--seeds", "0"], "3 finite APs"),
        (["--first", str(good), "--second", str(tmp_path / "none.json"), "--seeds", "0"],
         "not a scores file"),
        (["--first", str(good), "--second", str(good), "--seeds", "0", "1"], "same length"),
        (["--first", str(good), "--second", str(good), "--seeds", "0", "--class", "Van"],
         "'Van'"),
    ]
    for argv, message in cases:
        assert script.main(argv) == 2
        assert message in capsys.readouterr().err


def test_second_bev_compares_with_the_second_models_bev_ceiling(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _table_rows(tmp_path, capsys, [[60.0 + s, 50.0, 40.0] for s in range(3)],
                       [[45.0, 40.0, 30.0 + s] for s in range(3)], "--second-bev")
    # the second model's APBEV is its AP3D + 10: Easy 60, 61, 62 against 55 → 5, 6, 7.
    assert rows["AP3D Easy vs APBEV"][2] == "55.00 ± 0.00"
    assert rows["AP3D Easy vs APBEV"][3] == "+5.00, +6.00, +7.00"
    assert rows["AP3D Hard vs APBEV"][3] == "+0.00, -1.00, -2.00"
    assert rows["APBEV Moderate vs APBEV"][3] == "+10.00, +10.00, +10.00"
