"""monotakd-eval on label folders written into tmp_path."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from helpers_eval import CAR_DIMS, Obj, frame

from monotakd_ros.data.kitti.labels import write_label_file
from monotakd_ros.eval.cli import main

NUM_FRAMES = 10
CARS_PER_FRAME = 8  # 80 cars: enough for all 41 recall positions (see test_eval_kitti)


def scene(index: int, with_scores: bool) -> list[Obj]:
    """Eight cars 6 m apart on the ground and 150 px apart in the image."""
    cars = []
    for j in range(CARS_PER_FRAME):
        score = 0.99 - 0.001 * (index * CARS_PER_FRAME + j) if with_scores else None
        cars.append(Obj(box=(-21.0 + 6.0 * j, 1.6, 20.0, *CAR_DIMS, 0.0),
                        bbox=(10.0 + 150.0 * j, 150.0, 110.0 + 150.0 * j, 200.0), score=score))
    return cars


@pytest.fixture()
def folders(tmp_path: Path) -> tuple[Path, Path]:
    gt_dir, pred_dir = tmp_path / "label_2", tmp_path / "pred"
    for i in range(NUM_FRAMES):
        write_label_file(gt_dir / f"{i:06d}.txt", frame(scene(i, False)), precision=None)
        write_label_file(pred_dir / f"{i:06d}.txt", frame(scene(i, True)), precision=None)
    return gt_dir, pred_dir


def test_perfect_predictions_print_the_table_and_write_json(folders, tmp_path, capsys):
    gt_dir, pred_dir = folders
    out = tmp_path / "results" / "ap.json"
    status = main(["--gt-labels", str(gt_dir), "--pred-labels", str(pred_dir), "--json", str(out)])
    assert status == 0
    written = json.loads(out.read_text())
    assert set(written) == {"Car", "Pedestrian", "Cyclist"}
    assert written["Car"]["3d"] == {"R40": [100.0] * 3, "R11": [100.0] * 3}
    assert written["Car"]["aos"]["R40"] == [100.0] * 3
    assert written["Cyclist"]["bev"]["R40"] == [0.0] * 3  # no cyclist in the scenes
    printed = capsys.readouterr().out
    assert "Car AP_R40@0.70, 0.70, 0.70:" in printed
    assert "3d   AP:100.0000, 100.0000, 100.0000" in printed


def test_missing_prediction_file_means_no_detections(folders, tmp_path, caplog):
    gt_dir, pred_dir = folders
    (pred_dir / "000009.txt").unlink()
    split = tmp_path / "val.txt"
    split.write_text("".join(f"{i:06d}\n" for i in range(NUM_FRAMES)))
    out = tmp_path / "ap.json"
    with caplog.at_level(logging.WARNING):
        status = main(["--gt-labels", str(gt_dir), "--pred-labels", str(pred_dir),
                       "--split", str(split), "--classes", "Car", "--json", str(out)])
    assert status == 0
    assert "1 of 10 frames have no prediction file" in caplog.text
    assert "000009" in caplog.text
    # 72 of 80 cars found: positions k <= 36 (ranks 2k - 1 <= 71) hold precision 1, the rest 0.
    written = json.loads(out.read_text())
    assert list(written) == ["Car"]
    np.testing.assert_allclose(written["Car"]["3d"]["R40"], [36 / 40 * 100] * 3)
    np.testing.assert_allclose(written["Car"]["3d"]["R11"], [10 / 11 * 100] * 3)


def test_split_subset_is_evaluated_alone(folders, tmp_path):
    gt_dir, pred_dir = folders
    (pred_dir / "000009.txt").unlink()
    split = tmp_path / "some.txt"
    split.write_text("000000\n000001\n\n000002\n000003\n000004\n000005\n")  # 48 cars
    out = tmp_path / "ap.json"
    assert main(["--gt-labels", str(gt_dir), "--pred-labels", str(pred_dir), "--split",
                 str(split), "--classes", "Car", "--json", str(out)]) == 0
    # G = T = 48: every position is filled (recall 1 reached), precision 1 everywhere.
    assert json.loads(out.read_text())["Car"]["bbox"]["R40"] == [100.0] * 3


def test_unreadable_prediction_file_is_a_clear_error(folders, capsys):
    gt_dir, pred_dir = folders
    (pred_dir / "000003.txt").write_text("Car 0 0 0.1 10 20\n")
    status = main(["--gt-labels", str(gt_dir), "--pred-labels", str(pred_dir)])
    assert status == 2
    err = capsys.readouterr().err
    assert "000003.txt:1" in err and "expected 15 fields" in err


def test_predictions_without_scores_are_refused(folders, capsys):
    gt_dir, pred_dir = folders
    write_label_file(pred_dir / "000004.txt", frame(scene(4, False)))
    assert main(["--gt-labels", str(gt_dir), "--pred-labels", str(pred_dir)]) == 2
    assert "000004.txt: predictions need a score" in capsys.readouterr().err


def test_missing_folders_and_files_are_named(folders, tmp_path, capsys):
    gt_dir, pred_dir = folders
    assert main(["--gt-labels", str(tmp_path / "nope"), "--pred-labels", str(pred_dir)]) == 2
    assert "ground truth folder" in capsys.readouterr().err
    split = tmp_path / "val.txt"
    split.write_text("000000\n000123\n")
    assert main(["--gt-labels", str(gt_dir), "--pred-labels", str(pred_dir),
                 "--split", str(split)]) == 2
    assert "000123.txt is missing" in capsys.readouterr().err
    assert main(["--gt-labels", str(gt_dir), "--pred-labels", str(pred_dir),
                 "--classes", "Tram"]) == 2
    assert "cannot evaluate class 'Tram'" in capsys.readouterr().err


def test_prediction_ids_that_match_no_ground_truth_fail_the_run(folders, capsys):
    """Ids written as 0.txt instead of 000000.txt scored AP 0 with exit status 0 before."""
    gt_dir, pred_dir = folders
    for i in range(NUM_FRAMES):
        (pred_dir / f"{i:06d}.txt").rename(pred_dir / f"{i}.txt")
    assert main(["--gt-labels", str(gt_dir), "--pred-labels", str(pred_dir)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no AP table
    assert (f"10 of 10 prediction files in {pred_dir} match no ground truth file in {gt_dir} "
            "(e.g. 0.txt, 1.txt, 2.txt, 3.txt, 4.txt): the frame ids differ") in captured.err


def test_one_stray_prediction_file_is_named(folders, capsys):
    gt_dir, pred_dir = folders
    write_label_file(pred_dir / "007481.txt", frame(scene(0, True)))
    assert main(["--gt-labels", str(gt_dir), "--pred-labels", str(pred_dir)]) == 2
    assert "1 of 11 prediction files" in capsys.readouterr().err


def test_no_prediction_file_for_any_frame_fails_the_run(folders, capsys):
    gt_dir, pred_dir = folders
    for path in pred_dir.glob("*.txt"):
        path.unlink()
    assert main(["--gt-labels", str(gt_dir), "--pred-labels", str(pred_dir)]) == 2
    assert (f"none of the 10 frames to evaluate has a prediction file in {pred_dir}"
            in capsys.readouterr().err)
