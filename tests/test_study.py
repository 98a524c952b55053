"""The base-quality study: its trend arithmetic, and its committed results file agrees
with the run folders it summarises."""

import math

import numpy as np
import pytest

from vinet_utils import study
from vinet_utils.results import REPO_ROOT, read_json


def test_trend_is_least_squares_with_the_standard_error_of_the_mean_prediction():
    rng = np.random.default_rng(0)
    x = np.array([83.0, 86.5, 89.4, 91.1])
    y = 0.3 * x - 27 + rng.normal(0, 0.2, len(x))
    t = study.trend(list(x), list(y), 92.89)
    slope, intercept = np.polyfit(x, y, 1)
    assert t["slope_per_point"] == pytest.approx(slope) and t["intercept"] == pytest.approx(intercept)
    resid = y - (intercept + slope * x)
    s2 = (resid ** 2).sum() / (len(x) - 2)
    se = math.sqrt(s2 * (1 / len(x) + (92.89 - x.mean()) ** 2 / ((x - x.mean()) ** 2).sum()))
    assert t["predicted"] == pytest.approx(intercept + slope * 92.89)
    assert t["predicted_se"] == pytest.approx(se)
    assert study.trend([1.0, 2.0], [0.0, 1.0], 3.0) is None  # two points make no error bar


COMMITTED = REPO_ROOT / "results" / "study" / "study.json"


@pytest.mark.skipif(not COMMITTED.exists(), reason="no committed study yet")
def test_committed_study_agrees_with_its_run_folders():
    rec = read_json(COMMITTED)
    assert len(rec["bases"]) >= 1
    for name, summary in rec["bases"].items():
        again = study.base_summary(study.run_folder(name))
        assert again["baseline_acc"] == summary["baseline_acc"], name
        for v, cut in summary["cuts"].items():
            for key, value in cut.items():
                if isinstance(value, float):
                    assert again["cuts"][v][key] == pytest.approx(value, abs=1e-9), (name, v, key)
                else:
                    assert again["cuts"][v][key] == value, (name, v, key)
    margins = {b: {v: c["margin"] for v, c in s["cuts"].items()} for b, s in rec["bases"].items()}
    for v, t in rec["margin_trend"].items():
        xs = [rec["bases"][b]["baseline_acc"] for b in rec["bases"] if v in margins[b]]
        ys = [margins[b][v] for b in rec["bases"] if v in margins[b]]
        assert study.trend(xs, ys, rec["paper_baseline_acc"])["predicted"] == pytest.approx(t["predicted"])
