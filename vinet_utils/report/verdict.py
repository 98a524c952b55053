"""The README's ``verdict`` block: the paper's claim, the study's margin table,
and the findings in words (each finding's wording is in :mod:`.findings`)."""

from __future__ import annotations

from pathlib import Path

from vinet_utils.common.results import read_json
from vinet_utils.report.common import STUDY, VARIANTS
from vinet_utils.report.findings import base_label, study_findings


def verdict(path: Path = STUDY) -> str:
    """The paper's claim and the study's answer: each base, VI-Net's margin over the best
    head without polynomials per cut and protocol, the paper-size head, the trend at
    the paper's base, and the findings in words, all computed from ``study.json``."""
    from vinet_utils.common.paper import paper_row

    rec = read_json(path)
    bases = rec["bases"]
    paper_base = rec["paper_baseline_acc"]
    paper = {v: paper_row(rec["dataset"], rec["arch"], v) for v in VARIANTS}
    lines = ["**The paper's claim** (its CIFAR-10 / ResNet-18 table): cut at tiny / small / "
             "medium / large, VI-Net keeps "
             + " / ".join(f"{paper[v]['acc']:.2f}" for v in VARIANTS)
             + f"% against the full ResNet's {paper_base:.2f}%, with "
             + " / ".join(f"{paper[v]['total_M']:.2f}M" for v in VARIANTS)
             + f" parameters against {paper_row(rec['dataset'], rec['arch'], 'baseline')['total_M']:.2f}M"
             + ", and its ablation credits the polynomial "
               "features: without them, a linear head on the truncated network falls off.",
             "", "**What we measured**: VI-Net's accuracy minus that of the best head "
                 "*without* a polynomial layer at the same cut (linear on the flattened "
                 "map, projection + linear, or an MLP of VI-Net's size), trained for as "
                 "many epochs on the same latents, in points. In rows marked \"each head as "
                 "searched\", every head trains at the settings its own validation search "
                 "on the 18-epoch width-0.25 base chose, with the same number of trials "
                 "per head (docs/sweep.md); in the others, every head at VI-Net's:", "",
             *_margin_table(rec)]
    names = sorted({c["best_without_poly"] for s in bases.values() for c in s["cuts"].values()})
    lines += ["", f"± is the 95% t interval of the difference of the two means over seeds (Welch's). The "
                  f"best head without polynomials was, case by case: {', '.join(names)}. "
                  f"End to end: each head's first frozen-base training fine-tuned further with "
                  f"the base unfrozen on augmented images, every head with the same budget. "
                  + _trend_note(len(rec.get("trend_bases", bases))), ""]
    lines += study_findings(rec)
    return "\n".join(lines)


def _margin_table(rec: dict) -> list[str]:
    """The verdict's table: per base and protocol, VI-Net minus the best head without
    polynomials at each cut, then the width-0.25 trend read at the paper's base."""
    def cells(s, key, se_key=None):
        out = []
        for v in VARIANTS:
            c = s["cuts"].get(v, {})
            se = c.get(se_key) if se_key else None
            out.append("-" if key not in c else
                       f"{c[key]:+.2f}" + ("" if se is None else f" ± {se:.2f}"))
        return out

    lines = ["| base (ResNet-18) | baseline | tiny | small | medium | large |",
             "|---|---|---|---|---|---|"]
    for s in rec["bases"].values():
        seeds = max((c["vinet_seeds"] for c in s["cuts"].values()), default=0)
        lines.append(f"| {base_label(s)}, base frozen ({seeds} seeds) | {s['baseline_acc']:.2f}% | "
                     + " | ".join(cells(s, "margin", "margin_ci")) + " |")
        if any("e2e_margin" in c for c in s["cuts"].values()):
            n = max(c.get("e2e_seeds") or 0 for c in s["cuts"].values())
            lines.append(f"| {base_label(s)}, end to end ({n} seed{'s' * (n > 1)}) | | "
                         + " | ".join(cells(s, "e2e_margin")) + " |")
        if any("budget_margin" in c for c in s["cuts"].values()):
            lines.append(f"| {base_label(s)}, base frozen, paper-size VI-Net head | | "
                         + " | ".join(cells(s, "budget_margin")) + " |")
    t = rec["margin_trend"]
    if t:
        lines.append(f"| *width-0.25 trend, read at the paper's {rec['paper_baseline_acc']:.2f}%* "
                     "| | " + " | ".join(f"{t[v]['predicted']:+.2f} ± {t[v]['predicted_se']:.2f}"
                                         if v in t else "-" for v in VARIANTS) + " |")
    return lines


def _trend_note(n: int) -> str:
    """What the study's trend line is, or why there is none."""
    if n < 2:
        return ("No trend line is drawn: it needs at least two bases on one protocol, and "
                f"{n} is.")
    return (f"Trend: per cut, a least-squares line through the frozen margins of the {n} "
            f"width-0.25 bases against baseline accuracy, read at the paper's base, ± the "
            f"standard error of that prediction: an extrapolation beyond those bases.")
