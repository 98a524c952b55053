"""The README's ``verdict`` block: the paper's three claims judged on the ``cpu`` run
(numbers from :func:`vinet_utils.verdict.claims`; the wording is here)."""

from __future__ import annotations

from pathlib import Path

from ..results import read_json
from .common import PAPER_RUN, REPO_ROOT, RUN, stale_note

VERDICT_WORD = {"ahead": "VI-Net ahead", "behind": "VI-Net behind", "level": "level"}


def _diff(d: dict | None) -> str:
    if d is None:
        return "-"
    hw = "" if d["half_width"] is None else f" ± {d['half_width']:.2f}"
    return f"{d['diff']:+.2f}{hw} ({VERDICT_WORD[d['verdict']]})"


def _where(rows: list[dict], key: str, verdict: str) -> list[dict]:
    return [r for r in rows if r.get(key) and r[key]["verdict"] == verdict]


def _listing(rows: list[dict]) -> str:
    """Where ``rows`` are, protocol by protocol: ``frozen at tiny, small; end to end for 2
    epochs at tiny``, or ``nowhere``."""
    if not rows:
        return "nowhere"
    cuts: dict = {}
    for r in rows:
        cuts.setdefault(r["protocol"], []).append(r["variant"])
    return "; ".join(f"{p.replace('end to end, ', 'end to end for ')} at {', '.join(v)}"
                     for p, v in cuts.items())


def verdict(run: Path = RUN) -> str:
    """The three claims on the ``cpu`` run: a table per cut and protocol, then one line
    per claim saying where it holds."""
    from .. import verdict as V

    if not (run / "05_ablations.json").exists():
        return "*The cpu run has no notebook 05 results yet: `make reproduce PROFILE=cpu`.*"
    c = V.claims(run)
    base = c["baseline"]
    p = base["params"]
    held = p.get("holdout_frac")
    comp = c["comparator"] or "best head without polynomials"
    rows = c["rows"]
    lines = [f"On the `cpu` run (ResNet-18 at width {p['width']:g}, {p['epochs']} epochs, "
             f"{base['metrics']['n_train']:,} training images"
             + (f", {held:.0%} of each class held out for validation" if held else "")
             + f"; full network {c['base_acc']:.2f}% on the test split). Every head trains at "
             f"the settings its own validation search chose ({_trials(run)}; "
             f"[docs/sweep.md](docs/sweep.md)). In points; ± is the 95% t "
             f"interval over seeds (Welch's, for differences), and a difference counts only "
             f"when its interval excludes 0."
             + (stale_note(read_json(run / "budget.json")) if (run / "budget.json").exists() else ""),
             "",
             f"| cut | protocol | seeds | VI-Net | (a) VI-Net's drop from its base (the paper's) "
             f"| (b) VI-Net minus the linear head | (c) VI-Net minus {comp} |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        hw = "" if r["drop_half_width"] is None else f" ± {r['drop_half_width']:.2f}"
        paper = "-" if r["paper_drop"] is None else f"{r['paper_drop']:+.2f}"
        lines.append(f"| {r['variant']} | {r['protocol']} | {r['seeds']} | {r['vinet_acc']:.2f}% | "
                     f"{r['drop']:+.2f}{hw} ({paper}) | {_diff(r['vs_linear'])} | "
                     f"{_diff(r['vs_comparator'])} |")
    close = [r for r in rows if r["close"]]
    far = [r for r in rows if r["close"] is False]
    lines += ["",
              f"- **(a) The table's claim**, VI-Net keeps its accuracy close to its base: "
              f"within {c['close']:g} point of the paper's drop: {_listing(close)}; "
              f"further: {_listing(far)}.",
              f"- **(b) The ablation's claim**, VI-Net beats the linear head on the truncated "
              f"network: ahead: {_listing(_where(rows, 'vs_linear', 'ahead'))}. Level: "
              f"{_listing(_where(rows, 'vs_linear', 'level'))}. Behind: "
              f"{_listing(_where(rows, 'vs_linear', 'behind'))}."
              + _changes(rows, "vs_linear"),
              f"- **(c) The vanishing ideals' claim**, the polynomials are what keep the "
              f"accuracy: against {comp} (of VI-Net's size, without polynomials; chosen "
              f"before testing, as the head of its size with the best validation accuracy), "
              f"VI-Net is ahead: {_listing(_where(rows, 'vs_comparator', 'ahead'))}. Level: "
              f"{_listing(_where(rows, 'vs_comparator', 'level'))}. Behind: "
              f"{_listing(_where(rows, 'vs_comparator', 'behind'))}."
              + _changes(rows, "vs_comparator")]
    lines += _size_and_speed(run)
    lines += _paper_width(PAPER_RUN)
    return "\n".join(lines)


def _paper_width(run: Path) -> list[str]:
    """Claim (a), size and speed on the ``paper`` run (width 1.0, on a GPU), as far as
    its stages have run."""
    from .. import verdict as V

    if not (run / "04_vinet.json").exists():
        return []
    c = V.claims(run)
    base = c["baseline"]
    rows = [r for r in c["rows"] if r["protocol"] == "frozen"]
    seeds = sorted({r["seeds"] for r in rows})
    acc = " / ".join(f"{r['vinet_acc']:.2f}" for r in rows)
    drop = " / ".join(f"{r['drop']:+.2f} ± {r['drop_half_width']:.2f}" for r in rows)
    paper = " / ".join(f"{r['paper_drop']:+.2f}" for r in rows)
    close = [r["variant"] for r in rows if r["close"]]
    far = [r["variant"] for r in rows if r["close"] is False]
    within = "at " + ", ".join(close) if close else "nowhere"
    further = "at " + ", ".join(far) if far else "nowhere"
    missing = ("" if (run / "05_ablations.json").exists() else
               " Notebook 05 has not run on this base yet, so (b) and (c) are not measured here.")
    device = base.get("device_name", "GPU")
    speed = _size_and_speed(run, "  Here VI-Net has", f"the {device}", "the paper")
    return [f"- **At the paper's width** (the `paper` run: ResNet-18 at width 1.0, "
            f"{base['params']['epochs']} epochs, {base['metrics']['n_train']:,} training images, "
            f"on an {device}; full network {c['base_acc']:.2f}%; every "
            f"head at the settings the `cpu` search chose, base frozen, "
            f"{'/'.join(map(str, seeds))} seeds): VI-Net reaches {acc}% at tiny / small / "
            f"medium / large, a drop of {drop} points (the paper's: {paper}), within "
            f"{c['close']:g} point of the paper's drop {within}; further "
            f"{further}.{missing}"] + speed


def _trials(run: Path) -> str:
    """How many trials each head's search had, from the run's ``protocol.json``."""
    path = run / "protocol.json"
    if not path.exists():
        return "no committed search"
    frozen = read_json(path)["metrics"].get("frozen", {})
    counts = {h: len(t) for h, t in frozen.items()}
    if len(set(counts.values())) == 1:
        return f"{next(iter(counts.values()))} trials for every head"
    return ("trials per head: " + ", ".join(f"{h} {n}" for h, n in counts.items())
            + " (the heads whose first range was widened had a second round)")


def _size_and_speed(run: Path, lead: str = "- **Smaller and faster**: VI-Net has",
                    machine: str = "2 CPU cores", paper: str = "the paper, on its GPU") -> list[str]:
    """The paper's other two words, smaller and faster, from the run's table: one line
    that starts with ``lead`` and says what ran on ``machine``."""
    import csv

    path = run / "table.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["Model"].startswith("VI-Net")]
        f.seek(0)
        full = [r for r in csv.DictReader(f) if r["Model"].startswith("ResNet")][0]
    share = " / ".join(f"{float(r['Total Params']) / float(full['Total Params']):.0%}" for r in rows)
    speed = " / ".join(f"{float(r['Speed-up']):.2f}x" for r in rows)
    theirs = " / ".join(f"{float(r['Paper Speed-up']):.2f}x" for r in rows)
    limit = " / ".join(f"{float(r['Speed-up']) / float(r['FLOP limit']):.0%}" for r in rows)
    link = path.relative_to(REPO_ROOT).as_posix()
    return [f"{lead} {share} of the full network's parameters at tiny / small / medium / "
            f"large, and runs at {speed} its throughput on {machine} ({paper}: {theirs}), "
            f"{limit} of what its FLOPs allow ([table.md]({link.replace('.csv', '.md')}))."]


def _changes(rows: list[dict], key: str) -> str:
    from .. import verdict as V

    cuts = V.sign_changes(rows, key)
    return (f" The difference changes sign with the protocol or budget at {', '.join(cuts)}."
            if cuts else "")
