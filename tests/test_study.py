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
    family = rec["trend_bases"]  # the trend runs through the bases of one width only
    assert {rec["bases"][b]["width"] for b in family} == {0.25}
    for v, t in rec["margin_trend"].items():
        xs = [rec["bases"][b]["baseline_acc"] for b in family if v in margins[b]]
        ys = [margins[b][v] for b in family if v in margins[b]]
        assert study.trend(xs, ys, rec["paper_baseline_acc"])["predicted"] == pytest.approx(t["predicted"])


@pytest.mark.skipif(not COMMITTED.exists(), reason="no committed study yet")
def test_the_verdict_the_readme_states_holds_in_the_committed_study():
    """The README's prose says: on every base, the paper's width and base included,
    VI-Net is nowhere ahead of the best head without polynomials by more than two
    standard errors; a head without polynomials does as well or better at nearly every
    cut (end to end, one seed: VI-Net ahead in at most one case, by less than half a
    point); and where each head trains as searched, random monomials are within a
    point of VI-Net. If a new run changes that, this fails and the prose must be
    rewritten."""
    rec = read_json(COMMITTED)
    ahead_e2e = []
    for name, s in rec["bases"].items():
        for v, c in s["cuts"].items():
            assert c["margin"] <= 2 * (c["margin_se"] or 0), (name, v)
            if c.get("e2e_margin", -1) > 0:
                ahead_e2e.append(c["e2e_margin"])
            if s.get("rival_settings"):
                assert abs(c["random_monomials_acc"] - c["vinet_acc"]) <= 1.0, (name, v)
    assert len(ahead_e2e) <= 1 and all(m < 0.5 for m in ahead_e2e), ahead_e2e
    assert any(s.get("rival_settings") for s in rec["bases"].values())
    top = max(rec["bases"].values(), key=lambda s: s["baseline_acc"])
    assert top["width"] == 1.0 and top["baseline_acc"] > rec["paper_baseline_acc"]
    assert "H200" in (top["device_name"] or "")


def test_the_paper_run_names_its_device_in_every_results_file():
    run = REPO_ROOT / "results" / "paper" / "cifar10-resnet18"
    files = sorted(run.glob("0*.json"))
    assert len(files) == 6
    for f in files:
        rec = read_json(f)
        assert rec["device"] == "cuda" and rec["device_name"].startswith("NVIDIA"), f.name
        assert rec["params"]["profile"] == "paper" and rec["params"].get("width", 1.0) == 1.0
