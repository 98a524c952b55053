"""Student's t intervals, checked against values from printed t tables."""

import math
import statistics

import pytest

from vinet_utils.common import stats


@pytest.mark.parametrize("df, q", [(1, 12.706), (2, 4.303), (3, 3.182), (5, 2.571),
                                   (10, 2.228), (30, 2.042)])
def test_the_975_quantile_matches_the_printed_tables(df, q):
    assert stats.t_quantile(0.975, df) == pytest.approx(q, abs=2e-3)


def test_the_quantile_is_symmetric_and_tends_to_the_normal():
    assert stats.t_quantile(0.025, 4) == pytest.approx(-stats.t_quantile(0.975, 4))
    assert stats.t_quantile(0.975, 2000) == pytest.approx(1.96, abs=2e-3)
    with pytest.raises(ValueError, match="p must be between 0 and 1"):
        stats.t_quantile(1.0, 3)


def test_a_mean_interval_uses_t_with_n_minus_1_degrees_of_freedom():
    xs = [77.1, 77.5, 78.0]
    got = stats.mean_interval(xs)
    sd = statistics.stdev(xs)
    assert got["mean"] == pytest.approx(statistics.fmean(xs))
    assert got["half_width"] == pytest.approx(4.303 * sd / math.sqrt(3), rel=1e-3)
    assert stats.mean_interval([5.0])["half_width"] is None


def test_two_equal_seeds_against_two_others_do_not_make_a_sure_difference():
    """Two seeds each: the t interval is far wider than two standard errors."""
    d = stats.difference_interval([78.0, 78.0], [77.8, 78.0])
    se = math.sqrt(statistics.variance([77.8, 78.0]) / 2)
    assert d["diff"] == pytest.approx(0.1)
    assert d["df"] == 1 and d["half_width"] == pytest.approx(12.706 * se, rel=1e-3)
    assert d["half_width"] > abs(d["diff"])


def test_welchs_interval_with_two_samples_of_nonzero_variance():
    """Welch's interval on two samples that both vary: the standard error of each mean,
    the Welch-Satterthwaite degrees of freedom (rounded down), and the t quantile of a
    printed table at that df."""
    a, b = [81.1, 81.9, 82.6], [78.2, 79.9, 79.0, 80.5]
    va, vb = statistics.variance(a) / 3, statistics.variance(b) / 4
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3)
    assert 4 < df < 5  # so the printed 4-df quantile, 2.776, applies
    d = stats.difference_interval(a, b)
    assert d["df"] == 4 and d["diff"] == pytest.approx(statistics.fmean(a) - statistics.fmean(b))
    assert d["half_width"] == pytest.approx(2.776 * math.sqrt(va + vb), rel=1e-3)
    assert 0 < d["half_width"] < abs(d["diff"])  # the difference holds beyond its interval
