"""Paired comparisons: Student t quantiles, intervals by hand, pairing over common seeds."""

from __future__ import annotations

import math

import pytest

from monotakd_ros.errors import ConfigError
from monotakd_ros.eval.paired import (
    contrast_per_seed,
    paired_stats,
    student_t_cdf,
    student_t_quantile,
)


@pytest.mark.parametrize(("df", "expected"), [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262),
                                              (30, 2.042), (10**7, 1.960)])
def test_t_quantile_matches_the_printed_tables(df: int, expected: float) -> None:
    assert student_t_quantile(0.975, df) == pytest.approx(expected, abs=6e-4)


def test_t_cdf_against_closed_forms() -> None:
    # df 1 is the Cauchy distribution: F(t) = 1/2 + atan(t)/pi.
    for t in (-3.0, -0.5, 0.0, 1.0, 7.0):
        assert student_t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)
    # df 2: F(t) = 1/2 + t / (2 sqrt(2 + t^2)).
    for t in (-2.0, 0.3, 4.0):
        assert student_t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)),
                                                     abs=1e-12)
    assert student_t_quantile(0.025, 4) == pytest.approx(-student_t_quantile(0.975, 4))
    with pytest.raises(ConfigError, match="0 < probability < 1"):
        student_t_quantile(1.5, 3)


def test_interval_of_a_hand_computed_example() -> None:
    # (1, 2, 3, 6): mean 3, sample std sqrt(14/3), t(0.975, 3) = 3.182446.
    stats = paired_stats({0: 1.0, 1: 2.0, 2: 3.0, 3: 6.0})
    half = 3.182446 * math.sqrt(14 / 3) / 2
    assert (stats.n, stats.mean) == (4, 3.0)
    assert stats.std == pytest.approx(math.sqrt(14 / 3))
    assert (stats.ci_low, stats.ci_high) == pytest.approx((3 - half, 3 + half), abs=1e-5)
    assert stats.verdict == "does not hold: no evidence either way (interval contains 0)"


def test_verdict_wording() -> None:
    # (2, 3, 4): mean 3, std 1, half width 4.302653 / sqrt(3) = 2.484: [0.516, 5.484].
    above = paired_stats({0: 2.0, 1: 3.0, 2: 4.0})
    assert above.ci_low == pytest.approx(3 - 4.302653 / math.sqrt(3), abs=1e-5)
    assert above.verdict == "holds"
    below = paired_stats({0: -2.0, 1: -3.0, 2: -4.0})
    assert below.verdict == "does not hold: the opposite holds (whole interval below 0)"
    single = paired_stats({5: 9.0})
    assert single.verdict == "does not hold: no interval from n = 1 seed(s)"
    assert math.isnan(single.std) and single.as_dict()["n"] == 1


def test_pairing_uses_only_the_seeds_both_rows_have() -> None:
    values = {"a": {0: 5.0, 1: 7.0, 2: 9.0}, "b": {1: 1.0, 2: 2.0, 3: 3.0}}
    assert contrast_per_seed(values, {"a": 1.0, "b": -1.0}) == {1: 6.0, 2: 7.0}
    assert contrast_per_seed(values, {"a": 0.5, "b": 0.5}) == {1: 4.0, 2: 5.5}
    assert contrast_per_seed(values, {"a": 1.0, "missing": -1.0}) == {}
    with pytest.raises(ConfigError, match="no seed in common"):
        paired_stats({})
