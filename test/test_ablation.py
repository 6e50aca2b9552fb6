"""monotakd-ablation: rows, the split protocol, paired comparisons in the report, figures."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import torch
from training_fixtures import TINY_MODEL, TINY_TRAIN, write_tiny_kitti, write_yaml

from monotakd_ros.errors import ConfigError
from monotakd_ros.models.config import load_model_config
from monotakd_ros.training.ablation import build_parser, check_splits, run_ablation
from monotakd_ros.training.ablation_report import ablation_json, ablation_markdown, compare
from monotakd_ros.training.ablation_results import RowResult, SplitScores
from monotakd_ros.training.ablation_rows import FACTORIAL, ROW_KEYS, selected_rows
from monotakd_ros.training.logging_utils import read_csv_rows
from monotakd_ros.training.validation import evaluate_checkpoint


def write_ids(data: Path, split: str, ids: list[str]) -> None:
    (data / "ImageSets" / f"{split}.txt").write_text("\n".join(ids) + "\n")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("ablation")
    data = write_tiny_kitti(root / "kitti", num_train=4, num_val=7, cars_per_frame=4)
    held_out = (data / "ImageSets" / "val.txt").read_text().split()
    write_ids(data, "val", held_out[:4])
    write_ids(data, "test", held_out[4:])  # 3 labelled frames disjoint from train and val
    configs = root / "train"
    configs.mkdir()
    for stage in ("teacher", "ta", "student"):  # validation every step: best + val_log.csv
        write_yaml(configs / f"{stage}.yaml", {**TINY_TRAIN, "max_steps": 2, "val_interval": 1})
    return {"root": root, "data": data, "configs": configs,
            "model": write_yaml(root / "model.yaml", TINY_MODEL)}


def argv_for(env: dict, out: Path, *extra: str) -> list[str]:
    return ["--data", str(env["data"]), "--out", str(out), "--model-config", str(env["model"]),
            "--train-config-dir", str(env["configs"]), "--device", "cpu", *extra]


def test_rows_add_the_teacher_and_ta_their_presets_need() -> None:
    assert ROW_KEYS == ("teacher", "ta", "student_none", "student_response", "student_imd",
                        "student_cmrd", "student_takd", "student_cmkd", "student_upstream")
    keys = [[r.key for r in selected_rows(k)] for k in (
        ["student_none"], ["student_cmkd"], ["student_imd"], ["ta"], None)]
    assert keys[:4] == [["student_none"], ["teacher", "student_cmkd"],
                        ["teacher", "ta", "student_imd"], ["ta"]]
    assert tuple(keys[4]) == ROW_KEYS
    with pytest.raises(ConfigError, match="unknown row.*'student_imd_only'"):
        selected_rows(["student_imd_only"])


def test_report_split_must_be_held_out(env: dict, tmp_path: Path) -> None:
    args = build_parser().parse_args(argv_for(env, tmp_path, "--report-split", "val"))
    with pytest.raises(ConfigError, match="is the split the checkpoints are chosen on"):
        run_ablation(args, ["monotakd-ablation"])
    assert not (tmp_path / "seed_0").exists()  # refused before any training
    check_splits(build_parser().parse_args(argv_for(
        env, tmp_path, "--report-split", "val", "--allow-report-on-selection-split")))
    check_splits(build_parser().parse_args(argv_for(env, tmp_path)))  # test: held out
    # A KITTI-style test.txt (ids of testing/ frames) names training frames here: refused.
    leaky = tmp_path / "leaky"
    write_tiny_kitti(leaky, num_train=4, num_val=2)
    write_ids(leaky, "test", ["000000", "000001"])
    with pytest.raises(ConfigError, match="'test' shares 2 frame\\(s\\) with 'train'"):
        check_splits(build_parser().parse_args(argv_for({**env, "data": leaky}, tmp_path)))
    write_ids(leaky, "test", [])  # what --test-fraction 0 writes
    with pytest.raises(ConfigError, match="report split 'test' lists no frames"):
        check_splits(build_parser().parse_args(argv_for({**env, "data": leaky}, tmp_path)))


def row_result(ap3d_moderate: float, machine: str = "M") -> RowResult:
    def scores(split: str, value: float) -> SplitScores:
        return SplitScores(split, (value + 1, value, value - 1), (value + 10, value + 5, value),
                           4)
    return RowResult(report=scores("test", ap3d_moderate), selection=scores("val", 50.0),
                     checkpoint="best", step=7, machine=machine, train_s=30.0, eval_s=6.0,
                     resumed=False)


def test_report_pairs_seeds_and_states_the_verdicts() -> None:
    moderate = {"student_none": {0: 5.0, 1: 6.0, 2: 7.0},
                "student_cmkd": {0: 8.0, 1: 9.0, 2: 11.0},
                "student_takd": {0: 9.0, 1: 8.0, 3: 20.0}}  # seed 3: no CMKD/none partner
    results = {key: {seed: row_result(v) for seed, v in per_seed.items()}
               for key, per_seed in moderate.items()}
    text = ablation_markdown(results, "monotakd-ablation --seeds 0 1 2 3", "notes")
    assert "Reported on split **'test'** (4 frames); checkpoints chosen on **'val'**" in text
    # CMKD − none: (3, 3, 4): mean 3.33, std 0.58, t(2) = 4.303: [1.90, 4.77] -> holds.
    assert ("| CMKD − none | 0: +3.00, 1: +3.00, 2: +4.00 | +3.33 | 0.58 | 3 | [+1.90, +4.77] "
            "| holds |") in text
    # TAKD − CMKD only over seeds 0 and 1: (1, -1): mean 0, std 1.41, t(1) = 12.706.
    assert ("| TAKD − CMKD | 0: +1.00, 1: -1.00 | +0.00 | 1.41 | 2 | [-12.71, +12.71] | "
            "does not hold: no evidence either way (interval contains 0) |") in text
    assert "- TAKD beats CMKD (TAKD − CMKD): **does not hold: no evidence either way" in text
    assert "| TAKD − IMD | – | – | – | 0 | – | not run: a row is missing |" in text
    # Row table: CMKD's AP3D Moderate (8, 9, 11) is 9.33 ± 1.53; 3 seeds × 36 s = 1.8 min.
    cmkd_line = next(line for line in text.splitlines() if line.startswith("| Student, CMKD"))
    assert "| 10.33 ± 1.53 | 9.33 ± 1.53 | 8.33 ± 1.53 |" in cmkd_line
    assert cmkd_line.endswith("| 0, 1, 2 | 1.8 |")
    report = ablation_json(results, "cmd", "notes")
    assert (report["report_split"], report["selection_split"]) == ("test", "val")
    takd = next(r for r in report["rows"] if r["key"] == "student_takd")
    record = takd["per_seed"]["3"]
    assert (record["report_split"], record["machine"], record["wall_s"]) == ("test", "M", 36.0)
    assert record["report"]["ap3d_r40"] == [21.0, 20.0, 19.0]
    apbev = {c["key"]: c for c in report["comparisons"]["apbev_r40"]}
    assert apbev["student_cmkd-student_none"]["differences"] == [3.0, 3.0, 4.0]
    mixed = {**results, "teacher": {0: RowResult(**{**vars(row_result(1.0)), "report": SplitScores(
        "val", (1, 1, 1), (1, 1, 1), 4)})}}
    with pytest.raises(ConfigError, match="scored on different splits"):
        ablation_markdown(mixed, "cmd", "notes")


def test_factorial_effects_by_hand() -> None:
    cells = {"student_response": (1.0, 2.0), "student_imd": (3.0, 3.0),
             "student_cmrd": (2.0, 2.0), "student_takd": (6.0, 5.0)}
    results = {key: {seed: row_result(v) for seed, v in enumerate(values)}
               for key, values in cells.items()}
    effects = {item.comparison.key: item.stats.differences
               for item in compare(results, FACTORIAL)["ap3d_r40"] if item.stats}
    # Seed 0: IMD ((3 - 1) + (6 - 2)) / 2 = 3, CMRD ((2 - 1) + (6 - 3)) / 2 = 2,
    # interaction (6 - 2) - (3 - 1) = 2; seed 1: 2, 1 and (5 - 2) - (3 - 2) = 2.
    assert effects == {"main_imd": (3.0, 2.0), "main_cmrd": (2.0, 1.0),
                       "interaction": (2.0, 2.0)}


def png_shape(path: Path) -> tuple[int, ...]:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"{path} does not decode"
    return image.shape


def test_end_to_end_selects_on_val_reports_on_test_and_resumes(env: dict,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "ablation"
    argv = argv_for(env, out, "--seeds", "0", "1", "--rows", "student_none", "student_response")
    written = run_ablation(build_parser().parse_args(argv), ["monotakd-ablation", *argv])
    report = json.loads(written["json"].read_text())
    assert [row["key"] for row in report["rows"]] == ["teacher", "student_none",
                                                       "student_response"]
    assert sorted(p.name for p in (out / "seed_0").iterdir()) == [
        "student_none", "student_response", "teacher"]
    record = report["rows"][1]["per_seed"]["1"]
    assert (record["report_split"], record["selection_split"]) == ("test", "val")
    # Two steps, validated after each: with equal (untrained) scores the first stays best.
    assert (record["checkpoint"], record["step"]) == ("best", 1)
    assert "device cpu" in record["machine"]
    assert record["wall_s"] == pytest.approx(record["train_s"] + record["eval_s"])
    # The stored val APs are those validation logged at the chosen step (on the 4 val frames);
    # the report APs are those of that checkpoint on the 3 test frames.
    run = out / "seed_1" / "student_none"
    logged = next(r for r in read_csv_rows(run / "val_log.csv")
                  if int(r["step"]) == record["step"])
    assert record["selection"]["ap3d_r40"][1] == pytest.approx(
        float(logged["car_ap3d_r40_moderate"]), abs=1e-5)
    again = evaluate_checkpoint(run / "checkpoints" / "best", "student",
                                load_model_config(env["model"]), env["data"], "test",
                                torch.device("cpu"))
    assert (record["selection"]["num_frames"], record["report"]["num_frames"]) == (4, 3)
    assert record["report"]["ap3d_r40"] == pytest.approx(list(again.ap3d_r40), abs=1e-6)
    pair = next(c for c in report["comparisons"]["ap3d_r40"]
                if c["key"] == "student_response-student_none")
    expected = [report["rows"][2]["per_seed"][s]["report"]["ap3d_r40"][1]
                - report["rows"][1]["per_seed"][s]["report"]["ap3d_r40"][1] for s in "01"]
    assert pair["seeds"] == [0, 1] and pair["differences"] == pytest.approx(expected)
    assert "Machine M1: " in written["markdown"].read_text()
    # Figures at their fixed sizes; curves only for the rows that were trained.
    assert png_shape(written["claim"]) == (500, 1300, 3)
    for key in ("teacher", "student_none", "student_response"):
        assert png_shape(out / f"val_curve_{key}.png") == (400, 640, 3)
    assert not (out / "val_curve_ta.png").exists()
    # A second run keeps every evaluated row; --merge tabulates the same.
    stored = {p: p.read_text() for p in out.glob("seed_*/*/ablation_result.json")}
    assert len(stored) == 6
    run_ablation(build_parser().parse_args(argv), ["monotakd-ablation", *argv])
    assert {p: p.read_text() for p in out.glob("seed_*/*/ablation_result.json")} == stored
    merged = run_ablation(build_parser().parse_args(argv_for(env, out, "--merge")), ["m"])
    assert json.loads(merged["json"].read_text())["rows"] == report["rows"]
