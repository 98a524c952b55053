"""The paper's three claims, judged on one run: numbers only (the pages word them).

- (a) **the table's claim**: VI-Net keeps its accuracy close to its base. Per cut and
  protocol, VI-Net's drop from its own base against the paper's drop from its base
  (its table's; at another cut of its ablation setting, its ablation figure's at the
  nearest share of layers removed); "close" is within 1 point of the paper's drop.
- (b) **the ablation's claim**: VI-Net against the linear head on the truncated
  network (the flattened map), the paper's own comparison.
- (c) **the vanishing ideals' claim**: VI-Net against the heads of its size without
  polynomials, the comparator chosen on validation (:func:`comparator`), never by
  test accuracy.

Frozen rows come from notebook 05 (``05_ablations.json``), end-to-end rows from the
budget curve (``budget.json``, :mod:`vinet_utils.experiments.budget`). Every difference carries
its 95% t interval (Welch) over seeds; a difference is "ahead" or "behind" only when
its interval excludes 0, otherwise "level".
"""

from __future__ import annotations

from pathlib import Path

from vinet_utils.common.paper import ablation_drop, paper_drop
from vinet_utils.common.results import read_json
from vinet_utils.common.stats import difference_interval, mean_interval

#: The heads of VI-Net's size without polynomials, among which :func:`comparator` picks.
OF_ITS_SIZE = ("projection + linear", "MLP")
#: "Close to the base": VI-Net's drop at most this many points beyond the paper's.
CLOSE = 1.0


def finished_cuts(m: dict) -> dict:
    """``{budget: [cuts]}``: the cuts at which a curve's results (``budget.json``'s
    metrics ``m``) have finished each budget, every head and seed."""
    if "cuts_done" in m:
        return {int(b): list(c) for b, c in m["cuts_done"].items()}
    return {b: list(m["variants"]) for b in m["budgets_done"]}


def margin(vi: dict, other: dict) -> tuple[float, float | None]:
    """``vi - other`` accuracy and the half-width of that difference's 95% t interval
    (Welch's, over the seeds of each; None where either has a single seed)."""
    d = difference_interval(vi.get("acc_per_seed") or [vi["acc"]],
                            other.get("acc_per_seed") or [other["acc"]])
    return vi["acc"] - other["acc"], d["half_width"]


def within(drop: float, half_width: float | None, paper: float | None) -> bool | None:
    """Claim (a): True when the whole 95% interval of ``drop`` lies within :data:`CLOSE`
    point of the paper's drop ``paper``, False when all of it lies beyond, None when it
    straddles the threshold (or there is no paper value)."""
    if paper is None:
        return None
    hw = half_width or 0.0
    return True if drop + hw <= paper + CLOSE else False if drop - hw > paper + CLOSE else None


def comparator(protocol: dict | None) -> str | None:
    """The head of :data:`OF_ITS_SIZE` with the best frozen validation objective in
    the protocol search's results ``protocol`` (its ``metrics``); None without one."""
    if not protocol or "frozen" not in protocol:
        return None
    best = {h: max(t["objective"] for t in protocol["frozen"][h])
            for h in OF_ITS_SIZE if h in protocol["frozen"]}
    return max(best, key=best.get) if best else None


def heads_search(run: Path, profile: str | None) -> dict | None:
    """The metrics of the protocol search whose settings trained the run's heads: the
    run's own ``protocol.json``, else that of the run whose search its profile takes
    them from (``heads_from`` in ``params/<profile>.yaml``: the paper run's heads are
    trained as the cpu search chose, so its comparator is that search's); None without."""
    from vinet_utils.workflow.pipeline import committed_run, heads_source

    own = run / "protocol.json"
    source = heads_source(profile) if profile and not own.exists() else None
    if source:
        own = committed_run(source) / "protocol.json"
    return read_json(own)["metrics"] if own.exists() else None


def judge(diff: dict) -> str:
    """"ahead", "behind" or "level" for a difference interval."""
    hw = diff["half_width"]
    if hw is None:
        return "level"
    return "ahead" if diff["diff"] - hw > 0 else "behind" if diff["diff"] + hw < 0 else "level"


def reference_metrics(run: Path) -> dict | None:
    """The metrics of the run's ``reference.json``; None where the protocol has not run."""
    path = run / "reference.json"
    return read_json(path)["metrics"] if path.exists() else None


def samples(run: Path, reference: bool = True, ref: dict | None = None) -> dict:
    """``{(cut, protocol): {head: [accuracy per seed]}}``; protocol is "frozen", "end to
    end, N epochs" (the budget curve: settings searched at 2 epochs) or "reference, N
    epochs" (the reference protocol, once a head has every seed). A run whose notebook
    05 has not run yet gives VI-Net's frozen rows from notebook 04 (the same trainings),
    and no other head. At a cut where the budget curve has finished its frozen heads,
    the frozen rows are the curve's (a seed refits the PCA and OAVI's subsample), so
    that a head has one frozen reading."""
    out: dict = {}
    if (run / "05_ablations.json").exists():
        for r in read_json(run / "05_ablations.json")["metrics"]["rows"]:
            if r.get("protocol", "frozen") == "frozen" and r.get("acc_per_seed"):
                out.setdefault((r["variant"], "frozen"), {})[r["head"]] = list(r["acc_per_seed"])
    elif (run / "04_vinet.json").exists():
        for v in read_json(run / "04_vinet.json")["metrics"]["variants"]:
            out[(v["variant"], "frozen")] = {"VI-Net": list(v["acc_per_seed"])}
    if (run / "budget.json").exists():
        m = read_json(run / "budget.json")["metrics"]
        done = finished_cuts(m)
        for cut in done.get(0, ()):  # one frozen reading: the curve's, where it has one
            out[(cut, "frozen")] = {}
        for r in m["rows"]:  # a budget a cut has not finished is not compared yet
            if r["variant"] in done.get(r["budget_epochs"], ()):
                key = (r["variant"], "frozen" if r["budget_epochs"] == 0
                       else f"end to end, {r['budget_epochs']} epochs")
                out.setdefault(key, {}).setdefault(r["head"], []).append(r["test_acc"])
    ref = ref or (reference_metrics(run) if reference else None)
    if ref is not None:
        out.update(reference_samples(run, out, ref))
    return out


def group_accs(m: dict, cut: str, head: str, budget: int, setting: str) -> list[float]:
    """The test accuracies, seed by seed, of one group of a reference record's rows ``m``."""
    return [r["test_acc"] for r in m["rows"]
            if (r["variant"], r["head"], r["budget_epochs"], r["setting"]) == (cut, head, budget, setting)]


def reference_samples(run: Path, searched: dict, m: dict | None = None) -> dict:
    """The reference protocol's rows as :func:`samples` keys them: ``(cut, "reference, N
    epochs")`` for each group with every seed; ``(cut, "frozen")`` with the curve heads'
    frozen rows in place of the budget curve's once every one of them has every seed at
    that cut (the frozen heads its end-to-end rows start from: one frozen reading per
    head and cut, never two sources mixed); and, once the sweep has chosen every
    head's best-known setting, ``(cut, "best-known, N epochs")`` at the sweep's budget:
    each head at its best-known setting (its 2-epoch search's rows from ``searched``,
    the budget curve's, where that is its best). ``m``: the record's metrics, read here
    when not given."""
    m = m or reference_metrics(run)
    out: dict = {}

    full = {(g["variant"], g["head"], g["budget_epochs"], g["setting"]) for g in m["summary"]}
    for cut, head, b, setting in full:  # only groups with every seed are summarised
        if b > 0 and setting == "reference" and cut != "full":  # not the control
            out.setdefault((cut, f"reference, {b} epochs"), {})[head] = group_accs(m, cut, head, b, setting)
    for cut in m["variants"]:  # one frozen reading: the heads its end-to-end rows start from
        if all((cut, h, 0, "frozen") in full for h in m["sweep"]):
            out[(cut, "frozen")] = {**searched.get((cut, "frozen"), {}),
                                    **{h: group_accs(m, cut, h, 0, "frozen") for h in m["sweep"]}}
    if not m.get("sweep_done"):  # a best-known setting is known once the sweep is done
        return out
    best = {h: s["best_known"]["setting"] for h, s in m["sweep"].items()}
    b = m["sweep_at"]["budget"]
    for cut in m["variants"]:
        row = {}
        for head, setting in best.items():
            if setting == "searched at 2 epochs":
                row[head] = searched.get((cut, f"end to end, {b} epochs"), {}).get(head)
            elif setting is not None and (cut, head, b, setting) in full:
                row[head] = group_accs(m, cut, head, b, setting)
        if best and all(row.get(h) for h in best):
            out[(cut, f"best-known, {b} epochs")] = row
    return out


def reference_landed(m: dict | None) -> bool:
    """Whether a reference protocol (its record's metrics ``m``; None: not run; not
    ``--curve-only``) has every training at its largest budget in, the budget the verdict
    reads (a record without the per-budget count: every training): from then on its
    readings replace the 2-epoch-searched rows, while the smaller budgets may still run."""
    if m is None or m.get("curve_only"):
        return False
    by = m.get("still_to_run_by_budget")
    return (by[str(max(int(b) for b in by))] if by else m["still_to_run"]) == 0


def control_samples(m: dict | None) -> dict:
    """The control of the reference protocol (the full network trained on by the same
    recipe: the rows of cut "full" in its record's metrics ``m``) keyed like the VI-Net
    readings it stands beside: ``{"reference, N epochs": [test accuracy per seed],
    "best-known, N epochs": [...]}``, the latter where VI-Net's best-known setting is a
    rate the control trained at; only groups with every seed."""
    if m is None:
        return {}
    done = {(g["budget_epochs"], g["setting"]) for g in m["summary"] if g["variant"] == "full"}
    out = {f"reference, {b} epochs": group_accs(m, "full", "full network", b, setting)
           for b, setting in done if setting == "reference"}
    best = (m.get("sweep", {}).get("VI-Net") or {}).get("best_known") or {}
    b = m["sweep_at"]["budget"]
    if m.get("sweep_done") and (b, best.get("setting")) in done:
        out[f"best-known, {b} epochs"] = group_accs(m, "full", "full network", b, best["setting"])
    return out


def removed_pct(run: Path, ref: dict | None = None) -> dict:
    """``{cut: % of layers removed}`` of the cuts of the run's notebook 05 and of its
    reference protocol (its metrics ``ref``, read from the run when not given)."""
    ref = ref if ref is not None else reference_metrics(run)
    path = run / "05_ablations.json"
    rows = read_json(path)["metrics"]["rows"] if path.exists() else []
    return {**(ref or {}).get("removed_pct", {}),
            **{r["variant"]: r["removed_pct"] for r in rows if r.get("removed_pct") is not None}}


def claims(run: str | Path, reference: bool = True) -> dict:
    """The three claims on the run in ``run``: ``{"base_acc", "baseline", "comparator",
    "rows"}`` (``baseline``: the base's results record, ``01_baseline.json``),
    one row per cut and protocol with (a) ``drop`` against ``paper_drop``, (b)
    ``vs_linear`` and (c) ``vs_comparator`` (each ``{"diff", "half_width", "df",
    "verdict"}``, or None where a head is missing), and ``control``: (a) again, against
    the full network trained on by the same recipe for as long (``{"acc", "drop",
    "half_width", "close"}``; None where the control has not run). Without ``reference``,
    the run as it was before the reference protocol: notebook 05 and the budget curve."""
    run = Path(run)
    base = read_json(run / "01_baseline.json")
    p = base["params"]
    base_acc = base["metrics"]["test_acc"]
    comp = comparator(heads_search(run, p.get("profile")))
    pool = "flatten"
    ref = reference_metrics(run) if reference else None  # read once for every use below
    removed = removed_pct(run, ref or {})
    controls = control_samples(ref)
    rows = []
    for (cut, protocol), heads in samples(run, reference, ref).items():
        vi = heads.get("VI-Net")
        if not vi:
            continue
        m = mean_interval(vi)
        paper = paper_drop(p["dataset"], p["arch"], cut)  # its table, else its ablation figure
        row = {"variant": cut, "protocol": protocol, "seeds": len(vi), "vinet_acc": m["mean"],
               "drop": base_acc - m["mean"], "drop_half_width": m["half_width"],
               "paper_drop": paper if paper is not None else ablation_drop(
                   p["dataset"], p["arch"], removed.get(cut))}
        row["close"] = within(row["drop"], m["half_width"], row["paper_drop"])
        row["control"] = None
        if controls.get(protocol):
            d = difference_interval(controls[protocol], vi)
            row["control"] = {"acc": sum(controls[protocol]) / len(controls[protocol]),
                              "drop": d["diff"], "half_width": d["half_width"],
                              "close": within(d["diff"], d["half_width"], row["paper_drop"])}
        for name, other in (("vs_linear", f"linear ({pool})"), ("vs_comparator", comp)):
            if other and heads.get(other):
                d = difference_interval(vi, heads[other])
                row[name] = {**d, "head": other, "other_acc": sum(heads[other]) / len(heads[other]),
                             "verdict": judge(d)}
            else:
                row[name] = None
        rows.append(row)
    order = {"tiny": 0, "small": 1, "medium": 2, "large": 3}
    rows.sort(key=lambda r: (order.get(r["variant"], 9), removed.get(r["variant"], 0),
                             r["protocol"] != "frozen", epochs_of(r["protocol"])))
    return {"base_acc": base_acc, "baseline": base, "comparator": comp, "close": CLOSE,
            "rows": rows, "landed": reference_landed(ref)}


def epochs_of(protocol: str) -> int:
    """The end-to-end epochs a protocol label names ("reference, 18 epochs": 18); 0 frozen."""
    return int(protocol.split(", ")[1].split()[0]) if ", " in protocol else 0


def sign_changes(rows: list[dict], key: str) -> list[str]:
    """The cuts where the sign of ``key``'s difference changes between protocols."""
    out = []
    for cut in dict.fromkeys(r["variant"] for r in rows):
        signs = {r[key]["diff"] > 0 for r in rows if r["variant"] == cut and r.get(key)}
        if len(signs) > 1:
            out.append(cut)
    return out
