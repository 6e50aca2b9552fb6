"""Budget plans: steps and seeds fitted to a wall-clock budget from measured step times."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from training_fixtures import TINY_MODEL, TINY_TRAIN, write_tiny_kitti, write_yaml

from monotakd_ros.errors import ConfigError
from monotakd_ros.training import budget
from monotakd_ros.training.budget import SAFETY, StepTimes, Workload, fit_plan

TIMES = StepTimes(teacher_step_s=1.0, ta_step_s=1.0, student_step_s=0.5, frozen_frame_s=0.1,
                  predict_frame_s=0.05, batch_size=4, threads=1, device="cpu")
WORK = Workload(teacher_rows=1, ta_rows=1, student_rows=4, distilled_rows=3, train_frames=100,
                val_frames=20, frozen_cache=True)
# Per seed, by hand: fixed = frozen targets 2 x 100 x 0.1 = 20 s + 6 rows x (20 x 0.05 + 4 s
# set-up) = 30 s -> 50 s; per step = 1 + 1 + 4 x 0.5 = 4 s.


def test_the_most_steps_that_fit_every_seed() -> None:
    plan = fit_plan(TIMES, WORK, budget_s=600 / SAFETY, seeds=[0, 1], min_steps=50,
                    max_steps=None)
    assert plan.steps == 62  # floor((600 / 2 - 50) / 4) = floor(62.5)
    assert plan.seeds == (0, 1)
    assert plan.projected_s == pytest.approx(2 * (50 + 62 * 4))


def test_max_steps_caps_the_plan_and_time_already_spent_counts() -> None:
    capped = fit_plan(TIMES, WORK, budget_s=6000, seeds=[0], min_steps=1, max_steps=100)
    assert capped.steps == 100 and capped.projected_s == pytest.approx(450)
    spent = fit_plan(TIMES, WORK, budget_s=300 / SAFETY, seeds=[0], min_steps=1,
                     max_steps=None, spent_s=50)
    assert spent.steps == 50  # (300 - 50 - 50) / 4


def test_seeds_are_dropped_before_steps_fall_below_the_minimum() -> None:
    plan = fit_plan(TIMES, WORK, budget_s=600 / SAFETY, seeds=[0, 1, 2], min_steps=60,
                    max_steps=None)
    assert plan.seeds == (0, 1) and plan.steps == 62  # 3 seeds: (200 - 50) / 4 = 37 < 60


def test_live_targets_cost_per_step_instead_of_once() -> None:
    live = fit_plan(TIMES, dataclasses.replace(WORK, frozen_cache=False),
                    budget_s=600 / SAFETY, seeds=[0], min_steps=1, max_steps=None)
    # fixed 30 s; per step 4 + 3 distilled rows x 0.1 s x batch 4 = 5.2 s
    assert live.steps == 109 and live.step_cost_s == pytest.approx(5.2)


def test_a_budget_too_small_for_one_seed_names_the_budget_needed() -> None:
    with pytest.raises(ConfigError, match=r"0\.1 min do not fit one seed of 50 steps per "
                                          r"stage; that needs about 4\.9 min"):
        fit_plan(TIMES, WORK, budget_s=6, seeds=[0], min_steps=50, max_steps=None)


def test_the_planner_command_measures_and_prints_the_steps(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_tiny_kitti(tmp_path / "kitti", num_train=4, num_val=1)
    common = ["--data", str(data), "--model-config", str(write_yaml(tmp_path / "m.yaml",
                                                                     TINY_MODEL)),
              "--train-config", str(write_yaml(tmp_path / "t.yaml", TINY_TRAIN)),
              "--cache-dir", str(tmp_path / "cache"), "--device", "cpu", "--seeds", "0", "1"]
    assert budget.main([*common, "--budget-min", "600", "--max-steps", "7"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("plan: 7 steps per stage (batch 2: 14 samples, 3.5 epochs of 4 "
                               "frames), seeds [0, 1]")
    assert "torch thread(s): teacher" in lines[1] and lines[-1] == "STEPS=7 SEEDS='0 1'"
    assert budget.main([*common, "--budget-min", "0.001"]) == 2  # nothing fits: named error
