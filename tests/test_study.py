"""The base-quality study: its trend arithmetic, and its committed results file agrees
with the run folders it summarises."""

import math

import numpy as np
import pytest

from vinet_utils.experiments import study
from vinet_utils.common.results import REPO_ROOT, read_json


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
def test_no_head_of_a_grid_searched_base_loses_accuracy_end_to_end():
    """The earlier grid search's end-to-end rule: at every cut fine-tuned end to end on
    the bases it was carried to, every head's end-to-end accuracy is at least its
    frozen-base mean minus 0.3 points."""
    for name, s in read_json(COMMITTED)["bases"].items():
        if not s.get("rival_settings") or s.get("holdout_frac"):
            continue
        rows = read_json(study.run_folder(name) / "05_ablations.json")["metrics"]["rows"]
        for r in (r for r in rows if r.get("protocol") == "end to end"):
            frozen = next(f for f in rows if f["head"] == r["head"] and f["variant"] == r["variant"]
                          and f.get("protocol", "frozen") == "frozen")
            assert r["acc"] >= frozen["acc"] - 0.3, (name, r["variant"], r["head"])


@pytest.mark.skipif(not COMMITTED.exists(), reason="no committed study yet")
def test_the_study_labels_each_base_by_the_protocol_it_was_made_under():
    """Only a base with a held-out validation split is on the present protocol, and it
    trains every head as the cpu run's committed search chose; the others are labelled
    as earlier (the grid search's choices, or every head at VI-Net's)."""
    from vinet_utils.workflow.searches import chosen_settings
    from vinet_utils.report.findings import base_label

    chosen = chosen_settings(read_json(study.run_folder("cpu") / "protocol.json")["metrics"])
    bases = read_json(COMMITTED)["bases"]
    present = {n for n, s in bases.items() if s.get("holdout_frac") and not s.get("heads_from")}
    assert present == {"cpu"}
    def frozen_only(rivals):  # its notebook 05 ran frozen: the end-to-end knobs are unused
        return {h: {k: v for k, v in s.items() if not k.startswith("unfreeze_")}
                for h, s in rivals.items()}

    assert frozen_only(bases["cpu"]["rival_settings"]) == frozen_only(chosen["rival_settings"])
    assert bases["cpu"]["train_projection"] == chosen["train_projection"]
    if "paper" in bases:  # the width-1.0 base trains its heads at the cpu search's settings
        assert bases["paper"]["heads_from"] == "cpu"
        assert frozen_only(bases["paper"]["rival_settings"]) == frozen_only(chosen["rival_settings"])
    for name, s in bases.items():
        label = base_label(s)
        assert ("each head as searched" in label) == (name in present), name
        assert ("earlier grid search" in label) == bool(s.get("rival_settings") and not s.get("holdout_frac"))
        assert ("search's settings" in label) == bool(s.get("heads_from")), name


def test_the_paper_run_names_its_device_in_every_results_file():
    """Stages 01-04 and 06 ran on a lent GPU and name it; notebook 05 ran later from the
    committed weights on whatever machine, and its record names it, as does each cut a
    stage run cut by cut has finished (``05_ablations.by_cut.json``)."""
    run = REPO_ROOT / "results" / "paper" / "cifar10-resnet18"
    files = sorted(f for f in run.glob("0*.json") if not f.name.endswith(".by_cut.json"))
    stages = {f.name[:2] for f in files}
    assert {"01", "02", "03", "04", "06"} <= stages <= {"01", "02", "03", "04", "05", "06"}
    dev = read_json(run / "device_run.json")  # what .device/paper.sh recorded of the machine
    assert dev["gpu"].startswith("NVIDIA") and dev["git_commit"] == read_json(files[0])["git_commit"]
    for f in files:
        rec = read_json(f)
        assert rec["params"]["profile"] == "paper" and rec["params"].get("width", 1.0) == 1.0
        if f.name.startswith("05"):
            assert rec["device"] in ("cpu", "cuda") and rec["device_name"], f.name
        else:
            assert rec["device"] == "cuda" and rec["device_name"].startswith("NVIDIA"), f.name
    for path in run.glob("0*.by_cut.json"):
        cuts = read_json(path)["cuts"]
        assert cuts and all(c["device_name"] and c["wall_time_s"] > 0 for c in cuts.values()), path.name
