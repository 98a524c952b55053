"""The protocol search: every head gets the same number of trials, on a validation
split, and the end-to-end rule is judged by its worst head."""

import pytest
import torch

from vinet_utils import data as D, models as M, protocol as PR, train as T
from vinet_utils.results import read_json

SMALL = {"n_train": None, "n_test": None, "pca_dim": 4, "samples_per_class": 20,
         "keep_per_class": 3, "finetune_epochs": 1, "finetune_batch_size": 64,
         "unfreeze_epochs": 1, "unfreeze_lr": 0.02, "psi": 0.05, "max_degree": 2}


def test_every_head_gets_the_same_trials_and_the_worst_head_judges_a_rule(synthetic_data,
                                                                          tmp_path):
    run = tmp_path / "smoke" / "cifar10-resnet18"
    ds = D.load_dataset("cifar10")
    torch.manual_seed(0)
    T.train_classifier(M.resnet18(10, width=0.125), ds, T.TrainConfig(epochs=1, batch_size=50),
                       run, params={"arch": "resnet18", "width": 0.125}, progress=False)
    path = PR.run("smoke", variants=["tiny"], results_dir=tmp_path, end_to_end=["tiny"],
                  overrides=SMALL)
    rec = read_json(path)
    rows = rec["metrics"]["per_cut"]["tiny"]
    assert set(rows) == set(PR.PROJECTED) | set(PR.PLAIN)
    assert {len(r) for r in rows.values()} == {len(PR.TRIALS["projected"])}
    assert len(PR.TRIALS["projected"]) == len(PR.TRIALS["plain"])
    for head, trials in rows.items():  # saturation where there is a projection, only there
        assert all((t["saturation"] is None) == (head in PR.PLAIN) for t in trials)
        best = max(trials, key=lambda t: t["val_acc"])["label"]
        assert rec["metrics"]["best"]["tiny"][head] == best
    split = rec["metrics"]["validation"]
    assert split["n_fit"] + split["n_val"] == len(ds.train_x) and split["n_val"] == 40
    e2e = rec["metrics"]["end_to_end"]["tiny"]
    assert {len(r) for r in e2e["per_head"].values()} == {len(PR.E2E_TRIALS)}
    worst = PR.worst_gains(e2e["per_head"])
    assert e2e["chosen"] == max(worst, key=worst.get) and e2e["worst_gain"] == worst
    assert (tmp_path / "smoke" / "cifar10-resnet18" / "protocol.png").exists()

    # the check beside the search: a rate the search tried gives the search's own number
    with pytest.raises(ValueError, match="--edge-head"):
        PR.edge("smoke", [0.01], head="VI-Net (gap)", variants=["tiny"], results_dir=tmp_path,
                overrides=SMALL)
    vi = read_json(PR.edge("smoke", [0.01], head="VI-Net", variants=["tiny"],
                           results_dir=tmp_path, overrides=SMALL))["metrics"]
    assert vi["mode"] == {"train_projection": rec["params"]["train_projection"]}
    assert [t["trial"] for t in vi["per_cut"]["tiny"]["VI-Net"]] == [
        {**vi["mode"], "finetune_lr": 0.01}]
    edge = read_json(PR.edge("smoke", [0.005, 0.02], variants=["tiny"], results_dir=tmp_path,
                             overrides=SMALL))["metrics"]
    tried = {t["trial"]["finetune_lr"]: t["val_acc"] for t in rows["linear (flatten)"]}
    again = {t["trial"]["finetune_lr"]: t["val_acc"] for t in edge["per_cut"]["tiny"]["linear (flatten)"]}
    assert set(again) == {0.005, 0.02} and again[0.02] == tried[0.02]
    assert edge["search_best"]["tiny"]["val_acc"] == max(tried.values())
    assert edge["search_grid"] == sorted(tried)


def test_worst_gains_take_the_smallest_gain_of_each_rule():
    per_head = {"a": [{"label": "r1", "gain": 1.0}, {"label": "r2", "gain": -2.0}],
                "b": [{"label": "r1", "gain": -0.5}, {"label": "r2", "gain": 3.0}]}
    assert PR.worst_gains(per_head) == {"r1": -0.5, "r2": -2.0}


def test_end_to_end_cuts_must_be_swept_cuts(synthetic_data, tmp_path):
    with pytest.raises(ValueError, match="--end-to-end must be drawn from --variants tiny"):
        PR.run("smoke", variants=["tiny"], results_dir=tmp_path, end_to_end=["small"])


def test_each_head_adopts_its_best_trial_on_average_over_the_cuts():
    def rows(*accs):
        return [{"trial": t, "val_acc": a} for t, a in zip(PR.TRIALS["projected"], accs)]

    def plain(*accs):
        return [{"trial": t, "val_acc": a} for t, a in zip(PR.TRIALS["plain"], accs)]

    # VI-Net: "slow" wins at tiny, "normalized" at small and on average
    result = {"per_cut": {
        "tiny": {"VI-Net": rows(40, 45, 51, 50), "random monomials": rows(30, 1, 20, 20),
                 "linear (flatten)": plain(57, 55, 54, 50)},
        "small": {"VI-Net": rows(40, 45, 49, 52), "random monomials": rows(30, 1, 20, 31),
                  "linear (flatten)": plain(50, 56, 54, 50)}}}
    assert PR.chosen_settings(result) == {
        "train_projection": "normalized",
        "rival_settings": {"random monomials": {"train_projection": False},
                           "linear": {"finetune_lr": 0.05}}}
    # end to end: the rule whose worst head, over the cuts, gains most
    labels = [PR.trial_label(t) for t in PR.E2E_TRIALS]
    result.update(end_to_end_trials=PR.E2E_TRIALS, end_to_end={
        "tiny": {"worst_gain": dict(zip(labels, [1.0, 2.0, 0.5, -1.0]))},
        "small": {"worst_gain": dict(zip(labels, [0.8, -0.1, 0.6, 3.0]))}})
    assert {k: v for k, v in PR.chosen_settings(result).items()
            if k.startswith("unfreeze")} == PR.E2E_TRIALS[0]


@pytest.mark.parametrize("profile", ["cpu", "cpu-cifar100"])
def test_a_profile_trains_each_head_as_its_committed_protocol_search_chose(profile):
    """A profile that names rival settings took them, and VI-Net's projection mode, from
    the protocol search committed in its run folder."""
    from vinet_utils import params as P
    from vinet_utils.pipeline import load_profile, profile_setting

    values = load_profile(profile)
    if values.get("rival_settings") is None:
        pytest.skip(f"params/{profile}.yaml trains every head as VI-Net")
    dataset, arch = profile_setting(values, None, None)
    rec = read_json(P.run_path(None, profile, dataset, arch) / "protocol.json")
    chosen = PR.chosen_settings(rec["metrics"])
    assert chosen == {k: values[k] for k in chosen}
