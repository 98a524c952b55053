"""docs/oavi.md's ``oavi`` block: the OAVI benchmark and its A/B against a baseline
commit, from ``results/benchmarks/``."""

from __future__ import annotations

import math
from pathlib import Path

from vinet_utils.common.results import REPO_ROOT, read_json
from vinet_utils.report.common import runnable, seconds


def oavi(path: Path = REPO_ROOT / "results" / "benchmarks" / "oavi.json") -> str:
    """The OAVI benchmark: each case's time, size, targets and agreement with brute force."""
    rec = read_json(path)
    meta = rec["metadata"]
    lines = [f"`{runnable(rec.get('command', 'python -m vinet_utils.experiments.bench oavi'))}` at commit "
             f"`{str(meta['git_commit'])[:7]}`, {meta['device_name']}, float64. "
             f"Machine: {meta.get('machine_note', 'not recorded')}.", "",
             "| case | points | fit (median) | fit CPU time | target | O terms | generators | brute force "
             "| speed ratio | same decisions |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in rec.get("cases", {}).items():
        ref = (f"{c['reference_time_s']:.2f} s" if "reference_time_s" in c else "skipped")
        ratio = f"{c['speed_ratio']:.1f}x" if "speed_ratio" in c else "-"
        same = str(c.get("identical_decisions", "-")).lower()
        target = c.get("target_fit_time_s")
        met = "" if target is None else (" (met)" if c["fit_time_s"] <= target else " (**missed**)")
        lines.append(f"| {name} | {c['shape'][0]}x{c['shape'][1]} | {seconds(c['fit_time_s'])}{met} | "
                     f"{seconds(c['fit_cpu_time_s'])} | {'-' if target is None else seconds(target)} | "
                     f"{c['n_O']} | {c['n_G']} | {ref} | {ratio} | {same} |")
    busy = {n: c["busy_slowdown"] for n, c in rec.get("cases", {}).items() if "busy_slowdown" in c}
    for name, slow in busy.items():
        lines += ["", f"{name} with a CPU-bound process running beside it: "
                      f"{seconds(rec['cases'][name]['busy_fit_time_s'])} median, {slow:.2f}x the idle time "
                      f"(target: at most 2x)."]
    s = rec["summary"]
    lines += ["", f"Ten classes of {rec['parameters']['points']} points in "
                  f"{rec['parameters']['dim']} dimensions at psi {rec['parameters']['psi']} and the "
                  f"papers' default tau ({rec['parameters']['tau_resolved']:.2f}): "
                  f"{s['total_fit_time_s']:.1f} s against {s['total_reference_time_s']:.1f} s for "
                  f"brute force, **{s['speed_ratio']:.1f}x**; decisions identical: "
                  f"**{str(s['identical_decisions']).lower()}**; the l1 bound was active for "
                  f"{s['n_bound_active_total']} of {s['n_border_terms_total']} border terms."]
    if "peer" in rec:
        lines += ["", *peer_table(rec["peer"])]
    ab_path = path.with_name("oavi_ab.json")
    if ab_path.exists():
        lines += ["", *_oavi_ab(read_json(ab_path))]
    return "\n".join(lines)


#: The speed-up over the authors' implementation that every case should reach.
PEER_TARGET = 10.0


def oavi_summary(path: Path = REPO_ROOT / "results" / "benchmarks" / "oavi.json") -> str:
    """README's sentence on OAVI against the authors' implementation: the cases at
    :data:`PEER_TARGET` or more and those under it, with their speed-ups."""
    rec = read_json(path)
    if "peer" not in rec:
        return "No comparison with the authors' implementation has been recorded."
    cases = {n: c for n, c in rec["peer"]["cases"].items() if c.get("ratio_peer_over_ours") is not None}
    # rounded down: a case just under the target never reads as at it
    shown = lambda names: ", ".join(f"{n} {math.floor(cases[n]['ratio_peer_over_ours'] * 10) / 10:.1f}x"
                                    for n in names)
    fast = [n for n, c in cases.items() if c["ratio_peer_over_ours"] >= PEER_TARGET]
    slow = [n for n in cases if n not in fast]
    differ = [n for n in cases if not cases[n]["decisions_agree"]]
    text = (f"Against the authors' implementation, on the same points in one run on "
            f"{rec['metadata']['device_name']} (`results/benchmarks/oavi.json`, commit "
            f"`{str(rec['metadata']['git_commit'])[:7]}`): {len(fast)} of {len(cases)} cases at least "
            f"{PEER_TARGET:.0f}x faster ({shown(fast)})" + (f"; under it: {shown(slow)}." if slow else "."))
    if differ:
        text += (f" The decisions agree in every case but {', '.join(differ)}, where the authors' code "
                 f"changes oracle once the l1 bound binds.")
    return text


def peer_table(peer: dict) -> list[str]:
    """The comparison with the authors' implementation: each case's two times, the ratio and
    whether both made the same decisions, then the cases under :data:`PEER_TARGET`."""
    lines = [f"Against the authors' implementation ({peer['source']} at `{str(peer['commit'])[:7]}`, "
             f"never part of this repository): {peer['timing']}; "
             + (f"both sides capped at {peer['threads']} BLAS threads, ours choosing within the cap."
                if peer.get("threads") else "threads as each side chose."), "",
             "| case | points | ours | authors' | speed-up | same O and G | O terms | our threads | fits |",
             "|---|---|---|---|---|---|---|---|---|"]
    short, switched = [], []
    for name, c in peer["cases"].items():
        if c.get("ratio_peer_over_ours") is None:
            lines.append(f"| {name} | {c['shape'][0]}x{c['shape'][1]} | - | - | timed out: "
                         f"{', '.join(c.get('timed_out', []))} | - | - | - | {c['repeats']} |")
            short.append(name)
            continue
        ratio = c["ratio_peer_over_ours"]
        shown = f"{ratio:.1f}x" if ratio >= PEER_TARGET else f"**{ratio:.1f}x**"
        same = str(c["decisions_agree"]).lower()
        if c.get("peer_switched_to_bpcg"):
            same += " (the authors' code switched to BPCG when the l1 bound bound)"
            switched.append(name)
        elif ratio < PEER_TARGET or not c["decisions_agree"]:
            short.append(name)
        lines.append(f"| {name} | {c['shape'][0]}x{c['shape'][1]} | {seconds(c['ours_fit_time_s'])} | "
                     f"{seconds(c['peer_fit_time_s'])} | {shown} | {same} | "
                     f"{c['n_O']['ours']} | {c.get('ours_threads_used', '-')} | {c['repeats']} |")
    lines += ["", (f"Every case is at least {PEER_TARGET:.0f}x faster with the same decisions." if not short else
                   f"Under {PEER_TARGET:.0f}x: {', '.join(short)}.")]
    if switched:
        lines[-1] += (f" In {', '.join(switched)} the authors' code, once the l1 bound binds, fits every later "
                      f"term with BPCG, a different oracle, so its decisions are not the ones compared.")
    return lines + time_split(peer, short)


def time_split(peer: dict, names: list[str]) -> list[str]:
    """Where our time goes in the cases ``names`` (those under :data:`PEER_TARGET`): outside
    the degree loop (checks, ordering, the fitted attributes) and per border term inside it,
    beside the authors' whole fit per border term and a tenth of their time."""
    rows = [(n, peer["cases"][n]) for n in names if "ours_outside_loop_s" in peer["cases"][n]]
    if not rows:
        return []
    lines = ["", "Where our time goes in those cases (medians of the same fits):", "",
             "| case | ours | outside the degree loop | in it, per border term | authors', per border term "
             "| a tenth of the authors' time | border terms |", "|---|---|---|---|---|---|---|"]
    for name, c in rows:
        terms = max(c["ours_border_terms"], 1)
        loop = c["ours_fit_time_s"] - c["ours_outside_loop_s"]
        lines.append(f"| {name} | {seconds(c['ours_fit_time_s'])} | {seconds(c['ours_outside_loop_s'])} | "
                     f"{loop / terms * 1e6:.0f} µs | {c['peer_fit_time_s'] / terms * 1e6:.0f} µs | "
                     f"{seconds(c['peer_fit_time_s'] / PEER_TARGET)} | {c['ours_border_terms']} |")
    return lines


def _oavi_ab(rec: dict) -> list[str]:
    """The A/B of ``python -m vinet_utils.experiments.bench oavi-ab``: each case against a baseline commit."""
    meta = rec["metadata"]
    lines = [f"Against commit `{rec['baseline']}`, alternating on one machine (`{runnable(rec['command'])}` at "
             f"`{str(meta['git_commit'])[:7]}`; {rec['rounds']} rounds of {rec['repeats']} fits per side; "
             f"machine: {meta.get('machine_note', 'not recorded')}). The ratio is that of the fastest fits; "
             f"above {rec['slower_above']} a case counts as slower.", "",
             "| case | baseline, fastest | this code, fastest | ratio | baseline, median | this code, median "
             "| ratio of medians |",
             "|---|---|---|---|---|---|---|"]
    for name, c in rec["cases"].items():
        ratio = f"**{c['ratio']:.2f}** (slower)" if c["slower"] else f"{c['ratio']:.2f}"
        lines.append(f"| {name} | {seconds(c['baseline_fastest_s'])} | {seconds(c['current_fastest_s'])} "
                     f"| {ratio} | {seconds(c['baseline_median_s'])} | {seconds(c['current_median_s'])} "
                     f"| {c['ratio_of_medians']:.2f} |")
    return lines
