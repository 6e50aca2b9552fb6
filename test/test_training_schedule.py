"""LR schedules are pure functions of the step; the train config is strict about its keys."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from monotakd_ros.errors import ConfigError
from monotakd_ros.training.config import TrainConfig, load_train_config, with_overrides
from monotakd_ros.training.schedule import learning_rate_at


def test_onecycle_values_by_hand() -> None:
    # peak 1e-3, start 1e-4 (div 10), end 1e-6 (final_div 100); 10 steps, 4 of them rising.
    cfg = TrainConfig(lr=1e-3, schedule="onecycle", pct_start=0.4, div_factor=10.0,
                      final_div_factor=100.0)
    expected = {
        0: 1e-4,
        2: 1e-4 + (1e-3 - 1e-4) * 0.5,  # halfway up the half-cosine
        4: 1e-3,
        7: 1e-6 + (1e-3 - 1e-6) * 0.5,  # 3 of 6 falling steps: halfway down
        10: 1e-6,
    }
    for step, lr in expected.items():
        assert learning_rate_at(step, 10, cfg) == pytest.approx(lr, rel=1e-12), step
    # A quarter of the way up: cos(pi/4) weights the start value.
    quarter = 1e-3 + (1e-4 - 1e-3) * 0.5 * (1 + math.cos(math.pi / 4))
    assert learning_rate_at(1, 10, cfg) == pytest.approx(quarter, rel=1e-12)


def test_cosine_with_linear_warmup_by_hand() -> None:
    cfg = TrainConfig(lr=1e-3, schedule="cosine", warmup_steps=2, min_lr_ratio=0.1)
    assert learning_rate_at(0, 12, cfg) == pytest.approx(5e-4)
    assert learning_rate_at(1, 12, cfg) == pytest.approx(1e-3)
    assert learning_rate_at(2, 12, cfg) == pytest.approx(1e-3)
    assert learning_rate_at(7, 12, cfg) == pytest.approx(1e-4 + 0.9e-3 * 0.5)
    assert learning_rate_at(12, 12, cfg) == pytest.approx(1e-4)
    assert learning_rate_at(50, 12, cfg) == pytest.approx(1e-4)  # past the end: stays there


def test_constant_schedule_and_purity() -> None:
    cfg = TrainConfig(lr=3e-4, schedule="constant")
    assert {learning_rate_at(s, 100, cfg) for s in (0, 50, 99)} == {3e-4}
    onecycle = TrainConfig(lr=2e-3)
    first = [learning_rate_at(s, 40, onecycle) for s in range(40)]
    assert [learning_rate_at(s, 40, onecycle) for s in reversed(range(40))] == first[::-1]


def test_yaml_loading_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("train:\n  lr: 0.01\n  batch_size: 3\n  distill: cmkd\n"
                    "  distill_overrides: {cmkd_weight: 0.5}\n  detection: {box_weight: 1.0}\n")
    cfg = load_train_config(path, seed=7, max_steps=None)
    assert (cfg.lr, cfg.batch_size, cfg.seed, cfg.max_steps) == (0.01, 3, 7, 0)
    distill = cfg.distill_config()
    assert (distill.cmkd_weight, distill.imd_weight, distill.detection.box_weight) == (0.5, 0, 1)
    assert with_overrides(cfg, distill="takd").distill_config().cmrd_weight == pytest.approx(0.2)


@pytest.mark.parametrize(("text", "match"), [
    ("lr: 0\n", r"train\.lr: must be > 0"),
    ("learning_rate: 0.1\n", r"unknown key\(s\) \['learning_rate'\]"),
    ("schedule: linear\n", r"schedule: 'linear' is not one of"),
    ("pct_start: 1.5\n", r"pct_start: must lie in \(0, 1\)"),
    ("distill_overrides: {imd_wieght: 1.0}\n", r"distill_overrides\.imd_wieght: unknown"),
    ("distill_overrides: {imd_weight: -1.0}\n", r"distill\.imd_weight: must be >= 0"),
    ("grad_accum: 0\n", r"train\.grad_accum: must be > 0"),
])
def test_bad_config_names_the_key(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_train_config(path)


def test_override_of_unknown_field_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['epoch'\]"):
        with_overrides(TrainConfig(), epoch=3)
