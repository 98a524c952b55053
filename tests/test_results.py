"""Claims the docs make about committed results, checked against those results files."""

from vinet_utils.results import REPO_ROOT, read_json

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
