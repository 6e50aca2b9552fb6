"""Leak guard: raw drives holding held-out object frames are refused or skipped."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
import torch

from monotakd_ros.data.kitti.raw_mapping import (
    LeakGuardConfig,
    drive_name_of,
    guarded_drives,
    object_frame_drives,
)
from monotakd_ros.distiller.run_config import distiller_config_from_values
from monotakd_ros.distiller.session import DistillSession
from monotakd_ros.errors import ConfigError, DatasetError
from monotakd_ros.training.config import TrainConfig
from monotakd_ros.training.data_loading import build_stage_data
from monotakd_ros.training.distributed import DistContext

# Four raw source frames of three drives, as the devkit's train_mapping.txt lists them.
MAPPING = """2011_09_26 2011_09_26_drive_0001_sync 0000000010
2011_09_26 2011_09_26_drive_0002_sync 0000000020
2011_09_28 2011_09_28_drive_0003_sync 0000000030
2011_09_26 2011_09_26_drive_0001_sync 0000000040
"""
RAND = "3,1,4,2\n"  # object frame 0 = line 3 (drive 0003), 1 = line 1 (0001), 2 = 4, 3 = 2


@pytest.fixture
def kitti(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "ImageSets").mkdir()
    (tmp_path / "ImageSets" / "train.txt").write_text("000001\n000002\n")
    (tmp_path / "ImageSets" / "val.txt").write_text("000003\n")  # line 2: drive 0002
    (tmp_path / "ImageSets" / "test.txt").write_text("000000\n")  # line 3: drive 0003
    (tmp_path / "train_mapping.txt").write_text(MAPPING)
    (tmp_path / "train_rand.txt").write_text(RAND)
    return {"root": tmp_path, "mapping": tmp_path / "train_mapping.txt",
            "order": tmp_path / "train_rand.txt"}


def _drives(root: Path) -> list[Path]:
    return [root / "raw" / "2011_09_26" / f"2011_09_26_drive_000{n}_sync" for n in (1, 2)] + [
        root / "bags" / "kitti_2011_09_28_drive_0003_synced"]


def test_devkit_mapping_and_order_give_each_object_frame_its_drive(kitti: dict) -> None:
    assert object_frame_drives(kitti["mapping"], kitti["order"]) == {
        "000000": "2011_09_28_drive_0003", "000001": "2011_09_26_drive_0001",
        "000002": "2011_09_26_drive_0001", "000003": "2011_09_26_drive_0002"}
    # without an order file, line i + 1 is object frame i
    assert object_frame_drives(kitti["mapping"])["000002"] == "2011_09_28_drive_0003"
    assert drive_name_of("/bags/kitti_2011_09_28_drive_0003_synced") == "2011_09_28_drive_0003"


def test_a_drive_holding_a_val_frame_is_refused_naming_drive_and_frame(kitti: dict) -> None:
    guard = LeakGuardConfig(mapping_file=str(kitti["mapping"]), order_file=str(kitti["order"]))
    with pytest.raises(DatasetError, match=r"drive_0002_sync: raw drive 2011_09_26_drive_0002 "
                                           r"holds held-out object frame 000003"):
        guarded_drives(_drives(kitti["root"]), guard, kitti["root"])
    both = dataclasses.replace(guard, held_out_splits=("val", "test"))
    with pytest.raises(DatasetError, match=r"2 of 3 drives leak"):
        guarded_drives(_drives(kitti["root"]), both, kitti["root"])
    # train frames come from drive 0001: it is kept; no mapping: nothing is checked
    assert guarded_drives(_drives(kitti["root"])[:1], guard, kitti["root"]) == _drives(
        kitti["root"])[:1]
    assert guarded_drives(_drives(kitti["root"]), LeakGuardConfig(), None) == _drives(
        kitti["root"])


def test_skip_leaves_leaking_drives_out_and_logs_the_count(
        kitti: dict, caplog: pytest.LogCaptureFixture) -> None:
    guard = LeakGuardConfig(mapping_file=str(kitti["mapping"]), order_file=str(kitti["order"]),
                            held_out_splits=("val", str(kitti["root"] / "ImageSets/test.txt")),
                            splits_root=str(kitti["root"]), on_leak="skip")
    with caplog.at_level(logging.WARNING):
        kept = guarded_drives(_drives(kitti["root"]), guard, None)
    assert kept == _drives(kitti["root"])[:1]
    assert "skipped 2 of 3 raw drives" in caplog.text


def test_bad_inputs_name_the_file_and_value(kitti: dict, tmp_path: Path) -> None:
    bad = tmp_path / "bad_mapping.txt"
    bad.write_text("2011_09_26 2011_09_26_drive_0001_sync 0000000010\n2011_09_26 oops\n")
    with pytest.raises(DatasetError, match=r"bad_mapping.txt:2: expected .*'2011_09_26 oops'"):
        object_frame_drives(bad)
    order = tmp_path / "rand.txt"
    order.write_text("1,9\n")
    with pytest.raises(DatasetError, match=r"rand.txt: entry '9' is not a line number .*1..4"):
        object_frame_drives(kitti["mapping"], order)
    guard = LeakGuardConfig(mapping_file=str(kitti["mapping"]))
    with pytest.raises(DatasetError, match="cannot tell which KITTI raw drive"):
        guarded_drives([tmp_path / "my_drive"], guard, kitti["root"])
    with pytest.raises(DatasetError, match="ImageSets/val.txt does not exist"):
        guarded_drives(_drives(kitti["root"]), guard, tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="order_file needs leak_guard.mapping_file"):
        LeakGuardConfig(order_file=str(kitti["order"]))


def test_monotakd_train_and_the_distiller_apply_the_guard(kitti: dict, tmp_path: Path) -> None:
    values = {"mapping_file": str(kitti["mapping"]), "order_file": str(kitti["order"])}
    cfg = TrainConfig(leak_guard=LeakGuardConfig(**values))
    cpu = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    with pytest.raises(DatasetError, match="holds held-out object frame 000003"):
        build_stage_data(None, kitti["root"], _drives(kitti["root"]), cfg, cpu,  # type: ignore
                         None)
    config = distiller_config_from_values({
        "out_dir": str(tmp_path / "run"), "teacher": str(tmp_path / "t"),
        "assistant": str(tmp_path / "a"), "bags": [str(p) for p in _drives(kitti["root"])],
        "labelled_data": str(kitti["root"]), "labelled_per_step": 1,
        "leak_guard": values})
    with pytest.raises(DatasetError, match="holds held-out object frame 000003"):
        DistillSession(config)
    with pytest.raises(ConfigError, match="train.leak_guard: the distiller reads leak_guard"):
        distiller_config_from_values({
            "out_dir": "o", "teacher": "t", "assistant": "a", "bags": ["b"],
            "train": {"leak_guard": values}})
