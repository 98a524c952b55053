"""The ``reference`` block of docs/results.md: the reference protocol's recipe, its
sweep and its curve as far as they have run, read from ``reference.json``."""

from __future__ import annotations

from pathlib import Path

from vinet_utils.common.results import read_json
from vinet_utils.report.common import RUN, listed

#: The order of the heads in the table of finished groups.
HEADS = ("VI-Net", "linear (flatten)", "MLP", "projection + linear", "random monomials")


def reference(run: Path = RUN) -> str:
    """The recipe, a table of the sweep (validation, then test accuracy, per head and
    setting), each head's best-known setting, and the curve's finished groups."""
    path = run / "reference.json"
    if not path.exists():
        return "*The reference protocol has not run yet: `make reference`.*"
    rec = read_json(path)
    m = rec["metrics"]
    r = m["recipe"]
    done = sum(1 for x in m["rows"] if x["budget_epochs"])
    trained = f"{done} end-to-end training{'' if done == 1 else 's'} done"
    if m.get("trainings_time_s") is not None and rec.get("device_name"):
        trained += (f" ({m['trainings_time_s'] / 3600:.1f} h of training on {rec['device_name']}, "
                    "the frozen heads included)")
    by = m.get("still_to_run_by_budget") or {}
    left = f"{m['still_to_run']} to go" + (" (" + ", ".join(
        f"{n} at {b} epochs" for b, n in sorted(by.items(), key=lambda x: -int(x[0]))) + ")"
        if by and m["still_to_run"] else "")
    lines = [f"Rule: {r['rule']} ({r['rule_share']:g} x {r['base_lr']:g} at batch "
             f"{r['base_batch_size']}, so {r['reference_lr']:g} at batch {r['batch_size']}); "
             f"label smoothing {r['label_smoothing']:g}, weight decay {r['weight_decay']:g}, "
             f"{r['schedule']} schedule, BatchNorm statistics {r['bn_stats']}. "
             + (f"{trained}, {left}." if m.get("sweep_done") or m.get("curve_only")
                else f"{trained}, {left} as the sweep stands "
                     "(unfinished: a head's rates may still widen, which may change its best-known setting).")]
    lines += _sweep(m) if not m.get("curve_only") else [
        "", "The curve alone (`CURVE_ONLY=1`): no sweep of the rate on this run, and no control."]
    cuts = [*m.get("variants", []), "full"]  # the control's own "cut" after the cut networks
    groups = sorted((g for g in m["summary"] if g["budget_epochs"] > 0), key=lambda g: (
        -g["budget_epochs"], cuts.index(g["variant"]) if g["variant"] in cuts else len(cuts),
        _rate_order(g["setting"]), _head_order(g["head"])))
    if groups:
        lines += ["", "Finished groups, every seed (test accuracy, % ± 95% t interval):", "",
                  "| cut | head | epochs | setting | test | validation |", "|---|---|---|---|---|---|"]
        lines += [f"| {g['variant']} | {g['head']} | {g['budget_epochs']} | {g['setting']} | "
                  f"{g['mean']:.2f} ± {g['half_width']:.2f} | {g['val']['mean']:.2f} |" for g in groups]
    return "\n".join(lines + _curve(m, cuts))


def _sweep(m: dict) -> list[str]:
    """The sweep as a table: per head and setting, validation (test) accuracy, and each
    head's best-known setting once the sweep is done."""
    at = m["sweep_at"]
    lines = ["", f"The sweep at {at['cut']}, {at['budget']} epochs, seed {at['seed']}: validation "
             f"accuracy on the held-out images (test accuracy), %.", ""]
    names = {x["setting"] for h in m["sweep"].values() for x in h["rows"]}
    cols = sorted(names, key=_rate_order)
    lines += ["| head | " + " | ".join(cols) + " | best-known |", "|---|" + "---|" * (len(cols) + 1)]
    for head, s in m["sweep"].items():
        cell = {x["setting"]: f"{x['val_acc']:.2f} ({x['test_acc']:.2f})" for x in s["rows"]}
        best = s["best_known"]["setting"] if s["best_known"] and m.get("sweep_done") else "-"
        lines.append(f"| {head} | " + " | ".join(cell.get(c, "-") for c in cols) + f" | {best} |")
    return lines


def _curve(m: dict, cuts: list) -> list[str]:
    """The curve at the reference rate, one line per cut and head: its mean test accuracy
    frozen and at each budget, and what it gained from the smallest budget to the largest,
    or from its frozen head where the record has one end-to-end budget (a head that gains
    least from more training is the first suspect of a rate that suits it badly). Empty
    until some head has two of those points."""
    budgets = sorted(b for b in m.get("budgets", []) if b > 0)
    steps = budgets if len(budgets) > 1 else [0, *budgets]  # the points a gain runs between
    mean = {(g["variant"], g["head"], g["budget_epochs"]): g["mean"] for g in m["summary"]
            if g["setting"] in ("frozen", "reference")}
    pairs = sorted({(v, h) for v, h, b in mean if b > 0 and v in cuts[:-1]},
                   key=lambda x: (cuts.index(x[0]), _head_order(x[1])))
    pairs = [x for x in pairs if sum((*x, b) in mean for b in steps) > 1]
    if not pairs:
        return []
    lo, hi = steps[0], steps[-1]
    span = f"{lo} → {hi}" if lo else f"frozen → {hi}"
    gains = {x: mean[(*x, hi)] - mean[(*x, lo)] for x in pairs if (*x, lo) in mean and (*x, hi) in mean}

    def cell(key: tuple) -> str:
        return f"{mean[key]:.2f}" if key in mean else "-"

    return ["", "The curve at the reference rate: test accuracy by budget (%, mean over seeds), and "
            f"what each head gains from {f'{lo} to' if lo else 'its frozen head to'} {hi} epochs:", "",
            "| cut | head | frozen | " + " | ".join(f"{b} epochs" for b in budgets) + f" | {span} |",
            "|---|---|---|" + "---|" * (len(budgets) + 1)] + [
        f"| {v} | {h} | {cell((v, h, 0))} | " + " | ".join(cell((v, h, b)) for b in budgets)
        + f" | {f'{gains[v, h]:+.2f}' if (v, h) in gains else '-'} |" for v, h in pairs
    ] + _curve_reading(mean, pairs, budgets, gains, swept=not m.get("curve_only"))


def _curve_reading(mean: dict, pairs: list, budgets: list, gains: dict, swept: bool = True) -> list[str]:
    """Per cut, in words: which head has the highest mean at each budget, and which gains
    least (``gains``: (cut, head) -> its gain, as :func:`_curve` measures it); ``swept``:
    whether the record has a sweep of the rate that tries that head at other rates. The heads
    compared are those on the curve at some cut (``pairs``); a budget is read at a cut only
    once each of them has a mean there, and the gains once each has one: a head still
    training is never outranked in words, and a lone head is never said to lead."""
    cuts = list(dict.fromkeys(v for v, _ in pairs))
    every_head = sorted({h for _, h in pairs}, key=_head_order)
    said = []
    for cut in cuts:
        lead = {b: max(every_head, key=lambda h: mean[cut, h, b]) for b in budgets
                if len(every_head) > 1 and all((cut, h, b) in mean for h in every_head)}
        gained = {h: gains[cut, h] for h in every_head if (cut, h) in gains}
        words = []
        if lead:
            first = next(iter(lead.values()))
            at = "every budget" if len(lead) == len(budgets) > 1 else listed([str(b) for b in lead]) + " epochs"
            words.append(f"{first} has the highest mean at {at}" if set(lead.values()) == {first} else
                         "the highest mean is " + ", ".join(f"{h}'s at {b} epochs" for b, h in lead.items()))
        if len(gained) == len(every_head) > 1:
            least = min(gained, key=gained.get)
            words.append(f"{least} gains least ({gained[least]:+.2f})")
        if words:
            said.append(f"at {cut}, " + " and ".join(words))
    if not said:
        return []
    after = ("the sweep above tries it at other rates." if swept else "this run has no sweep of the "
             "rate, so whether another rate would close its gap is not measured here.")
    return ["", "Read along the curve: " + "; ".join(said) + ". The head that gains least is the first "
            "suspect of a rate that suits it badly; " + after]


def _head_order(head: str) -> int:
    """The heads in :data:`HEADS` order, any other after them."""
    return HEADS.index(head) if head in HEADS else len(HEADS)


def _rate_order(setting: str) -> tuple:
    """Sweep columns in order: the reference's multiples by rate ("reference / 4", "reference",
    "reference x 4", ...), then any other setting."""
    words = setting.split()
    if words[0] != "reference":
        return (1, 0.0, setting)
    factor = 1.0 if len(words) == 1 else float(words[2]) ** (1 if words[1] == "x" else -1)
    return (0, factor, setting)
