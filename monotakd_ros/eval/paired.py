"""Paired comparisons over seeds: per-seed differences, mean, sample std and a 95 % t interval.

Two rows trained with the same seed share their data order and initial weights, so their
difference on that seed is one paired observation. A comparison is a linear contrast of rows
(``{"a": 1, "b": -1}`` is a − b) evaluated per seed over the seeds every row involved has.
The interval is mean ± t(0.975, n − 1) · std / √n with the sample std (ddof = 1); the Student
t quantile is computed here from the regularised incomplete beta function (no scipy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from monotakd_ros.errors import ConfigError

CONFIDENCE = 0.95
_CF_ITERATIONS = 300
_CF_TOLERANCE = 1e-15
_TINY = 1e-300


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of I_x(a, b), evaluated with the modified Lentz method."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    value = d
    for m in range(1, _CF_ITERATIONS + 1):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            value *= c * d
        if abs(c * d - 1.0) < _CF_TOLERANCE:
            break
    return value


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):  # the fraction converges fast on this side
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def student_t_quantile(probability: float, df: float) -> float:
    """The t with P(T <= t) = ``probability`` (bisection on the CDF, to 1e-10)."""
    if not 0.0 < probability < 1.0 or not df > 0:
        raise ConfigError(f"t quantile: need 0 < probability < 1 and df > 0, got "
                          f"probability={probability}, df={df}")
    if probability < 0.5:
        return -student_t_quantile(1.0 - probability, df)
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < probability:
        low, high = high, 2.0 * high
    while high - low > 1e-10 * max(1.0, high):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if student_t_cdf(middle, df) < probability else (low, middle)
    return 0.5 * (low + high)


@dataclass(frozen=True)
class PairedStats:
    """Per-seed values of one contrast and their mean, sample std and 95 % interval."""

    seeds: tuple[int, ...]
    differences: tuple[float, ...]
    mean: float
    std: float  # sample std, ddof = 1 (nan for one seed)
    ci_low: float  # nan below two seeds
    ci_high: float

    @property
    def n(self) -> int:
        """Number of paired seeds."""
        return len(self.seeds)

    @property
    def verdict(self) -> str:
        """Whether "contrast > 0" holds: only when the whole interval lies above 0."""
        if self.n < 2:
            return f"does not hold: no interval from n = {self.n} seed(s)"
        if self.ci_low > 0:
            return "holds"
        if self.ci_high < 0:
            return "does not hold: the opposite holds (whole interval below 0)"
        return "does not hold: no evidence either way (interval contains 0)"

    def as_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        return {"seeds": list(self.seeds), "differences": list(self.differences),
                "mean": self.mean, "std": self.std, "n": self.n,
                "ci95": [self.ci_low, self.ci_high], "verdict": self.verdict}


def paired_stats(per_seed: Mapping[int, float]) -> PairedStats:
    """Mean, sample std (ddof = 1) and the 95 % t interval of per-seed differences."""
    seeds = tuple(sorted(per_seed))
    values = np.array([per_seed[s] for s in seeds], dtype=np.float64)
    if len(values) == 0:
        raise ConfigError("paired comparison: no seed in common")
    mean = float(values.mean())
    if len(values) < 2:
        return PairedStats(seeds, tuple(values.tolist()), mean, math.nan, math.nan, math.nan)
    std = float(values.std(ddof=1))
    half_width = student_t_quantile(0.5 + CONFIDENCE / 2, len(values) - 1) * std / math.sqrt(
        len(values))
    return PairedStats(seeds, tuple(values.tolist()), mean, std, mean - half_width,
                       mean + half_width)


def contrast_per_seed(values: Mapping[str, Mapping[int, float]],
                      weights: Mapping[str, float]) -> dict[int, float]:
    """Σ weight · value per seed, over the seeds that every weighted row has."""
    missing = [row for row in weights if row not in values]
    if missing:
        return {}
    common = set.intersection(*(set(values[row]) for row in weights))
    return {seed: float(sum(w * values[row][seed] for row, w in weights.items()))
            for seed in sorted(common)}
