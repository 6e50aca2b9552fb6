"""The unlabelled experiment's helpers: disjoint arm splits, arm configs, paired statistics."""

from __future__ import annotations

import importlib.util
import statistics
import sys
from pathlib import Path
from types import ModuleType

import pytest

from monotakd_ros.errors import ConfigError, DatasetError
from monotakd_ros.training.config import load_train_config

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_arm_splits_are_disjoint_of_the_asked_sizes_and_reproducible() -> None:
    tools = _script("unlabeled_variants")
    ids = [f"{i:06d}" for i in range(30)]
    sizes = {"arm_labelled": 8, "arm_extra": 8, "arm_val": 4, "arm_test": 6}
    splits = tools.arm_splits(ids, 3, sizes)
    assert {k: len(v) for k, v in splits.items()} == {**sizes, "arm_labelled_extra": 16}
    named = [set(splits[k]) for k in sizes]
    assert len(set().union(*named)) == sum(sizes.values())  # no frame in two splits
    assert set(splits["arm_labelled_extra"]) == named[0] | named[1]
    assert tools.arm_splits(ids, 3, sizes) == splits
    assert tools.arm_splits(ids, 4, sizes) != splits
    with pytest.raises(DatasetError, match="has 30 training frames.*need 31"):
        tools.arm_splits(ids, 3, {**sizes, "arm_test": 11})


def test_arm_config_overrides_a_base_and_is_checked_by_the_strict_loader(
        tmp_path: Path) -> None:
    tools = _script("unlabeled_variants")
    parser = tools.build_parser()
    base = SCRIPTS.parent / "config" / "train" / "student_finetune.yaml"
    out = tmp_path / "hidden.yaml"
    tools.write_arm_config(parser.parse_args([
        "arm-config", "--base", str(base), "--out", str(out), "train_split=arm_labelled",
        "hidden_label_split=arm_extra", "freeze_bn=true", "batch_size=4"]))
    cfg = load_train_config(out)
    assert (cfg.train_split, cfg.hidden_label_split, cfg.freeze_bn, cfg.batch_size, cfg.lr) == (
        "arm_labelled", "arm_extra", True, 4, 2e-4)
    with pytest.raises(ConfigError, match="freeze_bn"):
        tools.write_arm_config(parser.parse_args([
            "arm-config", "--base", str(base), "--out", str(out), "freeze_bn=maybe"]))


def test_paired_rows_use_the_sample_std_and_the_t_interval() -> None:
    report = _script("experiment_unlabeled_report")
    diffs = {0: 0.5, 1: -3.06, 2: -0.82}  # the first release's after - control
    row = report.paired_row("Car | hidden − control", report.paired_stats(diffs))
    std = statistics.stdev(diffs.values())  # n - 1, not the population std
    half = 4.3027 * std / 3 ** 0.5  # t(0.975, 2 df)
    mean = sum(diffs.values()) / 3
    assert std == pytest.approx(1.80, abs=0.005)
    assert row.startswith(f"| Car | hidden − control | +0.50, -3.06, -0.82 | {mean:+.2f} | "
                          f"{std:.2f} | [{mean - half:+.2f}, {mean + half:+.2f}] |")
    assert row.endswith("no evidence either way (interval contains 0) |")
    single = report.paired_row("x", report.paired_stats({0: 1.0}))
    assert "| +1.00 | n/a | n/a (one seed) |" in single


def test_report_pairs_arms_per_seed_for_every_logged_class(tmp_path: Path) -> None:
    report = _script("experiment_unlabeled_report")
    moderate = {"control": (10.0, 2.0), "hidden": (11.5, 2.5), "visible": (13.0, 4.0)}
    for seed, shift in (("0", 0.0), ("1", 1.0)):
        for arm, (car, ped) in moderate.items():
            run = tmp_path / f"seed_{seed}" / "joint" / arm
            run.mkdir(parents=True)
            hidden_seed_1 = 2.0 if (arm, seed) == ("hidden", "1") else 0.0
            run.joinpath("val_log.csv").write_text(
                "step,car_ap3d_r40_easy,car_ap3d_r40_moderate,car_ap3d_r40_hard,"
                "pedestrian_ap3d_r40_moderate\n1,0,0,0,0\n"
                f"9,20,{car + shift + hidden_seed_1},5,{ped}\n")
    text = report.results_section(tmp_path, ["0", "1"], ["joint"], smoke=False, elapsed_s=60)
    # hidden - control: seed 0 +1.5, seed 1 +3.5 (mean 2.5, sample std 1.41)
    half = 12.706 * 2 ** 0.5 / 2 ** 0.5
    assert (f"| Car | hidden − control | +1.50, +3.50 | +2.50 | 1.41 | "
            f"[{2.5 - half:+.2f}, {2.5 + half:+.2f}] |") in text
    assert "| Pedestrian | visible − hidden | +1.50, +1.50 | +1.50 | 0.00 |" in text
    assert "| 1 | 20.00 / 11.00 / 5.00 | 20.00 / 14.50 / 5.00 | 20.00 / 14.00 / 5.00 |" in text
    assert "raw − control" not in text  # no raw arm was run
