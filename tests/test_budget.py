"""The budget curve: every head at every cut and seed, frozen then end to end per
budget, written budget by budget, resumable, with t intervals over seeds."""

import pytest
import torch

from vinet_utils.experiments import budget as B
from vinet_utils.network import data as D, models as M, train as T
from vinet_utils.common.results import read_json

SMALL = {"n_train": None, "n_test": None, "pca_dim": 4, "samples_per_class": 20,
         "keep_per_class": 3, "finetune_epochs": 1, "finetune_batch_size": 64,
         "unfreeze_epochs": 1, "unfreeze_lr": 0.02, "psi": 0.05, "max_degree": 2,
         "holdout_frac": 0.1,
         "rival_settings": {"linear": {"finetune_lr": 0.01, "unfreeze_lr": 0.005,
                                       "unfreeze_base_lr_scale": 0.5,
                                       "unfreeze_bn_stats": "frozen"}}}


def train_tiny_base(run) -> None:
    """A one-epoch width-0.125 base in ``run``, for the curve to cut."""
    ds = D.load_dataset("cifar10", holdout_frac=0.1)
    torch.manual_seed(0)
    T.train_classifier(M.resnet18(10, width=0.125), ds, T.TrainConfig(epochs=1, batch_size=50),
                       run, params={"arch": "resnet18", "width": 0.125, "holdout_frac": 0.1},
                       progress=False)


def test_the_curve_runs_every_head_cut_seed_and_budget_and_resumes(synthetic_data, tmp_path):
    run = tmp_path / "smoke" / "cifar10-resnet18"
    train_tiny_base(run)
    import matplotlib.pyplot as plt

    heads = ["VI-Net", "linear (flatten)"]
    open_before = set(plt.get_fignums())
    rec = read_json(B.run("smoke", variants=["tiny"], budgets=[1], seeds=2, heads=heads,
                          results_dir=tmp_path, overrides=SMALL))["metrics"]
    assert set(plt.get_fignums()) == open_before  # drawn after every training, then closed
    assert rec["budgets_done"] == [0, 1] and rec["cuts_done"] == {"0": ["tiny"], "1": ["tiny"]}
    assert rec["trainings_time_s"] == pytest.approx(sum(r["wall_time_s"] for r in rec["rows"]))
    assert len(rec["rows"]) == 2 * 2 * 1 * 2  # heads x budgets (frozen, 1) x cuts x seeds
    assert rec["settings"]["linear (flatten)"]["unfreeze_base_lr_scale"] == 0.5
    assert rec["settings"]["VI-Net"]["unfreeze_lr"] == 0.02
    for s in rec["summary"]:
        accs = [r["test_acc"] for r in rec["rows"] if (r["variant"], r["head"], r["budget_epochs"])
                == (s["variant"], s["head"], s["budget_epochs"])]
        assert s["n"] == 2 and s["mean"] == pytest.approx(sum(accs) / 2)
        assert s["half_width"] is not None and s["half_width"] >= 0
    # the seeds vary the OAVI subsample: seed 1 fits on points of its own
    assert B.fit_seed(0, 0) == 0 and B.fit_seed(0, 1) != 0
    assert (run / "budget" / "fit-1").is_dir() and (run / "budget.png").exists()
    again = read_json(B.run("smoke", variants=["tiny"], budgets=[1], seeds=2, heads=heads,
                            results_dir=tmp_path, overrides=SMALL))["metrics"]
    assert [r["test_acc"] for r in again["rows"]] == [r["test_acc"] for r in rec["rows"]]


def test_a_curve_names_its_bad_arguments_before_any_work(synthetic_data, tmp_path):
    with pytest.raises(ValueError, match="--heads must be one of"):
        B.run("smoke", heads=["random monomials"], results_dir=tmp_path, overrides=SMALL)
    with pytest.raises(ValueError, match="--budgets takes whole numbers"):
        B.run("smoke", budgets=[0], results_dir=tmp_path, overrides=SMALL)
    with pytest.raises(ValueError, match="--variants must be drawn from tiny, small, medium, "
                                         "large, layer2 "):  # a profile's ablation_cuts count
        B.run("smoke", variants=["tiny", "layer3.1"], results_dir=tmp_path,
              overrides={**SMALL, "ablation_cuts": ["layer2"]})


def test_a_stopped_curve_keeps_the_cuts_that_finished_a_budget(synthetic_data, tmp_path,
                                                                  monkeypatch):
    """Stopped during a budget's second cut, budget.json holds the first cut's rows of
    that budget and the second cut's finished trainings, says which cuts it has, counts
    the budget as not done, and neither summarises nor compares the unfinished cut."""
    from vinet_utils.experiments import ablations

    train_tiny_base(tmp_path / "smoke" / "cifar10-resnet18")
    real = ablations.finetune_end_to_end

    calls = []

    def stop_at_small(model, cf, *args, **kwargs):
        if cf.variant == "small" and calls.count("small") == 1:  # its second seed
            raise KeyboardInterrupt
        calls.append(cf.variant)
        return real(model, cf, *args, **kwargs)

    monkeypatch.setattr(ablations, "finetune_end_to_end", stop_at_small)
    with pytest.raises(KeyboardInterrupt):
        B.run("smoke", variants=["tiny", "small"], budgets=[1], seeds=2, heads=["linear (flatten)"],
              results_dir=tmp_path, overrides=SMALL)
    rec = read_json(tmp_path / "smoke" / "cifar10-resnet18" / "budget.json")["metrics"]
    assert rec["budgets_done"] == [0]
    assert rec["cuts_done"] == {"0": ["tiny", "small"], "1": ["tiny"]}
    assert sorted((r["variant"], r["budget_epochs"]) for r in rec["rows"]) == [
        ("small", 0), ("small", 0), ("small", 1), ("tiny", 0), ("tiny", 0), ("tiny", 1),
        ("tiny", 1)]
    assert ("small", 1) not in {(s["variant"], s["budget_epochs"]) for s in rec["summary"]}
    from vinet_utils.report.evidence import samples

    got = samples(tmp_path / "smoke" / "cifar10-resnet18")
    assert ("tiny", "end to end, 1 epochs") in got
    assert ("small", "end to end, 1 epochs") not in got


@pytest.mark.parametrize("dataset,arch", [("cifar10", "resnet18"), ("cifar100", "resnet34"),
                                          ("fashion_mnist", "resnet18")])
def test_the_curve_draws_the_papers_drop_from_the_runs_own_setting(dataset, arch):
    """The dotted line (the paper, as in every figure), the full base minus the paper's
    VI-Net drop, comes from the paper's table for the run's own dataset and network; a
    setting the paper has no table for draws none."""
    import matplotlib.pyplot as plt

    from vinet_utils.report import figures as plots
    from vinet_utils.common.paper import paper_row

    summary = [{"variant": "tiny", "head": h, "budget_epochs": b, "mean": 70.0 + b, "half_width": 0.5}
               for h in ("VI-Net", "MLP") for b in (0, 2)]
    rec = {"params": {"dataset": dataset, "arch": arch},
           "metrics": {"baseline_test_acc": 80.0, "variants": ["tiny"], "heads": ["VI-Net", "MLP"],
                       "budgets": [0, 2], "budgets_done": [0, 2], "seeds": 2,
                       "summary": summary}}
    fig = plots.budget(rec)
    dotted = [ln.get_ydata()[0] for ln in fig.axes[0].get_lines() if ln.get_linestyle() == ":"]
    base, tiny = paper_row(dataset, arch, "baseline"), paper_row(dataset, arch, "tiny")
    expected = [] if base is None else [pytest.approx(80.0 - (base["acc"] - tiny["acc"]))]
    assert dotted == expected
    plt.close(fig)


def test_e2e_from_takes_only_the_end_to_end_knobs_of_the_other_profiles_search():
    """``--e2e-from cpu``: each head fine-tunes end to end as the cpu profile's search
    chose for that head, and keeps its own frozen settings."""
    from vinet_utils.workflow.pipeline import load_profile
    from vinet_utils.experiments.protocol import E2E_SPACE

    own = {"finetune_lr": 0.05, "train_projection": "slow",
           "rival_settings": {"MLP": {"finetune_lr": 0.07}}}
    cpu = load_profile("cpu")
    for head in B.DEFAULT_HEADS:
        got, theirs = B.head_settings(own, head, cpu), B.head_settings(cpu, head)
        assert {k: got[k] for k in E2E_SPACE} == {k: theirs[k] for k in E2E_SPACE}
    assert B.head_settings(own, "MLP", cpu)["finetune_lr"] == 0.07
    assert B.head_settings(own, "VI-Net", cpu)["train_projection"] == "slow"
    # the cpu profile's heads were searched apart: the three do not share one rule
    assert len({B.head_settings(own, h, cpu)["unfreeze_lr"] for h in B.DEFAULT_HEADS}) == 3


def test_a_curve_without_an_end_to_end_rule_says_where_to_get_one(synthetic_data, tmp_path):
    no_rule = {k: v for k, v in SMALL.items() if k not in ("unfreeze_lr", "rival_settings")}
    with pytest.raises(ValueError, match="unfreeze_lr for VI-Net.*--e2e-from"):
        B.run("smoke", heads=["VI-Net"], results_dir=tmp_path, overrides=no_rule)
    with pytest.raises(ValueError, match="--e2e-from must be one of"):
        B.run("smoke", heads=["VI-Net"], results_dir=tmp_path, overrides=no_rule,
              e2e_from="gpu")


def test_the_ablation_drawing_puts_each_cut_at_its_share_of_layers_removed():
    """In the paper's ablation setting the curve is drawn over % of 3x3 convs removed:
    frozen and the largest finished budget, each point at its cut's share, beside the
    paper's own curves."""
    import matplotlib.pyplot as plt

    from vinet_utils.report import figures as plots
    from vinet_utils.common.paper import ABLATION

    share = {"layer3": 18.2, "small": 33.3}
    summary = [{"variant": v, "head": h, "budget_epochs": b, "mean": 50.0 + b + i,
                "half_width": 0.5}
               for v in share for i, h in enumerate(("VI-Net", "MLP")) for b in (0, 2, 6)]
    rec = {"metrics": {"baseline_test_acc": 69.0, "variants": list(share), "seeds": 3,
                       "heads": ["VI-Net", "MLP"], "budgets": [0, 2, 6], "budgets_done": [0, 2],
                       "removed_pct": share, "summary": summary}}
    fig = plots.budget_ablation(rec)
    lines = {c.get_label(): c.lines[0] for c in fig.axes[0].containers}  # ours: error bars
    lines.update((ln.get_label(), ln) for ln in fig.axes[0].get_lines())
    assert list(lines["VI-Net, end to end"].get_xdata()) == [18.2, 33.3]
    assert list(lines["VI-Net, end to end"].get_ydata()) == [52.0, 52.0]  # budget 2, not 6
    assert list(lines["MLP"].get_ydata()) == [51.0, 51.0]
    assert sum(label.startswith("paper: ") for label in lines) == len(ABLATION)
    assert "2 epochs" in fig.axes[0].get_title()
    plt.close(fig)
    # a budget that only some cuts have finished is drawn at those cuts, and says so
    rec["metrics"]["cuts_done"] = {"0": ["layer3", "small"], "2": ["layer3", "small"],
                                   "6": ["layer3"]}
    fig = plots.budget_ablation(rec)
    lines = {c.get_label(): c.lines[0] for c in fig.axes[0].containers}
    assert list(lines["VI-Net, end to end"].get_xdata()) == [18.2]
    assert list(lines["VI-Net, end to end"].get_ydata()) == [56.0]
    assert "6 epochs, dashed, at 1 of 2 cuts so far" in fig.axes[0].get_title()
    plt.close(fig)


def test_the_cifar100_finding_reads_the_largest_end_to_end_budget_a_cut_finished(tmp_path):
    """The CIFAR-100 findings gain an end-to-end bullet only once a cut has finished an
    end-to-end budget; it gives VI-Net's drop, frozen and end to end, beside the paper's
    at the nearest share of its figure, and VI-Net minus each head with Welch's interval."""
    import json

    from vinet_utils.common.paper import ABLATION
    from vinet_utils.report.cifar100 import end_to_end_finding
    from vinet_utils.common.stats import difference_interval

    accs = {("VI-Net", 0): [50.0, 51.0, 52.0], ("VI-Net", 2): [60.0, 61.0, 62.0],
            ("linear (flatten)", 2): [58.0, 58.5, 59.0], ("MLP", 2): [62.0, 63.0, 63.5]}
    rows = [{"variant": "layer3", "head": h, "budget_epochs": b, "seed": r, "test_acc": a}
            for (h, b), xs in accs.items() for r, a in enumerate(xs)]
    m = {"baseline_test_acc": 70.0, "seeds": 3, "removed_pct": {"layer3": 18.2, "small": 33.3},
         "variants": ["layer3", "small"],
         "cuts_done": {"0": ["layer3", "small"]}, "rows": rows, "e2e_settings_from": "cpu"}
    path = tmp_path / "budget.json"
    path.write_text(json.dumps({"metrics": m}))
    assert end_to_end_finding(tmp_path) == []  # frozen only: nothing end to end to say
    m["cuts_done"]["2"] = ["layer3"]
    path.write_text(json.dumps({"metrics": m}))
    [line] = end_to_end_finding(tmp_path)
    paper = ABLATION["VI-Net"][0] - ABLATION["VI-Net"][1]  # its figure's 19%, nearest 18.2%
    mlp = difference_interval(accs["VI-Net", 2], accs["MLP", 2])
    assert "End to end for 2 epochs" in line and "`cpu` profile's end-to-end settings" in line
    assert (f"at 18% of layers removed VI-Net loses 9.00 points to the full network (frozen: "
            f"19.00; the paper's VI-Net: {paper:.1f} at 19%)") in line
    assert f"minus the MLP {mlp['diff']:+.2f} ± {mlp['half_width']:.2f}." in line
    assert line.endswith("At 33% this budget has not finished yet.")  # small is running


def test_heads_trained_at_settings_their_profile_has_replaced_are_named():
    """A budget curve whose heads trained at settings the profile no longer gives them
    (a later search was adopted) names those heads; heads that still match are not
    named, nor, with e2e_settings_from, heads whose end-to-end knobs still match the
    other profile's."""
    from vinet_utils.workflow.pipeline import load_profile

    cpu = load_profile("cpu")
    heads = list(B.DEFAULT_HEADS)
    rec = {"params": {"profile": "cpu"},
           "metrics": {"settings": {h: B.head_settings(cpu, h) for h in heads}}}
    assert B.stale_heads(rec) == []
    rec["metrics"]["settings"]["MLP"] = {**rec["metrics"]["settings"]["MLP"], "unfreeze_lr": 1e-5}
    assert B.stale_heads(rec) == ["MLP"]
    c100 = load_profile("cpu-cifar100")
    other = {"params": {"profile": "cpu-cifar100"},
             "metrics": {"e2e_settings_from": "cpu",
                         "settings": {h: B.head_settings(c100, h, cpu) for h in heads}}}
    assert B.stale_heads(other) == []
    other["metrics"]["e2e_settings_from"] = None  # its own profile has no end-to-end search
    assert B.stale_heads(other) == heads


@pytest.mark.parametrize("run", ["cpu/cifar10-resnet18", "cpu-cifar100/cifar100-resnet34"])
def test_every_committed_curve_trained_at_its_profiles_settings(run):
    """The pages read a curve's rows as they are: so no committed curve may hold a head
    trained at settings its profile has since replaced (rerun `make budget` instead)."""
    from vinet_utils.common.results import REPO_ROOT
    path = REPO_ROOT / "results" / run / "budget.json"
    if not path.exists():
        pytest.skip(f"no committed curve in results/{run}")
    assert B.stale_heads(read_json(path)) == []


def test_a_fresh_clone_continues_a_committed_curve_from_its_rows(synthetic_data, tmp_path,
                                                                 monkeypatch):
    """Without the checkpoints (a fresh clone), a rerun keeps the committed rows of
    every head whose settings did not change and trains only the rest; a head whose
    settings changed is trained again, and a record made on another base is not used."""
    import shutil

    from vinet_utils.experiments import ablations
    from vinet_utils.network import train

    run = tmp_path / "smoke" / "cifar10-resnet18"
    train_tiny_base(run)
    heads = ["VI-Net", "linear (flatten)"]
    args = dict(variants=["tiny"], budgets=[1], seeds=2, heads=heads, results_dir=tmp_path)
    first = read_json(B.run("smoke", overrides=SMALL, **args))["metrics"]
    shutil.rmtree(run / "budget")  # what a fresh clone lacks
    trained = []
    real_e2e, real_frozen = ablations.finetune_end_to_end, train.train_seeds

    def e2e(model, cf, head, ds, cfg, cache, tag, **kw):
        trained.append(tag)
        return real_e2e(model, cf, head, ds, cfg, cache, tag, **kw)

    monkeypatch.setattr(ablations, "finetune_end_to_end", e2e)
    monkeypatch.setattr(train, "train_seeds", lambda *a, **k: trained.append(a[4]) or
                        real_frozen(*a, **k))
    linear = {**SMALL["rival_settings"]["linear"], "finetune_lr": 0.02}
    again = read_json(B.run("smoke", overrides={**SMALL, "rival_settings": {"linear": linear}},
                            **args))["metrics"]
    # only the linear head trained again: frozen, then end to end, at both seeds
    tag = f"{M.resolve_cut('resnet18', 'tiny')}-budget-linear_flatten-r"
    assert sorted(trained) == sorted(f"{tag}{r}{b}" for r in range(2) for b in ("", "-b1"))
    assert again["budgets_done"] == [0, 1] and len(again["rows"]) == len(first["rows"])
    vi = [r["test_acc"] for r in again["rows"] if r["head"] == "VI-Net"]
    assert vi == [r["test_acc"] for r in first["rows"] if r["head"] == "VI-Net"]
    assert again["settings"]["linear (flatten)"]["finetune_lr"] == 0.02
    # another base: nothing is kept
    rec = read_json(run / "budget.json")
    assert B.reusable_rows(rec, B.identity(rec["params"], rec["metrics"]["base"], rec["data"]),
                           rec["metrics"]["settings"])
    other = {**rec["metrics"]["base"], "checksum": rec["metrics"]["base"]["checksum"] + 1.0}
    assert B.reusable_rows(rec, B.identity(rec["params"], other, rec["data"]),
                           rec["metrics"]["settings"]) == {}



def test_the_results_page_counts_the_trainings_of_a_budget_under_way():
    from vinet_utils.report.results_page import under_way

    rows = [{"variant": v, "head": h, "seed": r, "budget_epochs": b, "test_acc": 80.0}
            for v in ("tiny", "small") for h in ("VI-Net", "MLP") for r in range(3)
            for b in (0, 2)]
    rows += [{"variant": "tiny", "head": "VI-Net", "seed": r, "budget_epochs": 6,
              "test_acc": 81.0} for r in range(2)]
    m = {"heads": ["VI-Net", "MLP"], "seeds": 3, "variants": ["tiny", "small"],
         "budgets": [0, 2, 6, 18], "budgets_done": [0, 2], "rows": rows,
         "cuts_done": {"0": ["tiny", "small"], "2": ["tiny", "small"]}}
    assert under_way(m) == (" Under way: 2 of the 12 trainings of 6 epochs are done "
                            "(`make budget` continues from them).")
    assert under_way({**m, "rows": [r for r in rows if r["budget_epochs"] < 6]}) == ""


def test_a_curve_made_on_other_batchnorm_statistics_keeps_nothing():
    """The base's identity covers its buffers: the same weights with other BatchNorm
    statistics are another base; a record from before buffers were recorded still
    compares by what it names."""
    ident = B.identity({"width": 0.25}, {"checksum": 1.0, "state_checksum": 5.0, "test_acc": 80.0},
                       {"fingerprint": "x"})
    row = {"variant": "tiny", "head": "MLP", "seed": 0, "budget_epochs": 2, "test_acc": 70.0}
    rec = {"params": {"width": 0.25}, "data": {"fingerprint": "x"},
           "metrics": {"base": {"checksum": 1.0, "state_checksum": 5.0, "test_acc": 80.0},
                       "settings": {"MLP": {"lr": 1}}, "rows": [row]}}
    assert len(B.reusable_rows(rec, ident, {"MLP": {"lr": 1}})) == 1
    rec["metrics"]["base"]["state_checksum"] = 6.0  # other running statistics
    assert B.reusable_rows(rec, ident, {"MLP": {"lr": 1}}) == {}
    del rec["metrics"]["base"]["state_checksum"]  # an earlier record: parameters only
    assert len(B.reusable_rows(rec, ident, {"MLP": {"lr": 1}})) == 1


@pytest.mark.parametrize("record", ["budget.json", "reference.json"])
def test_todays_code_keeps_every_row_of_the_committed_cpu_curves(record):
    """The move into subpackages changed no run identity: the identity today's code
    computes for the committed cpu run (its profile, its committed base, the data the
    record names) is the one its curves were recorded with, so a rerun keeps every row."""
    from vinet_utils.common.results import REPO_ROOT, checksum, jsonable, portable_params
    from vinet_utils.experiments import reference as R
    from vinet_utils.network.train import load_baseline
    from vinet_utils.workflow.pipeline import profile_parameters

    run = REPO_ROOT / "results" / "cpu" / "cifar10-resnet18"
    if not (run / record).exists():
        pytest.skip(f"no committed {record}")
    rec = read_json(run / record)
    model, baseline = load_baseline(run)
    values = profile_parameters("cpu")
    params = portable_params({**values, "variants": ["tiny", "small"], "seeds": 3, "val_frac": 0.1})
    acc = baseline["metrics"]["test_acc"]
    if record == "budget.json":
        base = {"checksum": checksum(model.parameters()), "test_acc": acc}
        settings = {h: B.head_settings(values, h) for h in rec["metrics"]["heads"]}
        ident = jsonable(B.identity(params, base, rec["data"]))
        kept = B.reusable_rows(rec, ident, settings)
        assert len(kept) == len(rec["metrics"]["rows"]) > 0
    else:
        base = {"state_checksum": checksum(model.state_dict().values()), "test_acc": acc}
        heads = (*R.CURVE_HEADS, *R.ABLATION_HEADS)
        ident = jsonable({**B.identity(params, base, rec["data"]),
                          "recipe": R.recipe(values, baseline["train_config"]),
                          "frozen_settings": {h: B.head_settings(values, h) for h in heads}})
        assert rec["metrics"]["identity"] == ident
