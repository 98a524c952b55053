"""The three claims on a run, from its results files: intervals, verdicts, comparator."""

import pytest

from vinet_utils.report import evidence as V
from vinet_utils.common.results import write_json


def _run(tmp_path, vi, lin, mlp, pl, e2e=None, objectives=(80.0, 81.0)):
    write_json(tmp_path / "01_baseline.json", {"params": {"dataset": "cifar10", "arch": "resnet18"},
                                               "metrics": {"test_acc": 90.0}})
    rows = [{"variant": "tiny", "head": h, "protocol": "frozen", "acc_per_seed": accs, "pool": "flatten"}
            for h, accs in (("VI-Net", vi), ("linear (flatten)", lin), ("MLP", mlp),
                            ("projection + linear", pl))]
    write_json(tmp_path / "05_ablations.json", {"metrics": {"rows": rows}})
    write_json(tmp_path / "protocol.json", {"metrics": {"frozen": {
        "projection + linear": [{"objective": objectives[0]}],
        "MLP": [{"objective": objectives[1]}], "VI-Net": [{"objective": 99.0}]}}})
    if e2e:
        write_json(tmp_path / "budget.json", {"metrics": {"cuts_done": {"2": ["tiny"]}, "rows": [
            {"variant": "tiny", "head": h, "seed": s, "budget_epochs": 2, "test_acc": a}
            for h, accs in e2e.items() for s, a in enumerate(accs)]}})
    return V.claims(tmp_path)


def test_the_comparator_is_chosen_on_validation_not_on_test(tmp_path):
    # projection + linear is far better on test, but the MLP was better on validation
    got = _run(tmp_path, [80.0, 80.2, 80.1], [70.0, 70.1, 70.2], [75.0, 75.1, 75.2],
               [85.0, 85.1, 85.2], objectives=(80.0, 81.0))
    assert got["comparator"] == "MLP"
    row = got["rows"][0]
    assert row["vs_comparator"]["head"] == "MLP" and row["vs_comparator"]["verdict"] == "ahead"
    assert row["vs_linear"]["verdict"] == "ahead"


def test_a_run_whose_heads_follow_another_search_takes_that_searchs_comparator(tmp_path):
    """The paper run has no search of its own: its heads train as the cpu search chose
    (``heads_from: cpu``), so (c) is judged against the cpu search's comparator."""
    from vinet_utils.common.results import REPO_ROOT, read_json

    accs = ([80.0, 80.2, 80.1], [70.0, 70.1, 70.2], [75.0, 75.1, 75.2], [85.0, 85.1, 85.2])
    _run(tmp_path, *accs)
    (tmp_path / "protocol.json").unlink()
    assert V.claims(tmp_path)["comparator"] is None  # no search, no profile: (c) not judged
    write_json(tmp_path / "01_baseline.json", {"params": {"dataset": "cifar10", "arch": "resnet18",
                                                          "profile": "paper"},
                                               "metrics": {"test_acc": 90.0}})
    cpu = read_json(REPO_ROOT / "results" / "cpu" / "cifar10-resnet18" / "protocol.json")["metrics"]
    got = V.claims(tmp_path)
    assert got["comparator"] == V.comparator(cpu) is not None
    assert got["rows"][0]["vs_comparator"]["head"] == got["comparator"]


def test_the_drop_is_held_against_the_papers_own(tmp_path):
    got = _run(tmp_path, [85.0, 85.5, 86.0], [80.0] * 2 + [80.5], [80.0, 81.0, 80.5], [80.0, 80.1, 80.2])
    row = got["rows"][0]
    assert row["drop"] == pytest.approx(90.0 - 85.5)
    assert row["paper_drop"] == pytest.approx(92.89 - 88.62)
    assert row["drop_half_width"] == pytest.approx(4.303 * 0.5 / 3 ** 0.5, rel=1e-3)
    assert row["close"] is None  # 4.5 ± 1.24 straddles 4.27 + 1: neither within nor further


def test_within_one_point_needs_the_whole_interval():
    """Claim (a) holds only when the whole 95% interval of the drop lies within 1 point
    of the paper's drop, and fails only when all of it lies beyond."""
    assert V.within(4.5, 0.2, 4.27) is True
    assert V.within(6.0, 0.5, 4.27) is False
    assert V.within(1.35, 0.62, 0.23) is None  # the paper run at small: 0.73 to 1.97 vs 1.23
    assert V.within(1.0, None, 0.23) is True and V.within(1.0, 0.1, None) is None


def test_a_run_without_notebook_05_judges_the_drop_from_notebook_04_alone(tmp_path):
    """The paper run's notebook 05 has not run: claim (a) comes from notebook 04's
    VI-Net trainings, and (b) and (c) are absent rather than guessed."""
    write_json(tmp_path / "01_baseline.json", {"params": {"dataset": "cifar10", "arch": "resnet18"},
                                               "metrics": {"test_acc": 93.0}})
    write_json(tmp_path / "04_vinet.json", {"metrics": {"variants": [
        {"variant": "small", "acc_per_seed": [92.0, 92.4, 92.2]},
        {"variant": "tiny", "acc_per_seed": [85.0, 86.0, 85.5]}]}})
    c = V.claims(tmp_path)
    assert [r["variant"] for r in c["rows"]] == ["tiny", "small"]
    tiny = c["rows"][0]
    assert tiny["drop"] == pytest.approx(93.0 - 85.5) and tiny["seeds"] == 3
    assert tiny["paper_drop"] == pytest.approx(92.89 - 88.62)
    assert tiny["close"] is False  # 7.5 ± 1.24 lies wholly beyond 4.27 + 1
    assert c["rows"][1]["close"] is None  # 0.8 ± 0.50 straddles 0.23 + 1
    assert tiny["vs_linear"] is None and tiny["vs_comparator"] is None


def test_two_seeds_that_barely_differ_are_level_and_a_sign_change_is_found(tmp_path):
    got = _run(tmp_path, [78.0, 78.0], [77.8, 78.0], [70.0, 70.5], [70.0, 70.2],
               e2e={"VI-Net": [80.0, 80.2, 80.1], "linear (flatten)": [81.0, 81.2, 81.1],
                    "MLP": [79.0, 79.1, 79.3]})
    frozen, e2e = got["rows"]
    assert frozen["protocol"] == "frozen" and e2e["protocol"] == "end to end, 2 epochs"
    assert frozen["vs_linear"]["diff"] > 0 and frozen["vs_linear"]["verdict"] == "level"
    assert e2e["vs_linear"]["verdict"] == "behind"
    assert V.sign_changes(got["rows"], "vs_linear") == ["tiny"]
    assert V.sign_changes(got["rows"], "vs_comparator") == []


def test_the_readme_prose_holds_on_the_committed_cpu_run():
    """docs/results.md's reading of the budget curve says, of the committed cpu run with the base frozen (one
    reading per head and cut: the budget curve's frozen heads at tiny and small):
    VI-Net is level with the linear head at every cut and with the MLP of its size at
    every cut but small, where it is behind; it loses far more to its full network than
    the paper's VI-Net except at large; the README: it is smaller and faster at every cut. If a new
    run changes that, this fails and the prose must be rewritten."""
    import csv

    from vinet_utils.common.results import REPO_ROOT

    run = REPO_ROOT / "results" / "cpu" / "cifar10-resnet18"
    c = V.claims(run, reference=False)  # the run as the budget curve's reading saw it
    frozen = {r["variant"]: r for r in c["rows"] if r["protocol"] == "frozen"}
    assert c["comparator"] == "MLP"
    cuts = ("tiny", "small", "medium", "large")
    assert [frozen[v]["vs_linear"]["verdict"] for v in cuts] == ["level"] * 4
    assert [frozen[v]["vs_comparator"]["verdict"] for v in cuts] == [
        "level", "behind", "level", "level"]
    assert [frozen[v]["close"] for v in cuts] == [False, False, False, True]
    assert frozen["tiny"]["drop"] > 2 * frozen["tiny"]["paper_drop"]
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    page = " ".join((REPO_ROOT / "docs" / "results.md").read_text().split())
    assert ("Frozen, VI-Net is level with the linear head at every cut and with the MLP of its "
            "size at every cut but small, where it is behind") in page
    with open(run / "table.csv", newline="") as f:
        table = list(csv.DictReader(f))
    full = next(r for r in table if r["Model"].startswith("ResNet"))
    for r in (r for r in table if r["Model"].startswith("VI-Net")):
        assert float(r["Total Params"]) < float(full["Total Params"]) and float(r["Speed-up"]) > 1
    assert "On the `cpu` run VI-Net is smaller and faster than its full network at every cut." in readme


def test_the_results_page_prose_holds_on_the_committed_cpu_run():
    """docs/results.md says of the cpu run, base frozen: VI-Net leads projection + linear
    by over 1.5 points at tiny, by under half a point at small, and not at all later;
    random monomials trail VI-Net at tiny and small but lead projection + linear at tiny;
    the MLP is within half a point of VI-Net at tiny, the linear head behind it by at most
    a point and a half; every flattened head beats its pooled twin at tiny and small."""
    from vinet_utils.common.results import REPO_ROOT, read_json

    rows = read_json(REPO_ROOT / "results" / "cpu" / "cifar10-resnet18" / "05_ablations.json")[
        "metrics"]["rows"]
    acc = {(r["head"], r["variant"]): r["acc"] for r in rows if r.get("protocol", "frozen") == "frozen"}
    cuts = ("tiny", "small", "medium", "large")
    gaps = [acc["VI-Net", v] - acc["projection + linear", v] for v in cuts]
    assert gaps[0] > 1.5 and 0 < gaps[1] < 0.5 and max(gaps[2:]) <= 0
    assert all(acc["random monomials", v] < acc["VI-Net", v] for v in ("tiny", "small"))
    assert acc["random monomials", "tiny"] > acc["projection + linear", "tiny"]
    assert abs(acc["VI-Net", "tiny"] - acc["MLP", "tiny"]) <= 0.5
    assert 0 < acc["VI-Net", "tiny"] - acc["linear (flatten)", "tiny"] <= 1.5
    for v in ("tiny", "small"):
        assert acc["linear (flatten)", v] > acc["linear (gap)", v]
        assert acc["VI-Net", v] > acc["VI-Net (gap)", v]


def test_the_readme_prose_holds_on_the_committed_paper_run():
    """The README says of the width-1.0 run: judged with the base frozen only, every head
    of notebook 05 in (so (b) and (c) are read at every cut), and neither a search of its
    own nor any end-to-end training at that width."""
    from vinet_utils.common.results import REPO_ROOT

    run = REPO_ROOT / "results" / "paper" / "cifar10-resnet18"
    paper = V.claims(run)
    wide = {r["variant"]: r for r in paper["rows"] if r["protocol"] == "frozen"}
    assert set(wide) == {"tiny", "small", "medium", "large"}
    assert (run / "05_ablations.json").exists()
    assert all(r["vs_linear"] is not None and r["vs_comparator"] is not None for r in wide.values())
    assert all(r["protocol"] == "frozen" for r in paper["rows"])
    assert not (run / "protocol.json").exists() and not (run / "reference.json").exists()
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    assert "width 1.0 is judged with the base frozen only" in readme
    assert "Not run at width 1.0: a search of its own" in readme


def test_the_readme_prose_holds_on_the_committed_reference_curve():
    """The README says of the reference protocol's curve: at every budget and at both cuts,
    VI-Net's mean test accuracy is above the linear head's and the MLP's."""
    from vinet_utils.common.results import REPO_ROOT, read_json

    m = read_json(REPO_ROOT / "results" / "cpu" / "cifar10-resnet18" / "reference.json")["metrics"]
    mean = {(g["variant"], g["head"], g["budget_epochs"]): g["mean"] for g in m["summary"]
            if g["setting"] == "reference"}
    assert m["still_to_run"] == 0 and [b for b in m["budgets"] if b] == [2, 6, 18]
    assert m["variants"] == ["tiny", "small"]
    for cut in m["variants"]:
        for b in (2, 6, 18):
            assert mean[cut, "VI-Net", b] > max(mean[cut, "linear (flatten)", b], mean[cut, "MLP", b])
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    assert ("VI-Net's mean leads the linear head's and the MLP's at 2, 6 and 18 epochs, at both cuts"
            in readme)


def test_the_readme_prose_holds_on_the_committed_cifar100_curve():
    """The README says of the CIFAR-100 end-to-end curve: its sweep of the rate and its
    control have not finished, and VI-Net gains least from its frozen head at both cuts."""
    from vinet_utils.common.results import REPO_ROOT, read_json

    m = read_json(REPO_ROOT / "results" / "cpu-cifar100" / "cifar100-resnet34" / "reference.json")["metrics"]
    assert m["variants"] == ["layer3", "small"] and not m.get("sweep_done")
    assert not any(g["variant"] == "full" for g in m["summary"])  # no control with every seed
    mean = {(g["variant"], g["head"], g["budget_epochs"]): g["mean"] for g in m["summary"]
            if g["setting"] in ("frozen", "reference")}
    top = max(m["budgets"])
    for cut in m["variants"]:
        gain = {h: mean[cut, h, top] - mean[cut, h, 0] for h in ("VI-Net", "linear (flatten)", "MLP")}
        assert min(gain, key=gain.get) == "VI-Net", gain
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    assert ("CIFAR-100 end to end: its sweep of the rate and its control have not finished; VI-Net gains "
            "least from end-to-end training at both cuts") in readme


def _the_budget_curve():
    """The committed `cpu` run's budget curve, as the prose tests read it: its
    metrics ``m``, the ``heads`` it drew, the ``mean`` of each (cut, head, budget), each head's ``gain(cut,
    budget)`` over its frozen mean, the verdict's ``claims`` and its ``rows`` by (cut,
    protocol), and docs/results.md on one line."""
    from types import SimpleNamespace

    from vinet_utils.common.results import REPO_ROOT, read_json

    run = REPO_ROOT / "results" / "cpu" / "cifar10-resnet18"
    m = read_json(run / "budget.json")["metrics"]
    claims = V.claims(run, reference=False)
    mean = {(s["variant"], s["head"], s["budget_epochs"]): s["mean"] for s in m["summary"]}
    return SimpleNamespace(
        m=m, claims=claims, mean=mean, heads=tuple(m["heads"]),
        gain=lambda cut, b: {h: mean[cut, h, b] - mean[cut, h, 0] for h in m["heads"]},
        rows={(r["variant"], r["protocol"]): r for r in claims["rows"]},
        page=" ".join((REPO_ROOT / "docs" / "results.md").read_text().split()))


def test_the_results_page_end_to_end_prose_holds_on_the_budget_curve():
    """docs/results.md says of the committed budget curve: trained end to end, every head
    gains over its frozen mean at every budget and cut, the MLP most."""
    curve = _the_budget_curve()
    for cut in ("tiny", "small"):
        for b in (2, 6, 18):
            gain = curve.gain(cut, b)
            assert all(g > 0 for g in gain.values()) and max(gain, key=gain.get) == "MLP", gain
    assert "Trained end to end, every head gains, the MLP most." in curve.page


def test_the_results_page_18_epoch_prose_holds_on_the_budget_curve():
    """docs/results.md says: after 18 epochs (finished at tiny and small) VI-Net is behind the
    linear head and the MLP at both cuts, beyond their intervals; the MLP loses less to the
    full network than the paper's VI-Net at both cuts; the heads without polynomials gain
    more from training than VI-Net."""
    from vinet_utils.report.evidence import finished_cuts

    curve = _the_budget_curve()
    assert finished_cuts(curve.m).get(18) == ["tiny", "small"]
    e18 = "end to end, 18 epochs"
    for cut in ("tiny", "small"):
        gain = curve.gain(cut, 18)
        assert min(gain, key=gain.get) == "VI-Net", (cut, gain)
        row = curve.rows[cut, e18]
        assert row["vs_linear"]["verdict"] == row["vs_comparator"]["verdict"] == "behind", cut
    base = curve.claims["base_acc"]
    within = [cut for cut in ("tiny", "small") if
              base - curve.rows[cut, e18]["vs_comparator"]["other_acc"] < curve.rows[cut, e18]["paper_drop"]]
    assert within == ["tiny", "small"]
    assert "end to end up to 18 epochs, at settings searched at tiny for 2 epochs" in curve.page
    assert ("After 18 epochs VI-Net is behind both heads at both cuts, and the MLP loses less to "
            "the full network than the paper's VI-Net at both cuts") in curve.page
    assert "The heads without polynomials gain more from training than VI-Net" in curve.page


def test_the_ablation_setting_is_judged_by_the_same_rule_at_every_cut(tmp_path):
    """The answer's lines on the CIFAR-100 run: before notebook 05, what runs next; then each
    cut named by its share of layers removed, (a) against the paper's table at its cuts and
    against its ablation figure elsewhere (18% removed: the figure's 74.8 - 73.1)."""
    from vinet_utils.common.paper import paper_drop
    from vinet_utils.report.answer_page import ablation_setting

    write_json(tmp_path / "01_baseline.json", {"params": {
        "dataset": "cifar100", "arch": "resnet34", "width": 0.25, "holdout_frac": 0.1},
        "metrics": {"test_acc": 70.0}})
    said = " ".join(ablation_setting(tmp_path))
    assert "base 70.00%, 10% of each class held out" in said and "run next" in said
    tiny_ok = 70.0 - paper_drop("cifar100", "resnet34", "tiny") - 0.5  # within a point
    accs = {("tiny", 45.0): {"VI-Net": tiny_ok, "linear (flatten)": tiny_ok - 3, "MLP": tiny_ok,
                             "projection + linear": tiny_ok - 1},
            ("layer3", 18.0): {"VI-Net": 66.0, "linear (flatten)": 67.0, "MLP": 66.0,
                               "projection + linear": 65.0}}
    rows = [{"variant": v, "removed_pct": pct, "head": h, "protocol": "frozen", "pool": "flatten",
             "acc_per_seed": [a - 0.1, a, a + 0.1]} for (v, pct), heads in accs.items()
            for h, a in heads.items()]
    write_json(tmp_path / "05_ablations.json", {"metrics": {"rows": rows}})
    write_json(tmp_path / "protocol.json", {"metrics": {"frozen": {
        "projection + linear": [{"objective": 40.0}], "MLP": [{"objective": 50.0}]}}})
    got = {r["variant"]: r for r in V.claims(tmp_path)["rows"]}
    assert got["layer3"]["paper_drop"] == pytest.approx(74.8 - 73.1)
    assert got["tiny"]["paper_drop"] == pytest.approx(paper_drop("cifar100", "resnet34", "tiny"))
    said = " ".join(" ".join(ablation_setting(tmp_path)).split())
    assert "(a) further at 18%, within at 45%; (b) behind at 18%, ahead at 45%" in said
    assert "(c) level at every cut" in said
    assert "The claim: not reproduced at 18%, reproduced at 45%." in said


def test_the_verdict_reads_the_reference_protocol_and_each_heads_best_known_setting(tmp_path):
    """Reference rows enter the verdict once a group has every seed; best-known rows once
    the sweep is done, a head whose best is its 2-epoch search read from the curve."""
    from vinet_utils.experiments.reference import summary

    heads = ("VI-Net", "linear (flatten)", "MLP")
    rows = [{"variant": "tiny", "head": h, "seed": s, "budget_epochs": 18, "setting": "reference",
             "test_acc": 80.0 + i + 0.1 * s, "val_acc": 80.0} for i, h in enumerate(heads) for s in range(2)]
    rows += [{"variant": "tiny", "head": "VI-Net", "seed": s, "budget_epochs": 18,
              "setting": "reference / 4", "test_acc": 85.0 + 0.1 * s, "val_acc": 85.0} for s in range(2)]
    sweep = {"VI-Net": {"best_known": {"setting": "reference / 4"}},
             "linear (flatten)": {"best_known": {"setting": "reference"}},
             "MLP": {"best_known": {"setting": "searched at 2 epochs"}}}
    ref = {"rows": rows, "summary": summary(rows, 2), "sweep": sweep, "variants": ["tiny"],
           "sweep_at": {"budget": 18}, "sweep_done": False}
    write_json(tmp_path / "reference.json", {"metrics": ref})
    searched = {("tiny", "end to end, 18 epochs"): {"MLP": [79.0, 79.5]}}
    got = V.reference_samples(tmp_path, searched)
    assert got == {("tiny", "reference, 18 epochs"): {h: [80.0 + i, 80.1 + i] for i, h in enumerate(heads)}}
    write_json(tmp_path / "reference.json", {"metrics": {**ref, "sweep_done": True}})
    best = V.reference_samples(tmp_path, searched)[("tiny", "best-known, 18 epochs")]
    assert best == {"VI-Net": [85.0, 85.1], "linear (flatten)": [81.0, 81.1], "MLP": [79.0, 79.5]}
    # one frozen reading per cut: the reference's frozen heads replace the curve's only
    # once every curve head has every seed there, never one head of two sources
    searched[("tiny", "frozen")] = {h: [70.0, 70.2] for h in (*heads, "projection + linear")}
    frozen = [{"variant": "tiny", "head": h, "seed": s, "budget_epochs": 0, "setting": "frozen",
               "test_acc": 75.0 + s, "val_acc": 75.0} for h in heads for s in range(2)]
    for have, want in ((frozen[:-1], 70.0), (frozen, 75.0)):
        rows2 = rows + have
        write_json(tmp_path / "reference.json", {"metrics": {**ref, "rows": rows2, "sweep_done": True,
                                                              "summary": summary(rows2, 2)}})
        got = V.reference_samples(tmp_path, searched).get(("tiny", "frozen"), searched[("tiny", "frozen")])
        assert {h: got[h][0] for h in heads} == {h: want for h in heads}
        assert got["projection + linear"] == [70.0, 70.2]


def test_the_drop_is_also_read_against_the_full_network_trained_on_as_long(tmp_path):
    """The control (the full network trained on by the same recipe, cut "full" in
    ``reference.json``) is no cut of its own: it stands beside the VI-Net reading at its
    rate, the reference rate for the reference rows and VI-Net's best-known rate for the
    best-known rows, and (a) is read against it as against the base."""
    from vinet_utils.experiments.reference import summary

    _run(tmp_path, [80.0, 80.2], [79.0, 79.1], [79.5, 79.6], [78.0, 78.1])

    def grp(cut, head, setting, accs):
        return [{"variant": cut, "head": head, "seed": s, "budget_epochs": 18, "setting": setting,
                 "test_acc": a, "val_acc": a} for s, a in enumerate(accs)]
    rows = (grp("tiny", "VI-Net", "reference", (84.0, 84.2)) + grp("tiny", "VI-Net", "reference x 4", (85.0, 85.2))
            + grp("tiny", "linear (flatten)", "reference", (83.0, 83.2))
            + grp("tiny", "MLP", "reference", (83.5, 83.9))
            + grp("full", "full network", "reference", (91.0, 91.4))
            + grp("full", "full network", "reference x 4", (90.0, 90.2)))
    sweep = {"VI-Net": {"best_known": {"setting": "reference x 4"}},
             "linear (flatten)": {"best_known": {"setting": "reference"}},
             "MLP": {"best_known": {"setting": "reference"}}}
    write_json(tmp_path / "reference.json", {"metrics": {
        "rows": rows, "summary": summary(rows, 2), "sweep": sweep, "variants": ["tiny"],
        "sweep_at": {"budget": 18}, "sweep_done": True, "still_to_run": 0}})
    c = V.claims(tmp_path)
    by = {(r["variant"], r["protocol"]): r for r in c["rows"]}
    assert {v for v, _ in by} == {"tiny"}
    ref, best = by["tiny", "reference, 18 epochs"], by["tiny", "best-known, 18 epochs"]
    assert ref["drop"] == pytest.approx(90.0 - 84.1)
    assert ref["control"]["acc"] == pytest.approx(91.2)
    assert ref["control"]["drop"] == pytest.approx(91.2 - 84.1)
    assert best["control"]["drop"] == pytest.approx(90.1 - 85.1)
    want = V.within(90.1 - 85.1, best["control"]["half_width"], best["paper_drop"])
    assert best["control"]["close"] == want and best["control"]["half_width"] > 0
    assert by["tiny", "frozen"]["control"] is None
