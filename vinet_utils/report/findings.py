"""The study's findings in words, one function per topic (one bullet each), as the
README's ``verdict`` block lists them after its table; every number computed from
``study.json``."""

from __future__ import annotations

from vinet_utils.report.common import VARIANTS


def study_findings(rec: dict) -> list[str]:
    """The study's findings in words, each number computed from ``rec``: one bullet per
    topic, those without evidence in ``rec`` left out."""
    topics = (_frozen_finding, _linear_finding, _baseline_finding,
              _top_base_finding, _end_to_end_finding, _budget_findings,
              _random_monomials_finding, _trend_finding)
    return [line for topic in topics for line in topic(rec)]


def _cases(rec: dict, key: str) -> list[tuple[str, str, dict]]:
    """``(base, cut, numbers)`` of every base and cut whose numbers hold ``key``."""
    return [(b, v, c) for b, s in rec["bases"].items() for v, c in s["cuts"].items()
            if c.get(key) is not None]


def _clearly_ahead(c: dict, key: str) -> bool:
    """Whether the margin ``c[key]``'s 95% t interval (``c[key + "_ci"]``) excludes 0
    from above."""
    return c.get(f"{key}_ci") is not None and c[key] > c[f"{key}_ci"]


def _per_cut(rec: dict, key: str) -> dict:
    """``{cut: [c[key] of every base that has it, in the table's order]}``, cuts with none left out."""
    cases = _cases(rec, key)
    out = {v: [c[key] for _, x, c in cases if x == v] for v in VARIANTS}
    return {v: xs for v, xs in out.items() if xs}


def _frozen_finding(rec: dict) -> list[str]:
    frozen = _cases(rec, "margin")
    behind = [c for _, _, c in frozen if c["margin"] < 0]
    clear = [f"{cut}, {base_label(rec['bases'][base])}: {c['margin']:+.2f} ± {c['margin_ci']:.2f}"
             for base, cut, c in frozen if _clearly_ahead(c, "margin")]
    b, v, best = max(frozen, key=lambda x: x[2]["margin"])
    return [f"- **Base frozen**: VI-Net trails the best head without polynomials in "
            f"{len(behind)} of {len(frozen)} base-and-cut cases; its best margin is "
            f"{best['margin']:+.2f} ({v}, {base_label(rec['bases'][b])}), and it is ahead by "
            f"more than its 95% interval in {len(clear) or 'none'} of them"
            + (f" ({'; '.join(clear)})." if clear else ".")]


def _linear_finding(rec: dict) -> list[str]:
    """VI-Net against the flattened linear head alone, the comparison of the paper's
    ablation, per base and cut."""
    cases = _cases(rec, "linear_margin")
    if not cases:
        return []
    clear = [c for _, _, c in cases if _clearly_ahead(c, "linear_margin")]
    return [f"- **Against the flattened linear head alone** (the paper's ablation), base "
            f"frozen: VI-Net is ahead by more than its 95% interval in {len(clear)} of "
            f"{len(cases)} base-and-cut cases. Margins per cut, base by base in the table's "
            f"order: " + "; ".join(f"{v} " + " / ".join(f"{x:+.2f}" for x in xs)
                                 for v, xs in _per_cut(rec, "linear_margin").items()) + "."]


def _baseline_finding(rec: dict) -> list[str]:
    """How far VI-Net falls below its own full network, beside the paper's fall."""
    per_cut = _per_cut(rec, "vinet_minus_baseline")
    if not per_cut:
        return []
    paper = rec["paper_vinet_minus_baseline"]
    return ["- **Against the full network**, base frozen, VI-Net's drop from its own base in "
            "points (a gain is negative), base by base in the table's order: " + "; ".join(
                f"{v} " + " / ".join(f"{-d:.2f}" for d in ds) + f" (the paper: {-paper[v]:.2f})"
                for v, ds in per_cut.items()) + "."]


def _top_base_finding(rec: dict) -> list[str]:
    top = max(rec["bases"].values(), key=lambda s: s["baseline_acc"])
    if top["baseline_acc"] < rec["paper_baseline_acc"]:
        return []
    cuts = top["cuts"]
    paper = [rec["paper_baseline_acc"] + rec["paper_vinet_minus_baseline"][v] for v in cuts]
    return [f"- **At the paper's width and above its base**: {base_label(top)}, "
            f"{top['baseline_acc']:.2f}% against the paper's {rec['paper_baseline_acc']:.2f}%. "
            f"VI-Net reaches " + " / ".join(f"{c['vinet_acc']:.2f}" for c in cuts.values())
            + "% at " + " / ".join(cuts) + " (the paper: " + " / ".join(f"{x:.2f}" for x in paper)
            + "%), and the best head without polynomials "
            + " / ".join(f"{c['best_without_poly_acc']:.2f}" for c in cuts.values())
            + "%. A stronger base does not open a gap for the polynomial features."]


def _end_to_end_finding(rec: dict) -> list[str]:
    e2e = _cases(rec, "e2e_margin")
    if not e2e:
        return []
    label = lambda b: base_label(rec["bases"][b])  # noqa: E731
    if any(c["e2e_margin"] > 0 for _, _, c in e2e):
        return ["- **End to end**: " + "; ".join(
            f"{v} ({label(b)}): {c['e2e_margin']:+.2f}" for b, v, c in e2e) + "."]
    return ["- **End to end**: " + "; ".join(
        f"{v} ({label(b)}): VI-Net {c['e2e_vinet_acc']:.2f}% against "
        f"{c['e2e_best_without_poly']} {c['e2e_best_without_poly_acc']:.2f}% "
        f"({c['e2e_margin']:+.2f})" for b, v, c in e2e)
        + ". Unfreezing the base does not open a gap for the polynomial features."]


def _budget_findings(rec: dict) -> list[str]:
    budget = _cases(rec, "budget_margin")
    out = []
    for b in dict.fromkeys(b for b, _, _ in budget):
        mine = [(v, c) for x, v, c in budget if x == b]
        ahead = [f"{v} ({c['budget_vinet_acc'] - c['vinet_acc']:+.2f})" for v, c in mine
                 if c["budget_vinet_acc"] > c["vinet_acc"]]
        out.append("- **The paper's head size** (at least 0.13M parameters beyond the "
                   f"projection, or every generator where there are fewer), "
                   f"{base_label(rec['bases'][b])}: VI-Net "
                   + "; ".join(f"{v} {c['budget_vinet_acc']:.2f}% with "
                               f"{c['budget_generators']:.0f} generators "
                               f"({c['budget_margin']:+.2f} against {c['budget_rival']})"
                               for v, c in mine)
                   + ". With 25 generators per class it had "
                   + "; ".join(f"{v} {c['vinet_acc']:.2f}%" for v, c in mine)
                   + ". The larger head is ahead of the smaller one at "
                   + (", ".join(ahead) or "no cut") + ".")
    return out


def _random_monomials_finding(rec: dict) -> list[str]:
    rm = [(b, c) for b, v, c in _cases(rec, "random_monomials_saturated") if v == "tiny"]
    if not rm:
        return []

    def part(b, c):
        return (f"{base_label(rec['bases'][b])}: {c['random_monomials_acc']:.2f}% against "
                f"{c['linear_acc']:.2f}% for the flattened linear head, with "
                f"{100 * c['random_monomials_saturated']:.0f}% of its projected coordinates "
                f"beyond ±0.99 after training ({100 * c['vinet_saturated']:.0f}% for VI-Net)")

    new = [part(b, c) for b, c in rm if c.get("random_monomials_variables")]
    old = [part(b, c) for b, c in rm if not c.get("random_monomials_variables")]
    out = []
    if new:
        out.append("- **Random monomials at the tiny cut**, of the projected coordinates moved "
                   "into (0, 1) and drawn without repeats (docs/method.md §7): "
                   + "; ".join(new) + ".")
    if old:
        out.append("- **Random monomials at the tiny cut, in runs made before their "
                   "present definition** (docs/method.md §7), took |·| of products of "
                   "coordinates in (-1, 1), which drops every coordinate's sign, and failed: "
                   + "; ".join(old) + ". "
                   "Training drove their projection into tanh saturation, where those "
                   "features are 1 whatever the input: a failure of that head's "
                   "definition, not a measure of random features.")
    return out


def base_label(s: dict) -> str:
    """A study base in a few words: width, epochs, off the cpu profile where it ran, and
    whether each head trained as its own protocol search chose."""
    where = "" if s.get("profile") in (None, "cpu") else \
        f", {s['profile']} profile, base trained on {s.get('device_name') or 'a GPU'}"
    searched = ("" if not s.get("rival_settings") else
                f", each head at the {s['heads_from']} search's settings" if s.get("heads_from") else
                ", each head as searched" if s.get("holdout_frac") else
                ", each head as an earlier grid search chose")
    return f"width {float(s['width'])}, {s['epochs']} epochs{where}{searched}"


def _trend_finding(rec: dict) -> list[str]:
    t = rec["margin_trend"]
    if not t:
        return []
    above = [v for v, x in t.items() if x["predicted"] - 2 * x["predicted_se"] > 0]
    below = [v for v, x in t.items() if x["predicted"] + 2 * x["predicted_se"] < 0]
    slopes = ", ".join(f"{v} {x['slope_per_point']:+.2f}" for v, x in t.items())
    return [f"- **Towards the paper's base** (width 0.25): the margin changes per point "
            f"of baseline accuracy by {slopes}. Read at {rec['paper_baseline_acc']:.2f}%, "
            f"it is above zero by more than two standard errors at "
            f"{', '.join(above) if above else 'no cut'}, and below zero by as much at "
            f"{', '.join(below) if below else 'no cut'}."]
