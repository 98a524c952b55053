"""Claims the docs make about committed results, checked against those results files."""

import pytest

from vinet_utils.common.results import REPO_ROOT, read_json

RUN = REPO_ROOT / "results" / "cpu" / "cifar10-resnet18"


def test_the_committed_run_times_every_cut_beside_its_flop_limit():
    """docs/results.md's FLOP-limit table: the full network and the four cuts, each cut
    with fewer FLOPs than the full network and a speed-up above 1."""
    m = read_json(RUN / "06_throughput.json")["metrics"]
    speed, flops = m["throughput"], m["flops_per_image"]
    assert set(speed) == set(flops) == {"ResNet (full)", "VI-Net tiny", "VI-Net small",
                                         "VI-Net medium", "VI-Net large"}
    full_speed, full_flops = speed["ResNet (full)"]["mean"], flops["ResNet (full)"]
    for name in set(speed) - {"ResNet (full)"}:
        assert full_flops / flops[name] > 1, name
        assert speed[name]["mean"] / full_speed > 1, name
    # each model's reported form is the faster of the forms it was timed in
    forms = m["throughput_by_form"]
    for name, rec in speed.items():
        timed = [r["mean"] for k, r in forms.items() if k.partition(" [")[0] == name]
        assert rec["mean"] == max(timed), name


def test_the_breakdown_prose_holds_on_its_results_file():
    """docs/results.md says of the cpu run's breakdown: the head takes about 2% of a
    VI-Net's time or less, close to its share of at most 2% of the FLOPs, and at tiny the
    truncated base alone stays below 85% of its own FLOP limit."""
    from vinet_utils.common.results import REPO_ROOT, read_json

    cuts = read_json(REPO_ROOT / "results" / "cpu" / "cifar10-resnet18" / "06_breakdown.json")["cuts"]
    assert set(cuts) == {"tiny", "small", "medium", "large"}
    for v, r in cuts.items():
        assert r["head_time_fraction"] <= 0.025 and r["head_flop_fraction"] <= 0.02, v
        assert r["head_time_fraction"] == pytest.approx(
            r["head_us_per_image"] / (r["base_us_per_image"] + r["head_us_per_image"]))
        assert r["share_of_limit"] == pytest.approx(r["speedup"] / r["flop_limit"])
    assert cuts["tiny"]["base_share_of_limit"] < 0.85
