"""The first screen's answer: one rule, reading by reading, from the results files."""

import pytest

from test_verdict import _run
from vinet_utils.common.results import write_json
from vinet_utils.experiments.reference import summary
from vinet_utils.report import answer_page as A


def _row(close, b, c, control="not run"):
    return {"close": close, "vs_linear": b and {"verdict": b}, "vs_comparator": c and {"verdict": c},
            "control": None if control == "not run" else {"close": control}}


@pytest.mark.parametrize("row, want", [
    (_row(True, "ahead", "level"), True),
    (_row(True, "ahead", "ahead"), True),
    (_row(True, "level", "level"), None),      # the paper's ablation not shown
    (_row(None, "ahead", "ahead"), None),      # (a) straddles its threshold
    (_row(False, "ahead", "ahead"), False),
    (_row(True, "ahead", "behind"), False),
    (_row(True, "behind", "ahead"), False),
    (_row(True, "ahead", "ahead", control=False), False),  # lost to the full network trained as long
    (_row(True, "ahead", "ahead", control=None), None),    # the control straddles it
    (_row(True, "ahead", "ahead", control=True), True),
    (_row(True, None, "ahead"), None),         # no linear head measured
])
def test_a_cut_holds_fails_or_stays_open_by_the_rule(row, want):
    assert A.holds(row) is want


def test_cuts_are_named_by_what_they_share():
    assert A.phrase({"tiny": False, "small": False}) == "not reproduced at tiny and small"
    assert A.phrase({"tiny": True, "small": None, "medium": False}) == (
        "reproduced at tiny, open at small, not reproduced at medium")
    assert A.grouped({"tiny": "level", "small": "level"}, {"level": "level"}) == "level at every cut"


def _e2e(tmp_path, vi, lin, mlp, still, best=None, control=None, by_budget=None):
    """A run with frozen rows, the 2-epoch-searched curve at 2 and 18 epochs (VI-Net
    behind) and reference rows at tiny: ``vi``/``lin``/``mlp`` under the reference
    protocol, ``best`` VI-Net's rows at its best-known setting (reference x 4), ``control``
    the full network trained on at the reference rate."""
    _run(tmp_path, [80.0, 80.2, 80.1], [79.0, 79.1, 79.2], [79.5, 79.6, 79.7], [78.0, 78.1, 78.2])
    write_json(tmp_path / "budget.json", {"metrics": {"cuts_done": {"2": ["tiny"], "18": ["tiny"]}, "rows": [
        {"variant": "tiny", "head": h, "seed": s, "budget_epochs": b, "test_acc": a - 18 / b + 0.1 * s}
        for h, a in (("VI-Net", 82.0), ("linear (flatten)", 84.0), ("MLP", 85.0)) for s in range(3)
        for b in (2, 18)]}})

    def grp(head, setting, acc):
        return [{"variant": "tiny", "head": head, "seed": s, "budget_epochs": 18, "setting": setting,
                 "test_acc": acc + 0.1 * s, "val_acc": acc} for s in range(3)]
    rows = grp("VI-Net", "reference", vi) + grp("linear (flatten)", "reference", lin) + grp("MLP", "reference", mlp)
    if best:
        rows += grp("VI-Net", "reference x 4", best)
    if control:
        rows += [{**r, "variant": "full", "head": "full network"} for r in grp("-", "reference", control)]
    sweep = {"VI-Net": {"best_known": {"setting": "reference x 4" if best else "reference"}},
             "linear (flatten)": {"best_known": {"setting": "reference"}},
             "MLP": {"best_known": {"setting": "reference"}}}
    write_json(tmp_path / "reference.json", {"metrics": {
        "rows": rows, "summary": summary(rows, 3), "sweep": sweep, "variants": ["tiny"],
        "sweep_at": {"budget": 18}, "sweep_done": True, "still_to_run": still,
        **({"still_to_run_by_budget": by_budget} if by_budget else {})}})
    return " ".join(A.answer(tmp_path).split())


def test_until_the_reference_protocol_lands_the_answer_is_the_searched_readings_and_says_so(tmp_path):
    text = _e2e(tmp_path, 87.0, 83.0, 85.0, still=5)
    assert text.startswith("**Our answer so far, on the `cpu` run: with the base frozen, the claim is")
    assert "at the settings a search chose for 2 epochs at tiny, it is not reproduced at tiny.**" in text
    assert "is under way (`make reference`)" in text
    # the reference reading is shown, and holds, but does not decide yet
    assert "**End to end, 18 epochs, under the reference protocol** (3 seeds)" in text
    assert "(b) ahead at tiny; (c) ahead at tiny. The claim: reproduced at tiny." in text


def test_once_landed_the_two_readings_decide_together_and_a_difference_is_named(tmp_path):
    agree = _e2e(tmp_path, 87.0, 83.0, 85.0, still=0)
    assert agree.startswith("**Our answer, on the `cpu` run: with the base frozen")
    assert ("read under the reference protocol and at each head's best-known setting, it is "
            "reproduced at tiny.** The two readings agree at every cut.") in agree
    assert "under way" not in agree and "differ" not in agree
    # VI-Net's best-known setting falls behind the MLP: the readings differ, the cut is open
    differ = _e2e(tmp_path, 87.0, 83.0, 85.0, still=0, best=84.0)
    assert ("setting, it is open at tiny.** The two readings differ at tiny, and a cut where they "
            "differ is open.") in differ
    assert "agree" not in differ
    # behind under both readings: not reproduced
    behind = _e2e(tmp_path, 82.0, 83.0, 85.0, still=0)
    assert "setting, it is not reproduced at tiny.** The two readings agree" in behind


def test_the_answer_is_decided_once_the_largest_budget_is_in_while_smaller_budgets_still_run(tmp_path):
    """The verdict reads 18 epochs: with every 18-epoch training in, trainings left at 2 and
    6 epochs do not hold the answer back; one left at 18 does."""
    top_done = _e2e(tmp_path, 87.0, 83.0, 85.0, still=5, by_budget={"2": 3, "6": 2, "18": 0})
    assert top_done.startswith("**Our answer, on the `cpu` run:")
    assert "best-known setting, it is reproduced at tiny.**" in top_done
    top_open = _e2e(tmp_path, 87.0, 83.0, 85.0, still=5, by_budget={"2": 2, "6": 2, "18": 1})
    assert top_open.startswith("**Our answer so far, on the `cpu` run:")
    assert "is under way (`make reference`)" in top_open


def test_the_verdict_table_shows_frozen_and_the_largest_budget_and_once_landed_not_the_searched_rows(
        tmp_path):
    """The README's table: frozen and the largest end-to-end budget only (the smaller ones
    are on docs/results.md); once the reference protocol has landed, its two readings
    replace the 2-epoch-searched rows, and (a) against the control gets its column."""
    from vinet_utils.report.claims import verdict

    def table(**kw):
        _e2e(tmp_path, 87.0, 83.0, 85.0, **kw)
        write_json(tmp_path / "01_baseline.json", {
            "params": {"dataset": "cifar10", "arch": "resnet18", "width": 0.25, "epochs": 18},
            "metrics": {"test_acc": 90.0, "n_train": 45000}})
        text = verdict(tmp_path).split("The `paper` run")[0]
        lines = [line for line in text.split("\n") if line.startswith("|")]
        return text, lines[0], [line.split(" | ")[1] for line in lines[2:]]

    text, header, protocols = table(still=3)
    assert protocols == ["frozen", "end to end, 18 epochs", "reference, 18 epochs", "best-known, 18 epochs"]
    assert "trained as long" not in header and "control" not in text  # the answer says it is to come
    text, header, protocols = table(still=0, control=88.0)
    assert protocols == ["frozen", "reference, 18 epochs", "best-known, 18 epochs"]
    assert "(a) against the full network trained as long" in header
    ref = next(line for line in text.split("\n") if line.startswith("| tiny | reference"))
    assert "| 88.10%: 1.00 ±" in ref


def test_the_papers_width_is_judged_frozen_as_far_as_it_has_run(tmp_path):
    """A width-1.0 run with notebook 04 only: (a) from VI-Net's frozen rows, (b) and (c)
    not measured, so no cut can hold the claim there; with no such run, no bullet."""
    cpu, wide = tmp_path / "cpu", tmp_path / "paper"
    cpu.mkdir()
    _e2e(cpu, 87.0, 83.0, 85.0, still=3)
    wide.mkdir()
    write_json(wide / "01_baseline.json", {"params": {"dataset": "cifar10", "arch": "resnet18"},
                                           "metrics": {"test_acc": 93.5}})
    write_json(wide / "04_vinet.json", {"metrics": {"variants": [
        {"variant": "tiny", "acc_per_seed": [85.0, 85.2, 85.4]},
        {"variant": "large", "acc_per_seed": [93.3, 93.4, 93.5]}]}})
    text = " ".join(A.answer(cpu, wide).split())
    assert ("- **Width 1.0 (the `paper` run), base frozen** (3 seeds): (a) further at tiny, within at "
            "large; (b) and (c) not measured. The claim: not reproduced at tiny, open at large.") in text
    assert "Width 1.0" not in A.answer(cpu, tmp_path / "none")
