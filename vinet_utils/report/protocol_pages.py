"""The blocks of docs/sweep.md: ``sweep`` (the validation sweep) and ``protocol`` (each
committed protocol search)."""

from __future__ import annotations

from pathlib import Path

from vinet_utils.common.results import read_json
from vinet_utils.report.common import PROTOCOL_RUNS, RUN, fmt, plus_minus, runnable


def sweep(run: Path = RUN) -> str:
    """The validation sweep: what each factor's candidates scored and what was chosen."""
    path = run / "sweep.json"
    if not path.exists():
        return "No sweep has been run for this profile yet."
    rec = read_json(path)
    m = rec["metrics"]
    variants = list(m["chosen_val_acc"])
    lines = [f"Command: `{runnable(m['command'])}`. Validation split: {m['validation']['n_val']} of the "
             f"training images ({m['validation']['frac']:.0%} of each class, seeded); heads fitted "
             f"on the other {m['validation']['n_fit']}. Mean validation accuracy over "
             f"{', '.join(variants)}, {rec['params']['seeds']} seeds per trial:", "",
             "| factor (in sweep order) | candidates: mean validation accuracy (%) | chosen |",
             "|---|---|---|"]
    for name in m["order"]:
        f = m["factors"][name]
        cands = ", ".join(f"{str(c).lower() if isinstance(c, bool) else c}: {a:.2f}"
                          for c, a in zip(f["candidates"], f["mean_val_acc"]))
        chosen = f["chosen"]
        lines.append(f"| `{name}` | {cands} | **{str(chosen).lower() if isinstance(chosen, bool) else chosen}** |")
    lines += ["", "| validation accuracy (%) | " + " | ".join(variants) + " |",
              "|---|" + "---|" * len(variants),
              "| VI-Net, chosen values | " + " | ".join(fmt(m["chosen_val_acc"][v]) for v in variants) + " |"]
    for ref in next(iter(m["references"].values())):
        lines.append(f"| {ref} | " + " | ".join(
            plus_minus(m["references"][v][ref]["val_acc"], m["references"][v][ref]["val_acc_std"])
            for v in variants) + " |")
    return "\n".join(lines)


def protocol() -> str:
    """Each committed protocol search: for an Optuna search, every head's knobs, its
    chosen trial and the spread of its trials, frozen and end to end, with the edge
    flags."""
    from vinet_utils.workflow.searches import chosen_settings

    out = []
    for name, run in PROTOCOL_RUNS.items():
        path = run / "protocol.json"
        if not path.exists():
            continue
        rec = read_json(path)
        m = rec["metrics"]
        out += _optuna_search(name, m)
        out += _mixed_ranges(m)
        chosen = chosen_settings(m)
        out += [f"Adopted in `params/{name}.yaml`: " + "; ".join(
            f"`{k}`: " + (", ".join(f"{h} {', '.join(f'{a}={b}' for a, b in t.items())}"
                                    for h, t in v.items()) if isinstance(v, dict) else f"{v}")
            for k, v in chosen.items()) + ".", ""]
    return "\n".join(out).strip() or "*No protocol search committed yet: `make protocol`.*"


def _mixed_ranges(m: dict) -> list[str]:
    """A line for every study whose stored trials were drawn from more than one range of
    a knob (a study resumed with another range), as the storage records them."""
    lines = [f"- `{study}` drew `{k}` from " + " and from ".join(f"{lo:g} to {hi:g}" for lo, hi in r)
             + " (the study was resumed with another range; every trial lies in one of them)."
             for study, knobs in m.get("ranges_drawn", {}).items()
             for k, r in knobs.items() if len(r) > 1]
    return (["Ranges as the storage holds them, where a study drew from more than one:", *lines, ""]
            if lines else [])


def _space(space: dict) -> str:
    return "; ".join(f"`{k}` {spec[1]:g} to {spec[2]:g} (log)" if spec[0] == "log"
                     else f"`{k}` in {', '.join(str(c).lower() for c in spec[1])}"
                     for k, spec in space.items())


def _count(studies: dict, per_round: int) -> str:
    """``12 trials (2 rounds of 6)``, or what each head had where they differ."""
    counts = {len(t) for t in studies.values()}
    if len(counts) > 1:
        return "; ".join(f"{h} {len(t)}" for h, t in studies.items()) + " trials"
    n = counts.pop()
    return f"{n} trials" + (f" ({n // per_round} rounds of {per_round})" if n > per_round else "")


def _optuna_search(name: str, m: dict) -> list[str]:
    """The page lines of one Optuna protocol search (:mod:`vinet_utils.experiments.protocol`)."""
    from vinet_utils.workflow.searches import best

    v = m["validation"]
    where = ("the images the run held out of all training (the base never saw them)"
             if not v["overlaps_base_training"] else
             "a split carved out of the training images, which the base trained on")
    out = [f"**`{name}`** (`{runnable(m['command'])}`): validated on {v['n_val']:,} images, {where}; "
           f"heads fitted on {v['n_fit']:,}. Every head had "
           f"{_count(m['frozen'], m['trials_per_head'])} with the base frozen"
           + (f" and {_count(m['end_to_end'], m['e2e_trials_per_head'])} end to end at "
              f"{', '.join(m['end_to_end_cuts'])}" if m["end_to_end"] else "")
           + f", each trial the mean validation accuracy (%) of {m['trainings_per_trial']} "
           f"trainings over {', '.join(m['variants'])}. A chosen value in the outer "
           f"{m['edge']:.0%} of its log range is flagged."
           + (f" The searches of {' and '.join(m['kept_from_earlier_run'])} are kept as an "
              f"earlier run of the same search recorded them (`--heads` searched the others "
              f"again)." if m.get("kept_from_earlier_run") else ""), "",
           "| head, base frozen | knobs searched | chosen | validation (%) | "
           + " | ".join(m["variants"]) + " | all its trials | flags |",
           "|---|---|---|---|" + "---|" * len(m["variants"]) + "---|---|"]
    rows = [(h, t, m["spaces"][h], m["flags"].get(h)) for h, t in m["frozen"].items()]
    rows += [(f"{h}, end to end", t, m["e2e_spaces"][h], m["flags_end_to_end"].get(h))
             for h, t in m["end_to_end"].items()]
    for head, trials, space, flags in rows:
        b = best(trials)
        objs = [t["objective"] for t in trials]
        cuts = [b["per_cut"].get(c, {}).get("val_acc") for c in m["variants"]]
        out.append(f"| {head} | {_space(space)} | {b['label']} | **{b['objective']:.2f}** | "
                   + " | ".join("-" if c is None else f"{c:.2f}" for c in cuts)
                   + f" | {len(objs)}: {min(objs):.2f} to {max(objs):.2f} | "
                   + (", ".join(flags) if flags else "none") + " |")
    out.append("")
    for kind, widened in (("", m.get("widened", {})), (", end to end", m.get("widened_end_to_end", {}))):
        for head, rounds in widened.items():
            out.append(f"- {head}{kind}: " + "; then ".join(
                f"{r['trials']} trials in {_space(r['space'])} chose {r['best']} "
                f"({r['objective']:.2f})" + (f", flagged at {', '.join(r['flags'])}" if r["flags"]
                                              else ", not flagged") for r in rounds)
                + "; searched again" + (" in the range above." if any(r["flags"] for r in rounds)
                                        else ", as many trials as the widened heads had."))
    if m.get("widened") or m.get("widened_end_to_end"):
        out.append("")
    return out
