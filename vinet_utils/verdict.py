"""The paper's three claims, judged on one run: numbers only (the pages word them).

- (a) **the table's claim**: VI-Net keeps its accuracy close to its base. Per cut and
  protocol, VI-Net's drop from its own base against the paper's drop from its base;
  "close" is within 1 point of the paper's drop.
- (b) **the ablation's claim**: VI-Net against the linear head on the truncated
  network (the flattened map), the paper's own comparison.
- (c) **the vanishing ideals' claim**: VI-Net against the heads of its size without
  polynomials, the comparator chosen on validation (:func:`comparator`), never by
  test accuracy.

Frozen rows come from notebook 05 (``05_ablations.json``), end-to-end rows from the
budget curve (``budget.json``, :mod:`vinet_utils.budget`). Every difference carries
its 95% t interval (Welch) over seeds; a difference is "ahead" or "behind" only when
its interval excludes 0, otherwise "level".
"""

from __future__ import annotations

from pathlib import Path

from .budget import finished_cuts
from .paper import paper_row
from .results import read_json
from .stats import difference_interval, mean_interval

#: The heads of VI-Net's size without polynomials, among which :func:`comparator` picks.
OF_ITS_SIZE = ("projection + linear", "MLP")
#: "Close to the base": VI-Net's drop at most this many points beyond the paper's.
CLOSE = 1.0


def paper_drop(dataset: str, arch: str, variant: str) -> float | None:
    """The paper's base accuracy minus its VI-Net's at ``variant``."""
    base, vi = paper_row(dataset, arch, "baseline"), paper_row(dataset, arch, variant)
    return None if base is None or vi is None else base["acc"] - vi["acc"]


def comparator(protocol: dict | None) -> str | None:
    """The head of :data:`OF_ITS_SIZE` with the best frozen validation objective in
    the protocol search's results ``protocol`` (its ``metrics``); None without one."""
    if not protocol or "frozen" not in protocol:
        return None
    best = {h: max(t["objective"] for t in protocol["frozen"][h])
            for h in OF_ITS_SIZE if h in protocol["frozen"]}
    return max(best, key=best.get) if best else None


def judge(diff: dict) -> str:
    """"ahead", "behind" or "level" for a difference interval."""
    hw = diff["half_width"]
    if hw is None:
        return "level"
    return "ahead" if diff["diff"] - hw > 0 else "behind" if diff["diff"] + hw < 0 else "level"


def samples(run: Path) -> dict:
    """``{(cut, protocol): {head: [accuracy per seed]}}``; protocol is "frozen" or
    "end to end, N epochs". A run whose notebook 05 has not run yet gives VI-Net's
    frozen rows from notebook 04 (the same trainings), and no other head."""
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
        for r in m["rows"]:  # a budget a cut has not finished is not compared yet
            if r["budget_epochs"] > 0 and r["variant"] in done.get(r["budget_epochs"], ()):
                key = (r["variant"], f"end to end, {r['budget_epochs']} epochs")
                out.setdefault(key, {}).setdefault(r["head"], []).append(r["test_acc"])
    return out


def claims(run: str | Path) -> dict:
    """The three claims on the run in ``run``: ``{"base_acc", "baseline", "comparator",
    "rows"}`` (``baseline``: the base's results record, ``01_baseline.json``),
    one row per cut and protocol with (a) ``drop`` against ``paper_drop``, (b)
    ``vs_linear`` and (c) ``vs_comparator`` (each ``{"diff", "half_width", "df",
    "verdict"}``, or None where a head is missing)."""
    run = Path(run)
    base = read_json(run / "01_baseline.json")
    p = base["params"]
    base_acc = base["metrics"]["test_acc"]
    proto = read_json(run / "protocol.json")["metrics"] if (run / "protocol.json").exists() else None
    comp = comparator(proto)
    pool = "flatten"
    rows = []
    for (cut, protocol), heads in samples(run).items():
        vi = heads.get("VI-Net")
        if not vi:
            continue
        m = mean_interval(vi)
        row = {"variant": cut, "protocol": protocol, "seeds": len(vi), "vinet_acc": m["mean"],
               "drop": base_acc - m["mean"], "drop_half_width": m["half_width"],
               "paper_drop": paper_drop(p["dataset"], p["arch"], cut)}
        row["close"] = (None if row["paper_drop"] is None
                        else row["drop"] <= row["paper_drop"] + CLOSE)
        for name, other in (("vs_linear", f"linear ({pool})"), ("vs_comparator", comp)):
            if other and heads.get(other):
                d = difference_interval(vi, heads[other])
                row[name] = {**d, "head": other, "other_acc": sum(heads[other]) / len(heads[other]),
                             "verdict": judge(d)}
            else:
                row[name] = None
        rows.append(row)
    order = {"tiny": 0, "small": 1, "medium": 2, "large": 3}
    rows.sort(key=lambda r: (order.get(r["variant"], 9), r["protocol"] != "frozen",
                             _epochs(r["protocol"])))
    return {"base_acc": base_acc, "baseline": base, "comparator": comp, "close": CLOSE,
            "rows": rows}


def _epochs(protocol: str) -> int:
    return int(protocol.split(", ")[1].split()[0]) if protocol.startswith("end to end, ") else 0


def sign_changes(rows: list[dict], key: str) -> list[str]:
    """The cuts where the sign of ``key``'s difference changes between protocols."""
    out = []
    for cut in dict.fromkeys(r["variant"] for r in rows):
        signs = {r[key]["diff"] > 0 for r in rows if r["variant"] == cut and r.get(key)}
        if len(signs) > 1:
            out.append(cut)
    return out
