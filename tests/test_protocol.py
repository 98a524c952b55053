"""The protocol search: every head gets the same number of trials, on a validation
split, and the end-to-end rule is judged by its worst head."""

import pytest
import torch

from vinet_utils.experiments import ablations as A, protocol as PR, studies as ST
from vinet_utils.workflow import searches as SE
from vinet_utils.network import data as D, models as M, train as T
from vinet_utils.common.results import read_json

SMALL = {"n_train": None, "n_test": None, "pca_dim": 4, "samples_per_class": 20,
         "keep_per_class": 3, "finetune_epochs": 1, "finetune_batch_size": 64,
         "unfreeze_epochs": 1, "unfreeze_lr": 0.02, "psi": 0.05, "max_degree": 2}


def _base(tmp_path, holdout_frac=0.0):
    """A one-epoch base in the smoke folder of ``tmp_path`` (with a holdout, if asked)."""
    run = tmp_path / "smoke" / "cifar10-resnet18"
    ds = D.load_dataset("cifar10", holdout_frac=holdout_frac)
    torch.manual_seed(0)
    T.train_classifier(M.resnet18(10, width=0.125), ds, T.TrainConfig(epochs=1, batch_size=50),
                       run, params={"arch": "resnet18", "width": 0.125,
                                    "holdout_frac": holdout_frac}, progress=False)
    return run, ds


def test_every_head_gets_the_same_trials_on_the_held_out_images(synthetic_data, tmp_path):
    run, ds = _base(tmp_path, holdout_frac=0.1)
    over = {**SMALL, "holdout_frac": 0.1}
    path = PR.run("smoke", variants=["tiny"], results_dir=tmp_path, end_to_end=["tiny"],
                  overrides=over, trials=2, e2e_trials=2, seeds=2)
    rec = read_json(path)["metrics"]
    assert set(rec["frozen"]) == set(PR.HEADS)
    assert {len(t) for t in rec["frozen"].values()} == {2}
    counts = {len(t) for t in rec["end_to_end"].values()}  # as many rounds for every head
    assert len(counts) == 1 and counts.pop() % 2 == 0
    assert set(rec["end_to_end"]) == set(A.END_TO_END_HEADS)
    for head, trials in rec["frozen"].items():
        assert set(trials[0]["values"]) == set(PR.SPACES[head])  # each head its own knobs
        for t in trials:  # the mean of 2 trainings, saturation only where there is a projection
            row = t["per_cut"]["tiny"]
            assert len(row["val_acc_per_seed"]) == 2
            assert row["val_acc"] == pytest.approx(sum(row["val_acc_per_seed"]) / 2)
            assert (row["saturation"] is None) == (head in PR.PLAIN)
        assert rec["best"][head] == SE.best(trials)["label"]
    # the validation split is the held-out images, which the base never trained on
    assert rec["validation"] == {"source": "holdout", "holdout_frac": 0.1, "n_fit": len(ds.train_x),
                                 "n_val": len(ds.holdout_y), "overlaps_base_training": False}
    for t in rec["end_to_end"]["VI-Net"]:
        assert t["per_cut"]["tiny"]["frozen_val_acc"] == SE.best(rec["frozen"]["VI-Net"])[
            "per_cut"]["tiny"]["val_acc"]
    assert (run / "protocol.png").exists() and (run / "protocol.db").exists()

    # the storage replays: asking again trains nothing and gives the same records
    again = read_json(PR.run("smoke", variants=["tiny"], results_dir=tmp_path,
                             end_to_end=["tiny"], overrides=over, trials=2, e2e_trials=2,
                             seeds=2))["metrics"]
    assert again["frozen"] == rec["frozen"] and again["end_to_end"] == rec["end_to_end"]

    # searching some heads again keeps the others' searches as recorded; a search with
    # other trials per head cannot keep them and says so before it trains anything
    some = read_json(PR.run("smoke", variants=["tiny"], results_dir=tmp_path,
                            end_to_end=["tiny"], overrides=over, trials=2, e2e_trials=2,
                            seeds=2, heads=["VI-Net"], e2e_heads=["VI-Net"]))["metrics"]
    assert some["frozen"] == rec["frozen"]
    assert some["kept_from_earlier_run"] == [h for h in PR.HEADS if h != "VI-Net"]
    assert set(some["end_to_end"]) == {"VI-Net"}
    with pytest.raises(ValueError, match="--heads VI-Net keeps the other heads"):
        PR.run("smoke", variants=["tiny"], results_dir=tmp_path, overrides=over, trials=3,
               seeds=2, heads=["VI-Net"])


def test_the_same_seed_gives_the_same_choices_and_a_carved_split_says_it_overlaps(
        synthetic_data, tmp_path):
    _base(tmp_path)
    recs = [read_json(PR.run("smoke", variants=["tiny"], results_dir=tmp_path, overrides=SMALL,
                             trials=3, seeds=2, heads=["linear (flatten)"],
                             storage=f"sqlite:///{tmp_path / f'{i}.db'}"))["metrics"]
            for i in range(2)]
    assert recs[0]["frozen"] == recs[1]["frozen"]
    assert recs[0]["validation"]["overlaps_base_training"] is True
    assert recs[0]["storage"].endswith("1.db") is False and recs[1]["storage"].endswith("1.db")


def test_a_search_asks_for_enough_trainings_and_known_heads(synthetic_data, tmp_path):
    _base(tmp_path)
    with pytest.raises(ValueError, match="--seeds must be at least 2"):
        PR.run("smoke", variants=["tiny"], results_dir=tmp_path, seeds=1)
    with pytest.raises(ValueError, match="--heads must be one of"):
        PR.run("smoke", variants=["tiny"], results_dir=tmp_path, heads=["VI-Net (gap)"])


def test_end_to_end_cuts_must_be_swept_cuts(synthetic_data, tmp_path):
    with pytest.raises(ValueError, match="--end-to-end must be drawn from --variants tiny"):
        PR.run("smoke", variants=["tiny"], results_dir=tmp_path, end_to_end=["small"])


def test_a_flagged_range_is_widened_past_its_edge_and_searched_again_with_as_many_trials():
    space = {"finetune_lr": ("log", 1e-4, 1.0), "psi": ("log", 0.01, 0.5), "m": ("cat", (1, 2))}
    wider = ST.widen(space, {"finetune_lr": 0.9, "psi": 0.011}, ["finetune_lr", "psi"])
    assert wider == {"finetune_lr": ("log", 1e-4, 10.0), "psi": ("log", 0.001, 0.5), "m": space["m"]}
    assert ST.widen({"finetune_lr": ("log", 1e-4, 10.0)}, {"finetune_lr": 9.0},
                    ["finetune_lr"]) == {"finetune_lr": ("log", 1e-4, 10.0)}  # at its limit
    calls = []

    def study(space, round_):  # the first range's best sits at its top; the wider one's does not
        calls.append((space["finetune_lr"], round_))
        lr, score = (0.9, 1.0) if round_ == 0 else (2.0, 0.5)
        return [{"number": n, "objective": score - n, "values": {"finetune_lr": lr}, "label": "x"}
                for n in range(3)]

    got = ST.search_widening(study, {"finetune_lr": ("log", 1e-4, 1.0)}, 3)
    assert calls == [(("log", 1e-4, 1.0), 0), (("log", 1e-4, 10.0), 1)]
    assert got["flags"] == [] and got["space"] == {"finetune_lr": ("log", 1e-4, 10.0)}
    assert len(got["earlier"]) == 1 and got["earlier"][0]["flags"] == ["finetune_lr"]
    # every round's trials count, and the choice is the best of all of them: here the
    # first range's best, which is no longer at an edge of the wider range
    assert [t["round"] for t in got["trials"]] == [0, 0, 0, 1, 1, 1]
    assert SE.best(got["trials"])["values"] == {"finetune_lr": 0.9}
    # a head that needs no widening still gets as many rounds, in its own range
    calls.clear()
    inside = lambda space, r: [{"number": 0, "objective": 1.0, "label": "y",  # noqa: E731
                                "values": {"finetune_lr": 0.01}}] if not calls.append(r) else []
    got = ST.search_widening(inside, {"finetune_lr": ("log", 1e-4, 1.0)}, 1, rounds=2)
    assert calls == [0, 1] and len(got["trials"]) == 2 and got["flags"] == []
    assert got["space"] == {"finetune_lr": ("log", 1e-4, 1.0)}


def test_equal_rounds_repeats_until_a_widened_catch_up_is_matched():
    space = {"finetune_lr": ("log", 1e-4, 1.0)}

    def study_of(edge_rounds):
        def study(space_, round_):
            lr = 0.95 * space_["finetune_lr"][2] if round_ in edge_rounds else 0.01
            return [{"number": 0, "objective": float(round_), "values": {"finetune_lr": lr},
                     "label": "x"}]
        return study

    # "a" needs no widening (1 round); "b" is flagged once (2 rounds); "a" catches up to 2
    # and is flagged in that round (3); then "b" must catch up to 3
    studies = {"a": study_of({1}), "b": study_of({0})}
    found = {h: ST.search_widening(st, space, 1) for h, st in studies.items()}
    assert {h: len(f["earlier"]) + 1 for h, f in found.items()} == {"a": 1, "b": 2}
    ST.equal_rounds(found, studies, {h: space for h in studies}, 1)
    assert {h: len(f["earlier"]) + 1 for h, f in found.items()} == {"a": 3, "b": 3}


def test_a_value_in_the_outer_tenth_of_its_log_range_is_flagged():
    space = {"lr": ("log", 1e-4, 1.0), "mode": ("cat", (1, 2))}
    # 1e-4 .. 1 is four decades: the outer tenth ends 0.4 decades in from either end
    assert ST.edge_flags({"lr": 2.4e-4, "mode": 1}, space) == ["lr"]
    assert ST.edge_flags({"lr": 2.6e-4, "mode": 2}, space) == []
    assert ST.edge_flags({"lr": 0.39}, space) == []
    assert ST.edge_flags({"lr": 0.41}, space) == ["lr"]


def test_each_head_adopts_its_best_trial_frozen_and_end_to_end():
    def t(n, objective, **values):
        return {"number": n, "objective": objective, "values": values}

    result = {"frozen": {
        "VI-Net": [t(0, 70.0, finetune_lr=0.0123456, train_projection="slow", psi=0.05),
                   t(1, 71.0, finetune_lr=0.2, train_projection="normalized", psi=0.0333333)],
        "linear (flatten)": [t(0, 60.0, finetune_lr=0.002), t(1, 60.0, finetune_lr=0.5)]},
        "end_to_end": {"linear (flatten)": [
            t(0, 65.0, unfreeze_lr=0.01, unfreeze_base_lr_scale=2.0, unfreeze_bn_stats="frozen")]}}
    assert SE.chosen_settings(result) == {
        "finetune_lr": 0.2, "train_projection": "normalized", "psi": 0.0333,
        "rival_settings": {"linear": {"finetune_lr": 0.002, "unfreeze_lr": 0.01,  # ties: earlier
                                      "unfreeze_base_lr_scale": 2.0, "unfreeze_bn_stats": "frozen"}}}


@pytest.mark.parametrize("profile", ["cpu", "cpu-cifar100"])
def test_a_profile_trains_each_head_as_its_committed_protocol_search_chose(profile):
    """A profile that names rival settings took them, and VI-Net's projection mode, from
    the protocol search committed in its run folder."""
    from vinet_utils.workflow import params as P
    from vinet_utils.workflow.pipeline import load_profile, profile_setting

    values = load_profile(profile)
    if values.get("rival_settings") is None:
        pytest.skip(f"params/{profile}.yaml trains every head as VI-Net")
    dataset, arch = profile_setting(values, None, None)
    rec = read_json(P.run_path(None, profile, dataset, arch) / "protocol.json")
    chosen = SE.chosen_settings(rec["metrics"])
    assert chosen == {k: values[k] for k in chosen}


def _searched_run(profile: str):
    """The committed run folder of ``profile``, whose protocol search a test reads; the
    test is skipped where that search has not run yet (the cpu run's always has)."""
    from vinet_utils.workflow import params as P
    from vinet_utils.workflow.pipeline import load_profile, profile_setting

    run = P.run_path(None, profile, *profile_setting(load_profile(profile), None, None))
    if profile != "cpu" and not (run / "protocol.json").exists():
        pytest.skip(f"the {profile} run's search has not run yet")
    return run


@pytest.mark.parametrize("profile", ["cpu", "cpu-cifar100"])
def test_the_committed_search_is_fair_and_has_no_flag(profile):
    """A run's search: every head the same number of trials, frozen and end to end,
    each trial the mean of at least 2 trainings, on images the base never trained on,
    and no chosen value in the outer tenth of its range."""
    path = _searched_run(profile) / "protocol.json"
    m = read_json(path)["metrics"]
    assert set(m["frozen"]) == set(PR.HEADS)
    # every head as many rounds of as many trials, frozen and end to end
    for kind, widened, per_round in (("frozen", "widened", "trials_per_head"),
                                     ("end_to_end", "widened_end_to_end", "e2e_trials_per_head")):
        rounds = {h: len(m.get(widened, {}).get(h, [])) + 1 for h in m[kind]}
        assert len(set(rounds.values())) <= 1, (kind, rounds)
        for head, trials in m[kind].items():
            assert len(trials) == rounds[head] * m[per_round], (kind, head)
            assert {t["round"] for t in trials} == set(range(rounds[head])), (kind, head)
    assert set(m["end_to_end"]) == set(m["e2e_heads"]) <= set(A.END_TO_END_HEADS)
    budget = path.parent / "budget.json"
    if budget.exists():  # every head of the budget curve had an end-to-end study of its own
        assert set(read_json(budget)["metrics"]["heads"]) <= set(m["e2e_heads"])
    assert m["trainings_per_trial"] >= 2
    assert m["validation"]["overlaps_base_training"] is False
    base = read_json(path.parent / "01_baseline.json")
    assert base["params"]["holdout_frac"] == m["validation"]["holdout_frac"] > 0
    assert base["metrics"]["n_train"] == m["validation"]["n_fit"]
    for head, trials in m["frozen"].items():  # the flags are what the rule says of the choices
        assert ST.edge_flags(SE.best(trials)["values"], m["spaces"][head]) == m["flags"].get(head, [])
    assert m["flags"] == {} and m["flags_end_to_end"] == {}


@pytest.mark.parametrize("profile", ["cpu", "cpu-cifar100"])
def test_the_committed_search_is_every_trial_its_storage_holds(profile):
    """A run's protocol.json records, for every head, exactly the distinct finished trials
    of that head's stored frozen studies (every round of its range), so a reader of the
    results file sees every trial the storage holds, none left out (a trial stopped
    before it finished is in the storage but has no value to record)."""
    import optuna

    run = _searched_run(profile)
    url = f"sqlite:///{run / 'protocol.db'}"
    m = read_json(run / "protocol.json")["metrics"]
    names = [s.study_name for s in optuna.get_all_study_summaries(url)
             if s.study_name.startswith(f"{run.name}/frozen/")]
    for head, trials in m["frozen"].items():
        stored = sorted(round(t.value, 6) for n in names if n.split("/")[2] == head
                        for t in ST.finished(optuna.load_study(study_name=n, storage=url)))
        assert sorted(round(t["objective"], 6) for t in trials) == stored, head


def test_an_end_to_end_study_is_never_reused_from_another_frozen_start(tmp_path):
    """The end-to-end trials of a head start from its best frozen trial: when that choice
    changes, the stored study of the old start is left alone and a new one is searched."""
    storage = f"sqlite:///{tmp_path / 'p.db'}"
    first = ST.open_e2e_study(storage, "run/end to end/MLP/tiny", 0, 2, "finetune_lr=0.5")
    first.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    again = ST.open_e2e_study(storage, "run/end to end/MLP/tiny", 0, 2, "finetune_lr=0.5")
    assert len(again.trials) == 2  # the same start resumes its study
    moved = ST.open_e2e_study(storage, "run/end to end/MLP/tiny", 0, 2, "finetune_lr=0.1")
    assert len(moved.trials) == 0 and moved.user_attrs["start"] == "finetune_lr=0.1"
    back = ST.open_e2e_study(storage, "run/end to end/MLP/tiny", 0, 2, "finetune_lr=0.5")
    assert len(back.trials) == 2


def test_the_committed_end_to_end_studies_record_the_frozen_trial_they_started_from():
    """Every stored end-to-end study of the cpu run names the frozen trial it started
    from, and the trials the committed search records for a head are those of its studies
    that started from its best frozen trial."""
    import optuna

    from vinet_utils.workflow import params as P

    run = P.run_path(None, "cpu", "cifar10", "resnet18")
    m = read_json(run / "protocol.json")["metrics"]
    storage = f"sqlite:///{run / 'protocol.db'}"
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)
             if "/end to end/" in s.study_name]
    assert {n.split("/")[2] for n in names} == set(m["end_to_end"])
    used = dict.fromkeys(m["end_to_end"], 0)
    for n in names:
        study, head = optuna.load_study(study_name=n, storage=storage), n.split("/")[2]
        if study.user_attrs["start"] == SE.best(m["frozen"][head])["label"]:
            used[head] += len(ST.finished(study))
    assert used == {h: len(t) for h, t in m["end_to_end"].items()}


def test_a_resumed_study_draws_new_trials_and_a_repeated_trial_counts_once(tmp_path):
    """A study stopped and resumed (a new process) goes on with new values, where a
    sampler seeded as at the start would draw its first values again; a trial that does
    repeat an earlier one's values is left out and another is drawn in its place."""
    storage = f"sqlite:///{tmp_path / 'p.db'}"

    def objective(t):
        return -abs(t.suggest_float("lr", 1e-4, 1.0, log=True) - 0.01)

    first = ST.open_study(storage, "run/frozen/MLP", 0, startup=4)
    ST.optimize(first, objective, 2)
    resumed = ST.open_study(storage, "run/frozen/MLP", 0, startup=4)  # as a new process would
    ST.optimize(resumed, objective, 4)
    values = [t.params["lr"] for t in resumed.trials]
    assert len(values) == 4 and len(set(values)) == 4
    resumed.enqueue_trial({"lr": values[0]})  # a repeat of the first trial
    ST.optimize(resumed, objective, 5)
    assert len(resumed.trials) == 6 and resumed.trials[4].params["lr"] == values[0]
    kept = ST.finished(resumed)
    assert len(kept) == 5 and [t.number for t in kept] == [0, 1, 2, 3, 5]


def test_the_search_figure_draws_a_head_alike_in_every_panel():
    """protocol.png: a head has one colour in the frozen and the end-to-end panels (the
    end-to-end heads are a subset of the frozen ones, in another order), and the title
    counts each kind's trials."""
    import matplotlib.colors as mc

    from vinet_utils.report import figures as plots

    def trials(n, key, cut, **extra):
        return [{"number": i, "objective": float(i), "values": {key: 10.0 ** -i},
                 "label": f"{key}={10.0 ** -i:g}",
                 "per_cut": {cut: {"val_acc": 50.0 + i, **extra}}} for i in range(n)]

    frozen = {h: trials(3, "finetune_lr", "tiny") for h in ("A", "B", "C")}
    e2e = {"C": trials(2, "unfreeze_lr", "tiny", frozen_val_acc=50.0)}
    rec = {"metrics": {"variants": ["tiny"], "end_to_end_cuts": ["tiny"], "trainings_per_trial": 2,
                       "frozen": frozen, "end_to_end": e2e,
                       "best": {h: SE.best(t)["label"] for h, t in frozen.items()},
                       "best_end_to_end": {h: SE.best(t)["label"] for h, t in e2e.items()}}}
    fig = plots.protocol(rec)
    frozen_ax, e2e_ax = fig.axes[0], fig.axes[1]

    def colour(ax, n):  # the face colour of the first scatter with n points
        pc = next(c for c in ax.collections if len(c.get_offsets()) == n)
        return mc.to_hex(pc.get_facecolor()[0])

    third = [c for c in frozen_ax.collections if len(c.get_offsets()) == 3][2]  # head C, frozen
    assert mc.to_hex(third.get_facecolor()[0]) == colour(e2e_ax, 2)
    title = fig._suptitle.get_text()
    assert "3 trials per head" in title and "end to end: 2" in title


def test_a_study_made_on_another_base_is_never_replayed(tmp_path):
    """The studies are stored with the base and data they were made on: opened for
    another base, a stored study is left alone and the trials go to a study of its own."""
    storage = f"sqlite:///{tmp_path / 's.db'}"
    a = ST.open_study(storage, "run/frozen/MLP", 0, 2, made_on={"base": 1.0, "data": "x"})
    a.optimize(lambda t: t.suggest_float("lr", 0.1, 1.0), n_trials=2)
    again = ST.open_study(storage, "run/frozen/MLP", 0, 2, made_on={"base": 1.0, "data": "x"})
    assert len(again.trials) == 2 and again.study_name == "run/frozen/MLP"
    other = ST.open_study(storage, "run/frozen/MLP", 0, 2, made_on={"base": 2.0, "data": "x"})
    assert other.study_name != "run/frozen/MLP" and len(other.trials) == 0
    e2e = ST.open_e2e_study(storage, "run/e2e/MLP", 0, 2, "lr=0.1", made_on={"base": 2.0, "data": "y"})
    assert e2e.user_attrs["made_on"] == '{"base": 2.0, "data": "y"}'


def test_the_committed_cpu_search_is_stored_with_its_base():
    import json
    from types import SimpleNamespace

    import optuna

    from vinet_utils.common.results import REPO_ROOT
    from vinet_utils.network.train import load_baseline

    run = REPO_ROOT / "results" / "cpu" / "cifar10-resnet18"
    model, base = load_baseline(run)
    mine = PR.made_on(model, SimpleNamespace(fingerprint=base["data"]["fingerprint"]))
    storage = f"sqlite:///{run / 'protocol.db'}"
    for s in optuna.get_all_study_summaries(storage):
        assert json.loads(s.user_attrs["made_on"]) == mine, s.study_name



def test_the_committed_search_records_the_ranges_its_trials_were_drawn_from():
    """protocol.json records, per study, the ranges its stored trials were drawn from (as
    the storage holds them), and every recorded frozen trial lies within its round's."""
    from vinet_utils.common.results import REPO_ROOT, read_json

    run = REPO_ROOT / "results" / "cpu" / "cifar10-resnet18"
    m = read_json(run / "protocol.json")["metrics"]
    assert m["ranges_drawn"] == ST.ranges_drawn(f"sqlite:///{run / 'protocol.db'}")
    for head, trials in m["frozen"].items():
        for t in trials:
            name = "/".join([run.name, "frozen", head, *ST.round_names(t["round"])])
            for knob, value in t["values"].items():
                if isinstance(value, float):
                    assert any(lo <= value <= hi for lo, hi in m["ranges_drawn"][name][knob]), (
                        head, t["round"], knob, value)
