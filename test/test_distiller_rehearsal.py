"""Labelled replay in the distiller: labelled frames join every step and bring the GT loss."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest
from helpers_distill import distiller_config, write_models
from helpers_kitti_raw import write_synthetic_drive
from training_fixtures import write_tiny_kitti

from monotakd_ros.bags.kitti2bag import convert_drive_to_bag
from monotakd_ros.data.kitti.raw_mapping import LeakGuardConfig
from monotakd_ros.distiller.rehearsal import LabelledReplay
from monotakd_ros.distiller.run_config import DistillerConfig
from monotakd_ros.distiller.session import DistillSession, build_student_stage
from monotakd_ros.errors import ConfigError
from monotakd_ros.nodes.distiller import PARAMETERS
from monotakd_ros.nodes.distiller_cli import build_parser, ros_arguments


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("replay")
    paths = write_models(root / "models")
    drive = write_synthetic_drive(root / "raw", num_frames=4, with_tracklets=False)
    paths["bag"] = convert_drive_to_bag(drive.drive_dir, root / "bag").path
    paths["labelled"] = write_tiny_kitti(root / "kitti", num_train=5, num_val=1)
    return paths


def _log_rows(run: Path) -> list[dict[str, str]]:
    with (run / "train_log.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _distil(env: dict[str, Path], run: Path, **values: object) -> dict:
    config = distiller_config(env, run, [env["bag"]], **values)
    session = DistillSession(config)
    session.run_bags(show_bar=False)
    return session.finish().report


def test_replayed_labelled_frames_bring_the_detection_loss(env: dict[str, Path],
                                                           tmp_path: Path) -> None:
    plain = _distil(env, tmp_path / "plain")
    replayed = _distil(env, tmp_path / "replay", labelled_data=str(env["labelled"]),
                       labelled_per_step=2)
    assert plain["step"] == replayed["step"] == 4  # batch 1: one step per unlabelled frame
    assert plain["frames_used"] == replayed["frames_used"] == 4
    assert plain["labelled_frames_used"] == 0 and replayed["labelled_frames_used"] == 8
    assert all(float(row["det_cls"]) == 0.0 for row in _log_rows(tmp_path / "plain"))
    assert all(float(row["det_cls"]) > 0.0 and float(row["det_box"]) >= 0.0
               for row in _log_rows(tmp_path / "replay"))


def test_replay_draws_distinct_frames_reproducibly_per_step(env: dict[str, Path]) -> None:
    config = distiller_config(env, Path("unused"), [env["bag"]])
    spec = build_student_stage(config).spec
    replay = LabelledReplay(env["labelled"], "train", spec, per_step=3, seed=7)
    again = LabelledReplay(env["labelled"], "train", spec, per_step=3, seed=7)
    assert len(replay) == 5
    draws = [replay.indices_for_step(step) for step in range(20)]
    assert draws == [again.indices_for_step(step) for step in range(20)]
    assert all(len(set(d)) == 3 and all(0 <= i < 5 for i in d) for d in draws)
    assert len({tuple(d) for d in draws}) > 1
    assert {i for d in draws for i in d} == set(range(5))
    assert draws != [LabelledReplay(env["labelled"], "train", spec, 3, seed=8)
                     .indices_for_step(step) for step in range(20)]
    with pytest.raises(ConfigError, match="fewer than labelled_per_step"):
        LabelledReplay(env["labelled"], "train", spec, per_step=6, seed=0)


def test_replay_settings_go_together(env: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="labelled_data and labelled_per_step go together"):
        distiller_config(env, tmp_path, [env["bag"]], labelled_data=str(env["labelled"]))
    with pytest.raises(ConfigError, match="labelled_data and labelled_per_step go together"):
        distiller_config(env, tmp_path, [env["bag"]], labelled_per_step=1)


def test_every_config_field_is_a_node_parameter_and_the_cli_sets_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fields = {f.name for f in dataclasses.fields(DistillerConfig)} - {"train", "leak_guard"}
    fields |= {f"leak_guard.{f.name}" for f in dataclasses.fields(LeakGuardConfig)}
    declared = {spec.name for spec in PARAMETERS}
    assert fields <= declared, sorted(fields - declared)
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["--labelled-data", "kitti", "--labelled-split", "val",
                                      "--labelled-per-step", "2", "--schedule", "cosine",
                                      "--warmup-steps", "50"])
    ros_args = ros_arguments(args)
    overrides = dict(ros_args[i + 1].split(":=", 1) for i in range(1, len(ros_args), 2))
    assert json.loads(overrides["labelled_data"]) == str(tmp_path / "kitti")
    assert json.loads(overrides["labelled_split"]) == "val"
    assert overrides["labelled_per_step"] == "2"
    assert json.loads(overrides["train.schedule"]) == "cosine"
    assert overrides["train.warmup_steps"] == "50"
    assert {"train.schedule", "train.warmup_steps", "train.min_lr_ratio"} <= declared
