"""The README's ``verdict`` block: the paper's three claims judged on the ``cpu`` run
(numbers from :func:`vinet_utils.report.evidence.claims`; the wording is here)."""

from __future__ import annotations

from pathlib import Path

from vinet_utils.common.results import read_json
from vinet_utils.report.common import PAPER_RUN, RUN

WITHIN = {True: "within", False: "further", None: "undecided"}


def _diff(d: dict | None) -> str:
    if d is None:
        return "-"
    hw = "" if d["half_width"] is None else f" ± {d['half_width']:.2f}"
    return f"{d['diff']:+.2f}{hw} {d['verdict']}"


def _drop(r: dict) -> str:
    """Claim (a)'s cell: VI-Net's drop in points lost (the paper's), and its class."""
    hw = "" if r["drop_half_width"] is None else f" ± {r['drop_half_width']:.2f}"
    paper = "" if r["paper_drop"] is None else f" ({r['paper_drop']:.2f})"
    return f"{r['drop']:.2f}{hw}{paper} {WITHIN[r['close']]}"


def size_and_speed(run: Path) -> dict:
    """``{cut: (share of the full network's parameters, speed-up, the paper's)}`` from
    the run's ``table.csv`` (notebook 06) and the paper's table."""
    import csv

    from vinet_utils.common.paper import paper_speedup

    path = run / "table.csv"
    if not path.exists():
        return {}
    p = read_json(run / "01_baseline.json")["params"]
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    full = next(r for r in rows if r["Model"].startswith("ResNet"))
    out = {}
    for r in rows:
        if r["Model"].startswith("VI-Net"):
            cut = r["Model"].rsplit("-", 1)[1].lower()
            out[cut] = (float(r["Total Params"]) / float(full["Total Params"]),
                        float(r["Speed-up"]), paper_speedup(p["dataset"], p["arch"], cut))
    return out


def _rows(c: dict, run: Path, control: bool = False) -> list[str]:
    """One table line per cut and protocol, frozen and at the largest end-to-end budget
    (the smaller budgets are on docs/results.md); a cut's size and speed-up on its first
    line; with ``control``, (a) against the full network trained on as long."""
    from vinet_utils.report.evidence import epochs_of

    top = max((epochs_of(r["protocol"]) for r in c["rows"]), default=0)
    speed, seen, lines = size_and_speed(run), set(), []
    shown = [r for r in c["rows"] if epochs_of(r["protocol"]) in (0, top)
             and not (c.get("landed") and r["protocol"].startswith("end to end,"))]
    for r in shown:
        cut = r["variant"]
        size = "" if cut in seen or cut not in speed else (
            f"{speed[cut][0]:.0%} | {speed[cut][1]:.2f}x ({speed[cut][2]:.2f}x)")
        seen.add(cut)
        lines.append(f"| {cut} | {r['protocol']} | {r['seeds']} | {r['vinet_acc']:.2f}% | {_drop(r)} | "
                     f"{_diff(r['vs_linear'])} | {_diff(r['vs_comparator'])} | "
                     + (f"{_against(r['control'], r)} | " if control else "") + f"{size or ' | '} |")
    return lines


def _against(k: dict | None, r: dict) -> str:
    """(a)'s cell against the control ``k`` (the full network trained on as long)."""
    if not k:
        return "-"
    return f"{k['acc']:.2f}%: " + _drop({**r, "drop": k["drop"], "drop_half_width": k["half_width"],
                                         "close": k["close"]})


HEADER = ("| cut | trained | seeds | VI-Net | (a) drop (paper's) | (b) minus linear head "
          "| (c) minus {comp} |{control} params | speed-up (paper's) |")
CONTROL_HEAD = " (a) against the full network trained as long |"
#: What the verdict says of the control's column once the control has run.
CONTROL_NOTE = (" (a) is also read against the control: the full network trained on by the same "
                "recipe, at the same rate and for as many epochs as the end-to-end head "
                "(`reference.json`, cut \"full\"; its accuracy, then VI-Net's drop from it).")


def verdict(run: Path = RUN) -> str:
    """The three claims on the ``cpu`` run and, as far as it has run, on the paper's
    width: one table line per cut and protocol, with the size and speed-up."""
    from vinet_utils.report import evidence as V

    if not (run / "05_ablations.json").exists():
        return "*The cpu run has no notebook 05 results yet: `make reproduce PROFILE=cpu`.*"
    c = V.claims(run)
    base = c["baseline"]
    p = base["params"]
    held = p.get("holdout_frac")
    comp = c["comparator"] or "best head without polynomials"
    ctl = any(r["control"] for r in c["rows"])  # the control has run (the answer says if not)
    ref = "docs/results.md#the-reference-protocol-every-head-end-to-end-by-one-recipe"
    lines = [f"The `cpu` run: ResNet-18 at width {p['width']:g}, {p['epochs']} epochs, "
             f"{base['metrics']['n_train']:,} training images"
             + (f" ({held:.0%} held out)" if held else "")
             + f"; full network {c['base_acc']:.2f}%. Frozen heads as searched ({_trials(run)}); "
             "end to end, at the largest budget ([every budget](docs/results.md#the-budget-curve-end-"
             "to-end-at-growing-budgets)), "
             + (f"under [the reference protocol]({ref}) and at each head's best-known setting"
                if c["landed"] else
                f"as a 2-epoch search at tiny chose, [the reference protocol]({ref})'s rows joining "
                "as they finish")
             + f". ± is the 95% t interval over seeds; (a) *within*: the drop's whole interval "
             f"within {c['close']:g} point of the paper's, *further*: all of it beyond; (b), (c) "
             f"*ahead* or *behind*: the interval excludes 0. Speed-ups on 2 CPU cores."
             + (CONTROL_NOTE if ctl else "")]
    lines += ["", HEADER.format(comp=comp, control=CONTROL_HEAD if ctl else ""),
              "|---" * (10 if ctl else 9) + "|", *_rows(c, run, ctl)]
    return "\n".join(lines + _paper_width(PAPER_RUN))


def _paper_width(run: Path) -> list[str]:
    """The same table on the ``paper`` run (width 1.0, on a GPU), as far as it has run."""
    from vinet_utils.report import evidence as V

    if not (run / "04_vinet.json").exists():
        return []
    c = V.claims(run)
    base = c["baseline"]
    device = base.get("device_name", "GPU")
    if (run / "05_ablations.json").exists():
        rec = read_json(run / "05_ablations.json")
        cuts = rec["metrics"].get("by_cut") or {}  # a stage run cut by cut, maybe over sessions
        hours = (sum(c["wall_time_s"] for c in cuts.values()) if cuts else rec["wall_time_s"]) / 3600
        missing = (f" Notebook 05 ran on {rec.get('device_name', 'another machine')} from the "
                   f"committed weights, in {hours:.1f} h.")
    else:
        missing = " Notebook 05 has not run on this base: (b) and (c) are not measured here."
    return ["", f"The `paper` run: width 1.0, {base['params']['epochs']} epochs, on an {device}; "
            f"full network {c['base_acc']:.2f}%; heads at the `cpu` search's settings (no search "
            f"has run at width 1.0), frozen; speed-ups on the {device}.{missing}",
            "", HEADER.format(comp=c["comparator"] or "MLP", control=""), "|---|---|---|---|---|---|---|---|---|",
            *_rows(c, run)]


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
