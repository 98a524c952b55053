"""The reference protocol: one recipe for every head, fixed before any result, with a
sweep of its learning rate at the budget compared, recorded row by row and resumable."""

from pathlib import Path

import pytest

from test_budget import SMALL, train_tiny_base
from vinet_utils.experiments import reference as R
from vinet_utils.workflow.pipeline import load_profile
from vinet_utils.common.results import read_json, write_json

RUN = Path(__file__).resolve().parents[1] / "results" / "cpu" / "cifar10-resnet18"


def test_the_rule_is_a_tenth_of_the_base_rate_at_the_fine_tuning_batch():
    cpu = load_profile("cpu")
    base = read_json(RUN / "01_baseline.json")["train_config"]
    expected = 0.1 * base["lr"] * cpu["finetune_batch_size"] / base["batch_size"]
    assert R.reference_lr(base, cpu["finetune_batch_size"]) == pytest.approx(expected)
    assert R.setting(cpu, base, "MLP", "reference x 4")["lr"] == pytest.approx(4 * expected)
    assert R.setting(cpu, base, "MLP", "reference / 4")["lr"] == pytest.approx(expected / 4)
    searched = R.setting(cpu, base, "VI-Net", R.SEARCHED)
    assert (searched["lr"], searched["recipe"]) == (cpu["unfreeze_lr"], "search")
    cfg = R.train_config(cpu, base, R.setting(cpu, base, "MLP", "reference"), 18, 0)
    assert (cfg.label_smoothing, cfg.weight_decay, cfg.schedule, cfg.momentum) == (
        base["label_smoothing"], base["weight_decay"], base["schedule"], base["momentum"])
    assert cfg.label_smoothing > 0
    assert R.train_config(cpu, base, searched, 18, 0).label_smoothing == 0.0
    with pytest.raises(ValueError, match="setting must be"):
        R.setting(cpu, base, "MLP", "reference x 3")


def _sweep_row(head, power, val):
    """A sweep row at the reference rate times 4**power (None: the 2-epoch search's)."""
    if power is None:
        return {"head": head, "sweep": True, "power": None, "setting": R.SEARCHED,
                "lr": 0.0005, "val_acc": val}
    return {"head": head, "sweep": True, "power": power, "setting": R.label(power),
            "lr": 0.02 * 4.0 ** power, "val_acc": val}


def test_a_best_at_an_end_of_the_rates_is_widened_once_more():
    rows = {("tiny", "MLP", 0, 18, R.label(p)): _sweep_row("MLP", p, v)
            for p, v in ((-1, 80.0), (0, 81.0), (1, 83.0))}
    assert R.best_known(list(rows.values()), "MLP")["at_edge"]
    todo = R.plan(rows, ["tiny", "small"], 3, [2, 18])
    assert ("tiny", "MLP", 0, 18, "reference x 16") in todo
    rows[("tiny", "MLP", 0, 18, "reference x 16")] = _sweep_row("MLP", 2, 82.0)
    best = R.best_known(list(rows.values()), "MLP")
    assert (best["setting"], best["at_edge"]) == ("reference x 4", False)
    # a head at the reference's own rate is never an edge
    flat = [_sweep_row("VI-Net", p, 80.0) for p in (-1, 0, 1)]
    assert R.best_known(flat, "VI-Net") == {"setting": "reference", "val_acc": 80.0,
                                            "power": 0, "at_edge": False}


def test_a_best_rate_at_an_end_is_widened_even_where_the_searched_setting_edges_it_out():
    """The MLP's rates still rose at four times the reference while its 2-epoch-searched
    setting came first by a hair: its rates go one step further out, and only then is its
    best-known setting read; a best rate inside its rates, or the reference's own, stops."""
    rows = {("tiny", "MLP", 0, 18, R.label(p)): _sweep_row("MLP", p, v)
            for p, v in ((-1, 81.6), (0, 85.5), (1, 86.7))}
    rows[("tiny", "MLP", 0, 18, R.SEARCHED)] = _sweep_row("MLP", None, 86.74)
    assert R.best_known(list(rows.values()), "MLP")["setting"] == R.SEARCHED
    assert R.widen(list(rows.values()), "MLP") == 2
    assert ("tiny", "MLP", 0, 18, "reference x 16") in R.sweep_trainings(rows, ["tiny"], [18])
    rows[("tiny", "MLP", 0, 18, "reference x 16")] = _sweep_row("MLP", 2, 86.0)
    assert R.widen(list(rows.values()), "MLP") is None
    assert R.widen([_sweep_row("VI-Net", p, 80.0 + (p == 0)) for p in (-1, 0, 1)], "VI-Net") is None
    assert R.widen([_sweep_row("VI-Net", p, 80.0 + p) for p in (1, 2, 3)], "VI-Net") is None  # MAX_POWER


def test_the_sweep_comes_first_then_best_known_rows_then_the_curve():
    todo = R.plan({}, ["tiny", "small"], 2, [2, 6])
    assert todo[:12] == [("tiny", h, 0, 6, s) for s in ("reference", "reference / 4",
                                                         "reference x 4", R.SEARCHED)
                         for h in R.CURVE_HEADS]
    assert len(todo) == 12  # nothing else before the sweep is scored
    assert len(R.plan({}, ["tiny", "small"], 2, [2, 6], whole=True)) > 12  # but all is counted
    power = {"reference": 0, "reference / 4": -1, "reference x 4": 1, R.SEARCHED: None}
    swept = {k: _sweep_row(k[1], power[k[4]], 70.0) for k in todo}
    swept[todo[1]]["val_acc"] = 75.0  # the linear head's best: the reference itself
    after = R.plan(swept, ["tiny", "small"], 2, [2, 6])
    assert after[0] == ("tiny", "VI-Net", 1, 6, "reference")
    assert {k[3] for k in after} == {6, 2} and after.index(("tiny", "VI-Net", 0, 2, "reference")) \
        > after.index(("small", "MLP", 1, 6, "reference"))
    assert ("tiny", "random monomials", 1, 6, "reference") in after
    assert not any(k[1] in R.ABLATION_HEADS and k[3] == 2 for k in after)
    # the control: the full network at the reference rate (VI-Net's best here), every seed,
    # after the curve heads at the largest budget, before the ablation heads and the next budget
    control = [k for k in after if k[1] == R.CONTROL]
    assert control == [(R.CONTROL_CUT, R.CONTROL, r, 6, "reference") for r in (0, 1)]
    assert after.index(control[0]) > after.index(("small", "MLP", 1, 6, "reference"))
    assert after.index(control[-1]) < after.index(("tiny", "random monomials", 0, 6, "reference"))


def test_the_control_trains_at_the_reference_rate_and_at_vinets_best_known_rate():
    """VI-Net's best at four times the reference adds that rate for the full network; a
    best at its 2-epoch search's settings (two rates, head and base) adds none."""
    rows = [_sweep_row("VI-Net", p, v) for p, v in ((-1, 80.0), (0, 81.0), (1, 83.0), (2, 82.0))]
    assert R.control_settings(rows) == ["reference", "reference x 4"]
    rows.append(_sweep_row("VI-Net", None, 90.0))
    assert R.control_settings(rows) == ["reference"]
    assert R.control_settings([]) == ["reference"]
    none = R.plan({}, ["tiny"], 2, [2], curve_only=True)
    assert not any(k[1] == R.CONTROL for k in none)


def test_the_control_trains_a_copy_of_the_whole_network_and_resumes(synthetic_data, tmp_path):
    """``train_whole``: every parameter of a copy moves, the network given stays as it was,
    the record holds validation and test accuracy, and a second call reuses the run."""
    import torch

    from test_budget import train_tiny_base as base_in
    from vinet_utils.common.results import checksum
    from vinet_utils.experiments.ablations import train_whole
    from vinet_utils.network import data as D, models as M, train as T

    run = tmp_path / "run"
    base_in(run)
    model = M.resnet18(10, width=0.125)
    model.load_state_dict(T.finished_weights(run, "01_baseline", "cpu"))
    model.requires_grad_(False)  # as a stage hands it over: the copy must still train
    before = checksum(model.state_dict().values())
    ds = D.load_dataset("cifar10", holdout_frac=0.1)
    cfg = T.TrainConfig(epochs=1, lr=0.01, batch_size=50, seed=3)
    rec = train_whole(model, ds, cfg, run, "full-r0-b1", progress=False)
    assert checksum(model.state_dict().values()) == before
    assert 0 <= rec["metrics"]["val_acc"] <= 100 and 0 <= rec["metrics"]["test_acc"] <= 100
    ckpt = torch.load(run / "heads" / "full-r0-b1-e2e.ckpt", weights_only=False)
    moved = [k for k, v in model.state_dict().items()
             if k.endswith("weight") and not torch.equal(v, ckpt["model"][k].to(v.dtype))]
    assert len(moved) == sum(1 for k in model.state_dict() if k.endswith("weight"))
    again = train_whole(model, ds, cfg, run, "full-r0-b1", progress=False)
    assert again["metrics"]["test_acc"] == rec["metrics"]["test_acc"]
    assert again["wall_time_s"] == rec["wall_time_s"]


def test_the_curve_alone_trains_the_curve_heads_at_the_reference_rate():
    """``--curve-only`` (the reference protocol on a second data set): no sweep, no best-known
    rows, no ablation heads; the largest budget first, and finished rows are not run again."""
    todo = R.plan({}, ["tiny", "small"], 2, [2, 12], curve_only=True)
    assert len(todo) == 2 * 2 * 2 * len(R.CURVE_HEADS)
    assert {k[4] for k in todo} == {"reference"} and {k[1] for k in todo} == set(R.CURVE_HEADS)
    assert [k[3] for k in todo] == sorted((k[3] for k in todo), reverse=True)
    done = {todo[0]: {}}
    assert R.plan(done, ["tiny", "small"], 2, [2, 12], curve_only=True) == todo[1:]


def test_a_profile_without_an_end_to_end_search_sweeps_the_reference_rates_alone():
    """The sweep tries a head at its 2-epoch search's settings only where the profile has
    them: on ``cpu`` every curve head, on ``cpu-cifar100`` (no end-to-end search) none, so
    its sweep and plan train the reference's rates alone, and asking for that setting
    there names the missing value instead of training at a default."""
    from vinet_utils.workflow.pipeline import profile_parameters

    cpu, c100 = profile_parameters("cpu"), profile_parameters("cpu-cifar100")
    assert R.searched_heads(cpu) == R.CURVE_HEADS and R.searched_heads(c100) == ()
    every = R.sweep_trainings({}, ["layer3", "small"], [12])
    alone = R.sweep_trainings({}, ["layer3", "small"], [12], searched=R.searched_heads(c100))
    assert [k for k in every if k[4] != R.SEARCHED] == alone
    assert len(alone) == 3 * len(R.CURVE_HEADS) and {k[4] for k in alone} == {"reference", "reference / 4",
                                                                           "reference x 4"}
    assert not any(k[4] == R.SEARCHED for k in R.plan({}, ["layer3", "small"], 2, [12], whole=True, searched=()))
    base = read_json(RUN / "01_baseline.json")["train_config"]
    with pytest.raises(ValueError, match="unfreeze_lr"):
        R.setting(c100, base, "VI-Net", R.SEARCHED)


def test_the_protocol_records_validation_test_and_the_frozen_head_and_resumes(
        synthetic_data, tmp_path):
    run = tmp_path / "smoke" / "cifar10-resnet18"
    train_tiny_base(run)
    over = SMALL
    path = R.run("smoke", variants=["tiny"], budgets=[1], seeds=2, results_dir=tmp_path,
                 overrides=over, stop_after=2)
    m = read_json(path)["metrics"]
    base = read_json(run / "01_baseline.json")["train_config"]
    assert m["recipe"]["reference_lr"] == pytest.approx(0.1 * base["lr"] * 64 / base["batch_size"])
    assert m["recipe"]["rule"] == R.RULE
    e2e = [r for r in m["rows"] if r["budget_epochs"] == 1]
    assert [(r["head"], r["setting"]) for r in e2e] == [("VI-Net", "reference"),
                                                        ("linear (flatten)", "reference")]
    frozen = {(r["head"], r["seed"]): r for r in m["rows"] if r["setting"] == "frozen"}
    for r in e2e:
        assert 0 <= r["val_acc"] <= 100 and 0 <= r["test_acc"] <= 100
        assert r["frozen_head"] == frozen[r["head"], 0]["frozen_head"]
    assert m["still_to_run"] > 0 and m["sweep"]["MLP"]["best_known"] is None
    assert sum(m["still_to_run_by_budget"].values()) == m["still_to_run"]
    assert set(m["still_to_run_by_budget"]) == {"1"}
    assert (run / "reference.png").stat().st_size > 0
    # a second run keeps both trainings and goes on with the next in the plan
    again = read_json(R.run("smoke", variants=["tiny"], budgets=[1], seeds=2, results_dir=tmp_path,
                            overrides=over, stop_after=1))["metrics"]
    kept = {(r["head"], r["setting"]): r["test_acc"] for r in again["rows"] if r["budget_epochs"]}
    assert kept[("VI-Net", "reference")] == e2e[0]["test_acc"]
    assert ("MLP", "reference") in kept and len(kept) == 3


def test_the_first_screen_says_the_reference_protocol_is_under_way_until_it_lands():
    """Until every training of the reference protocol at its largest budget is in, the
    README's opening says that the end-to-end rows use 2-epoch-searched settings and that
    the protocol is under way; once it has landed, the sentence must go (the verdict
    reads it)."""
    from vinet_utils.common.results import REPO_ROOT
    from vinet_utils.report.evidence import reference_landed

    opening = (REPO_ROOT / "README.md").read_text().split("## ")[0]
    path = RUN / "reference.json"
    unfinished = not path.exists() or not reference_landed(read_json(path)["metrics"])
    flat = " ".join(opening.split())
    assert ("is under way (`make reference`)" in flat) == unfinished
    if unfinished:
        assert "settings a search chose for 2 epochs at tiny" in flat


def test_the_page_counts_what_is_left_per_budget_largest_first(tmp_path):
    """docs/results.md says how many trainings are left and at which budgets, so a reader
    sees when the verdict's budget is done while smaller ones still run."""
    from vinet_utils.report.reference_page import reference

    recipe = {"rule": "a tenth", "rule_share": 0.1, "base_lr": 0.4, "base_batch_size": 512,
              "reference_lr": 0.02, "batch_size": 256, "label_smoothing": 0.1,
              "weight_decay": 5e-4, "schedule": "onecycle", "bn_stats": "update"}
    rows = [{"variant": "tiny", "head": "MLP", "seed": 0, "budget_epochs": 18, "setting": "reference",
             "test_acc": 80.0, "val_acc": 80.0}]
    m = {"recipe": recipe, "sweep_at": {"cut": "tiny", "budget": 18, "seed": 0}, "rows": rows,
         "sweep": {}, "summary": [], "sweep_done": True, "still_to_run": 5,
         "still_to_run_by_budget": {"2": 3, "6": 2, "18": 0}}
    write_json(tmp_path / "reference.json", {"metrics": m})
    text = " ".join(reference(tmp_path).split())
    assert "1 end-to-end training done, 5 to go (0 at 18 epochs, 2 at 6 epochs, 3 at 2 epochs)." in text
    write_json(tmp_path / "reference.json", {"metrics": {**m, "still_to_run": 0, "still_to_run_by_budget":
                                                         {"2": 0, "6": 0, "18": 0}}})
    assert "1 end-to-end training done, 0 to go." in " ".join(reference(tmp_path).split())


def test_the_finished_groups_read_largest_budget_first_then_by_cut_rate_and_head(tmp_path):
    """The table of finished groups is ordered for reading, whatever order the record holds
    them in: largest budget first, then cut by cut with the control last, then by rate
    (the reference before its multiples) and by head."""
    from vinet_utils.report.reference_page import reference

    recipe = {"rule": "a tenth", "rule_share": 0.1, "base_lr": 0.4, "base_batch_size": 512,
              "reference_lr": 0.02, "batch_size": 256, "label_smoothing": 0.1,
              "weight_decay": 5e-4, "schedule": "onecycle", "bn_stats": "update"}
    keys = [("full", "full network", 18, "reference"), ("small", "VI-Net", 18, "reference"),
            ("tiny", "MLP", 18, "reference x 16"), ("tiny", "MLP", 6, "reference"),
            ("tiny", "MLP", 18, "reference"), ("tiny", "VI-Net", 18, "reference")]
    summary = [{"variant": v, "head": h, "budget_epochs": b, "setting": s, "mean": 80.0 + i,
                "half_width": 0.5, "val": {"mean": 81.0}} for i, (v, h, b, s) in enumerate(keys)]
    m = {"recipe": recipe, "sweep_at": {"cut": "tiny", "budget": 18, "seed": 0}, "rows": [],
         "variants": ["tiny", "small"], "sweep": {}, "summary": summary, "sweep_done": True,
         "still_to_run": 0}
    write_json(tmp_path / "reference.json", {"metrics": m})
    table = [line.split(" | ") for line in reference(tmp_path).splitlines()
             if line.startswith("| ") and " | 8" in line]
    assert [(c[0].strip("| "), c[1], int(c[2]), c[3]) for c in table] == [
        keys[5], keys[4], keys[2], keys[1], keys[0], keys[3]]


def test_the_curve_table_gives_each_head_its_accuracy_by_budget_and_its_gain(tmp_path):
    """Once a head has two budgets at the reference rate, docs/results.md gives the curve
    as a table (frozen, then each budget) with the gain from the smallest budget to the
    largest, computed from the groups; the sweep's other rates and the control stay out. Its
    reading ranks heads at a cut and budget only where every head has a mean."""
    from vinet_utils.report.reference_page import reference

    recipe = {"rule": "a tenth", "rule_share": 0.1, "base_lr": 0.4, "base_batch_size": 512,
              "reference_lr": 0.02, "batch_size": 256, "label_smoothing": 0.1,
              "weight_decay": 5e-4, "schedule": "onecycle", "bn_stats": "update"}
    acc = {("tiny", "VI-Net", 0, "frozen"): 78.0, ("tiny", "VI-Net", 2, "reference"): 81.5,
           ("tiny", "VI-Net", 18, "reference"): 84.75, ("tiny", "VI-Net", 18, "reference x 16"): 87.0,
           ("tiny", "MLP", 18, "reference"): 83.0, ("full", "full network", 18, "reference"): 89.9}
    summary = [{"variant": v, "head": h, "budget_epochs": b, "setting": s, "mean": a,
                "half_width": 0.5, "val": {"mean": a}} for (v, h, b, s), a in acc.items()]
    m = {"recipe": recipe, "sweep_at": {"cut": "tiny", "budget": 18, "seed": 0}, "rows": [],
         "variants": ["tiny", "small"], "budgets": [0, 2, 6, 18], "sweep": {}, "summary": summary,
         "sweep_done": True, "still_to_run": 3}
    write_json(tmp_path / "reference.json", {"metrics": m})
    lines = reference(tmp_path).splitlines()
    head = lines.index(next(x for x in lines if x.startswith("| cut | head | frozen |")))
    assert lines[head] == "| cut | head | frozen | 2 epochs | 6 epochs | 18 epochs | 2 → 18 |"
    assert lines[head + 2] == "| tiny | VI-Net | 78.00 | 81.50 | - | 84.75 | +3.25 |"
    # one head on the curve (the MLP has one budget): nothing to rank, so no reading
    assert lines[head + 3:] == []
    # two heads at two budgets: the leader changes, and the one that gains less is named
    more = {("tiny", "MLP", 2, "reference"): 82.0, ("tiny", "MLP", 18, "reference"): 84.0}
    m["summary"] = summary + [{"variant": v, "head": h, "budget_epochs": b, "setting": s, "mean": a,
                               "half_width": 0.5, "val": {"mean": a}} for (v, h, b, s), a in more.items()]
    write_json(tmp_path / "reference.json", {"metrics": m})
    text = " ".join(reference(tmp_path).split())
    assert ("at tiny, the highest mean is MLP's at 2 epochs, VI-Net's at 18 epochs and MLP gains least "
            "(+2.00)") in text
    # a cut where one head has finished is in the table but not read until every head has
    alone = {("small", "VI-Net", 0, "frozen"): 80.0, ("small", "VI-Net", 2, "reference"): 84.0,
             ("small", "VI-Net", 18, "reference"): 88.0}
    m["summary"] += [{"variant": v, "head": h, "budget_epochs": b, "setting": s, "mean": a,
                      "half_width": 0.5, "val": {"mean": a}} for (v, h, b, s), a in alone.items()]
    write_json(tmp_path / "reference.json", {"metrics": m})
    page = reference(tmp_path)
    assert "| small | VI-Net | 80.00 | 84.00 | - | 88.00 | +4.00 |" in page.splitlines()
    assert "at small" not in " ".join(page.split()) and "MLP gains least (+2.00)" in " ".join(page.split())
    # with one budget per head there is no curve to show
    m["summary"] = [g for g in summary if g["budget_epochs"] != 2]
    write_json(tmp_path / "reference.json", {"metrics": m})
    assert not any(x.startswith("| cut | head | frozen |") for x in reference(tmp_path).splitlines())


def test_the_sweep_table_has_every_rate_tried_in_order_of_rate():
    """docs/results.md's sweep table: a column for every setting the sweep trained (the
    widened rates too), the reference's multiples from the smallest rate to the largest."""
    from vinet_utils.report.reference_page import reference

    path = RUN / "reference.json"
    if not path.exists():
        pytest.skip("the reference protocol has not run")
    m = read_json(path)["metrics"]
    header = next(line for line in reference(RUN).splitlines() if line.startswith("| head |"))
    cols = [c.strip() for c in header.strip("|").split("|")][1:-1]
    assert set(cols) == {x["setting"] for h in m["sweep"].values() for x in h["rows"]}
    rates = [c for c in cols if c.startswith("reference")]  # one rule: a rate is the same for every head
    lr = {x["setting"]: x["lr"] for h in m["sweep"].values() for x in h["rows"] if x["setting"] in rates}
    assert [lr[c] for c in rates] == sorted(lr[c] for c in rates)


def test_the_figure_draws_the_curve_the_best_known_rows_and_the_control():
    """The right panel: frozen and reference rows as one line per head and cut (a head in
    one colour at every cut), best-known rows as their own points, the control as a star,
    and the full network as trained as a line; a curve-only record draws that panel alone."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    from vinet_utils.report import figures

    def grp(cut, head, b, setting, acc):
        return [{"variant": cut, "head": head, "seed": s, "budget_epochs": b, "setting": setting,
                 "test_acc": acc + 0.1 * s, "val_acc": acc} for s in range(2)]
    rows = (grp("tiny", "MLP", 0, "frozen", 78) + grp("tiny", "MLP", 2, "reference", 82)
            + grp("small", "MLP", 0, "frozen", 85) + grp("small", "VI-Net", 0, "frozen", 85)
            + grp("tiny", "VI-Net", 2, "reference x 16", 86) + grp("full", R.CONTROL, 2, "reference", 90))
    sweep = {h: {"rows": [{"setting": "reference", "lr": 0.02, "val_acc": 80.0}]} for h in R.CURVE_HEADS}
    rec = {"metrics": {"sweep": sweep, "summary": R.summary(rows, 2), "variants": ["tiny", "small"],
                       "budgets": [0, 2], "recipe": {"reference_lr": 0.02}, "still_to_run": 3,
                       "sweep_at": {"cut": "tiny", "budget": 2, "seed": 0, "scored_on": "holdout"},
                       "identity": {"base": {"test_acc": 89.0}}}}
    fig = figures.reference(rec)
    right = fig.axes[1]
    handles, labels = right.get_legend_handles_labels()
    colour = {lab: to_hex(h.lines[0].get_color()) for h, lab in zip(handles, labels)
              if hasattr(h, "lines")}
    assert {"MLP, tiny", "MLP, small", "VI-Net, small", "VI-Net, tiny, reference x 16",
            "full network trained on, reference"} <= set(labels)
    assert any(lab.startswith("full network as trained (89.00%)") for lab in labels)
    assert colour["MLP, tiny"] == colour["MLP, small"] != colour["VI-Net, small"]
    assert colour["VI-Net, tiny, reference x 16"] == colour["VI-Net, small"]
    assert not any(lab.endswith(", full") for lab in labels)  # the control is no cut
    assert right.get_title() == "The curve under the reference protocol (3 trainings to go)"
    plt.close(fig)
    rec["metrics"]["still_to_run"] = 0
    fig = figures.reference(rec)
    assert fig.axes[1].get_title() == "The curve under the reference protocol, every seed"
    plt.close(fig)
    # a curve-only record ran no sweep: the curve alone, no panel of rates
    rec["metrics"]["curve_only"] = True
    fig = figures.reference(rec)
    assert [ax.get_title() for ax in fig.axes] == ["The curve under the reference protocol, every seed"]
    assert fig.axes[0].get_xlabel() == "end-to-end epochs"
    plt.close(fig)


def _curve_only_record(done_small: bool) -> dict:
    """A curve-only reference record at two cuts of the paper's ablation setting: every
    curve head frozen and at 2 epochs at layer3, and at small only if ``done_small`` (else
    the MLP is missing a seed); plus rows the curve view must leave out (a control row, an
    ablation head, another rate)."""
    rows = []
    for v, pct_acc in (("layer3", 60.0), ("small", 50.0)):
        for i, h in enumerate(R.CURVE_HEADS):
            for b in (0, 2):
                for s in range(2):
                    if (v, h, b, s) == ("small", "MLP", 2, 1) and not done_small:
                        continue
                    rows.append({"variant": v, "head": h, "seed": s, "budget_epochs": b,
                                 "setting": "frozen" if b == 0 else "reference",
                                 "test_acc": pct_acc + b + i + 0.1 * s, "val_acc": 0.0})
    rows += [{"variant": "full", "head": R.CONTROL, "seed": s, "budget_epochs": 2, "setting": "reference",
              "test_acc": 70.0, "val_acc": 0.0} for s in range(2)]
    rows += [{"variant": "layer3", "head": "VI-Net", "seed": s, "budget_epochs": 2, "setting": "reference x 4",
              "test_acc": 99.0, "val_acc": 0.0} for s in range(2)]
    return {"rows": rows, "summary": R.summary(rows, 2), "variants": ["layer3", "small"], "budgets": [0, 2],
            "seeds": 2, "sweep": {h: {"rows": [], "best_known": None} for h in R.CURVE_HEADS},
            "identity": {"base": {"test_acc": 69.0}}, "removed_pct": {"layer3": 18.2, "small": 33.3},
            "curve_only": True, "still_to_run": 0 if done_small else 1}


def test_the_curve_only_record_reads_as_a_budget_curve_for_the_cifar100_pages_and_figure(tmp_path):
    """``reference_curve``: the curve heads' frozen and reference-rate rows only, a budget done
    at a cut only where every curve head has every seed; the CIFAR-100 pages read it in
    place of the budget curve once a cut has an end-to-end budget, and the ablation
    drawing puts it over the share of layers removed."""
    import matplotlib.pyplot as plt

    from vinet_utils.common.results import write_json
    from vinet_utils.report import figures
    from vinet_utils.report.cifar100 import curve_metrics, reference_curve

    view = reference_curve(_curve_only_record(done_small=False))
    assert view["cuts_done"] == {"0": ["layer3", "small"], "2": ["layer3"]}
    assert {r["head"] for r in view["rows"]} == set(R.CURVE_HEADS)
    assert {r["setting"] for r in view["rows"]} == {"frozen", "reference"}
    assert view["baseline_test_acc"] == 69.0 and "reference protocol" in view["how"]
    fig = figures.budget_ablation({"metrics": view})
    lines = {c.get_label(): c.lines[0] for c in fig.axes[0].containers}
    assert list(lines["VI-Net, end to end"].get_xdata()) == [18.2]
    assert list(lines["VI-Net, end to end"].get_ydata()) == pytest.approx([62.05])
    plt.close(fig)
    # before any cut has every head and seed, the run's first rows draw the paper's curves alone
    fig = figures.budget_ablation({"metrics": reference_curve({**_curve_only_record(done_small=False),
                                                               "summary": []})})
    assert not fig.axes[0].containers
    assert [ln.get_label() for ln in fig.axes[0].lines][0] == "paper: VI-Net"
    plt.close(fig)
    # the pages: the budget curve until the reference protocol has an end-to-end cut
    write_json(tmp_path / "budget.json", {"metrics": {"rows": [], "cuts_done": {}, "how": "budget"}})
    only_frozen = _curve_only_record(done_small=False)
    only_frozen["rows"] = [r for r in only_frozen["rows"] if r["budget_epochs"] == 0]
    only_frozen["summary"] = R.summary(only_frozen["rows"], 2)
    write_json(tmp_path / "reference.json", {"metrics": only_frozen})
    assert curve_metrics(tmp_path)["how"] == "budget"
    write_json(tmp_path / "reference.json", {"metrics": _curve_only_record(done_small=True)})
    assert curve_metrics(tmp_path)["cuts_done"]["2"] == ["layer3", "small"]
    from vinet_utils.report.cifar100 import end_to_end_finding

    bullet = end_to_end_finding(tmp_path)[0]
    assert bullet.startswith("- **End to end for 2 epochs** (2 seeds; the reference protocol:")
    assert "at 18% / 33% of layers removed VI-Net loses 6.95 / 16.95 points" in bullet


def test_the_cifar100_end_to_end_block_reads_a_curve_only_record_without_a_sweep(tmp_path):
    """docs/results.md's CIFAR-100 end-to-end block: the command to run before any record,
    then the reference page with its recipe and groups but no sweep table (none ran), and
    with one end-to-end budget each head's gain from its frozen head."""
    from vinet_utils.common.results import write_json
    from vinet_utils.report.cifar100 import cifar100_curve

    assert "make reference PROFILE=cpu-cifar100 CURVE_ONLY=1" in cifar100_curve(tmp_path)
    recipe = {"rule": "a tenth of the base's peak rate", "rule_share": 0.1, "base_lr": 0.4,
              "base_batch_size": 512, "reference_lr": 0.02, "batch_size": 256, "label_smoothing": 0.1,
              "weight_decay": 5e-4, "schedule": "onecycle", "bn_stats": "updated"}
    write_json(tmp_path / "reference.json",
               {"metrics": {**_curve_only_record(done_small=True), "recipe": recipe}})
    page = cifar100_curve(tmp_path)
    assert "so 0.02 at batch 256" in page and "The curve alone" in page
    assert "The sweep at" not in page and "| head | best-known |" not in page
    assert "| layer3 | VI-Net | 2 | reference |" in page
    # one end-to-end budget: each head's gain is from its frozen head, and no sweep is offered
    m = _curve_only_record(done_small=True)
    for r in m["rows"]:
        if (r["variant"], r["head"], r["budget_epochs"]) == ("layer3", "linear (flatten)", 2):
            r["test_acc"] -= 1.5
    write_json(tmp_path / "reference.json", {"metrics": {**m, "summary": R.summary(m["rows"], 2),
                                                         "recipe": recipe}})
    lines = cifar100_curve(tmp_path).splitlines()
    assert "| cut | head | frozen | 2 epochs | frozen → 2 |" in lines
    assert "| layer3 | linear (flatten) | 61.05 | 61.55 | +0.50 |" in lines
    text = " ".join(lines)
    assert "at layer3, MLP has the highest mean at 2 epochs and linear (flatten) gains least (+0.50)" in text
    assert "this run has no sweep of the rate" in text and "the sweep above" not in text
    # the record's own training time, summed over its rows, with the machine it ran on
    rows = m["rows"]
    for i, r in enumerate(rows):
        r["wall_time_s"] = 60.0 * (i + 1)
    hours = sum(r["wall_time_s"] for r in rows) / 3600
    write_json(tmp_path / "reference.json", {"device_name": "cpu (test)", "metrics": {
        **m, "summary": R.summary(rows, 2), "recipe": recipe,
        "trainings_time_s": sum(r["wall_time_s"] for r in rows)}})
    text = " ".join(cifar100_curve(tmp_path).split())
    assert f"trainings done ({hours:.1f} h of training on cpu (test), the frozen heads included)" in text
