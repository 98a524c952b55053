"""Intervals for means over a few seeds: Student's t, its quantiles from SciPy.

With two or three seeds, "two standard errors" understates the uncertainty badly
(the 95% quantile of t with 1 degree of freedom is 12.7, not 2). Every interval the
verdict reports is the t interval of the mean.
"""

from __future__ import annotations

import math
import statistics

import scipy.stats


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` >= 1 degrees of freedom (SciPy's)."""
    if not 0 < p < 1:
        raise ValueError(f"p must be between 0 and 1 (got {p!r})")
    if df < 1:
        raise ValueError(f"df must be at least 1 (got {df!r})")
    return float(scipy.stats.t.ppf(p, df))


def mean_interval(xs, level: float = 0.95) -> dict:
    """``{"mean", "half_width", "n", "std"}``: the ``level`` t interval of the mean of
    ``xs`` (``half_width`` is None for a single value: no interval can be given)."""
    xs = list(xs)
    if not xs:
        raise ValueError("mean_interval needs at least one value")
    m = statistics.fmean(xs)
    if len(xs) < 2:
        return {"mean": m, "half_width": None, "n": 1, "std": None}
    sd = statistics.stdev(xs)
    q = t_quantile(0.5 + level / 2, len(xs) - 1)
    return {"mean": m, "half_width": q * sd / math.sqrt(len(xs)), "n": len(xs), "std": sd}


def difference_interval(a, b, level: float = 0.95) -> dict:
    """The ``level`` interval of mean(a) - mean(b) for independent samples (Welch's t,
    its degrees of freedom by Welch-Satterthwaite, rounded down, at least 1).
    ``half_width`` is None where either side has a single value."""
    a, b = list(a), list(b)
    d = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return {"diff": d, "half_width": None, "df": None}
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return {"diff": d, "half_width": 0.0, "df": len(a) + len(b) - 2}
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    df = max(1, int(df))
    return {"diff": d, "half_width": t_quantile(0.5 + level / 2, df) * se, "df": df}
