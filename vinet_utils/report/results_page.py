"""The blocks of docs/results.md from the cpu and paper runs: ``table``,
``paper_table``, ``ablations``, ``targets``, ``times``, ``paper_times``,
``flop_limits`` and ``memory`` (the CIFAR-100 run's blocks are in
:mod:`.cifar100`)."""

from __future__ import annotations

from pathlib import Path

from vinet_utils.common.results import REPO_ROOT, read_json, stage_seconds
from vinet_utils.report.common import (MEMORY, PAPER_RUN, RUN, STAGE_FILES, VARIANTS, fmt,
                                        met_or_missed, plus_minus, runnable)


def table(run: Path = RUN, caption: bool = False) -> str:
    """A run's ``table.md``. Its long caption explains the columns once, under the
    first table of docs/results.md (``caption``); the others keep only its first
    sentence (what Acc is, over how many seeds) and point there."""
    import re

    text = (run / "table.md").read_text().strip()
    if caption:
        return text
    return re.sub(r"^(Acc: [^.]*\.) .*$", r"\1 The other columns as under the first table of this page.",
                  text, flags=re.M)


def _label(r: dict) -> str:
    """A notebook-05 row's head, with its protocol when that is not the frozen base."""
    return r["head"] + ("" if r.get("protocol", "frozen") == "frozen" else f", {r['protocol']}")


def ablations(run: Path = RUN) -> str:
    """Every head's accuracy per cut (mean ± std over seeds), and VI-Net's margins."""
    rec = read_json(run / "05_ablations.json")["metrics"]
    rows = rec["rows"]
    heads = list(dict.fromkeys(_label(r) for r in rows))
    acc = {(_label(r), r["variant"]): r for r in rows}
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in rows)]
    lines = ["| head (frozen base unless named) | " + " | ".join(variants) + " |",
             "|---|" + "---|" * len(variants)]
    for h in heads:
        cells = [plus_minus(acc[h, v]["acc"], acc[h, v].get("acc_std")) if (h, v) in acc else "-"
                 for v in variants]
        lines.append(f"| {h} | " + " | ".join(cells) + " |")
    flat = next((h for h in heads if h.startswith("linear (") and h != "linear (gap)"), None)
    for other in (flat, "projection + linear"):
        if other and all((other, v) in acc and ("VI-Net", v) in acc for v in variants):
            lines.append(f"| *VI-Net minus {other}* | " + " | ".join(
                f"{acc['VI-Net', v]['acc'] - acc[other, v]['acc']:+.2f}" for v in variants) + " |")
    lines.append(f"| *full ResNet* | {fmt(rec['baseline']['acc'])} (all cuts) |"
                 + " |" * (len(variants) - 1))
    return "\n".join(lines)


def targets(run: Path = RUN) -> str:
    """The reproduction's targets for the cpu run (base frozen, means over seeds), each
    with the measured value and whether it is met."""
    base = read_json(run / "01_baseline.json")["metrics"]["test_acc"]
    rows = read_json(run / "05_ablations.json")["metrics"]["rows"]
    acc = {(r["head"], r["variant"]): r["acc"] for r in rows  # the targets are base frozen
           if r.get("protocol", "frozen") == "frozen"}
    flat = next(h for h, _ in acc if h.startswith("linear (") and h != "linear (gap)")
    speed = read_json(run / "06_throughput.json")["metrics"]["throughput"]
    full = speed["ResNet (full)"]["mean"]
    lines = ["| target | tiny | small | medium | large |", "|---|---|---|---|---|"]

    def row(label, cells):
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    margin = {"tiny": 2, "small": 2, "medium": 0, "large": 0}
    row(f"VI-Net minus {flat} >= 2 / 2 / 0 / 0 points", [
        met_or_missed(acc["VI-Net", v] - acc[flat, v], margin[v], f"{acc['VI-Net', v] - acc[flat, v]:+.2f}")
        for v in VARIANTS])
    gap = {"tiny": 5, "small": 1, "medium": 0.5, "large": 0.5}
    row("VI-Net's drop from the baseline, at most 5 / 1 / 0.5 / 0.5 points", [
        met_or_missed(acc["VI-Net", v] - base, -gap[v], f"{base - acc['VI-Net', v]:.2f}") for v in VARIANTS])
    need = {"tiny": 1.5, "small": 1.2, "medium": 1.05}
    row("throughput / full ResNet >= 1.5 / 1.2 / 1.05 / -", [
        met_or_missed(speed[f"VI-Net {v}"]["mean"] / full, need[v], f"{speed[f'VI-Net {v}']['mean'] / full:.2f}x")
        if v in need else f"{speed[f'VI-Net {v}']['mean'] / full:.2f}x" for v in VARIANTS])
    return "\n".join(lines)


def times(run: Path = RUN, last: int = 4) -> str:
    """Stage times of the run's last ``last`` pipeline invocations, one row each ('-' for
    a stage that invocation did not run)."""
    runs = read_json(run / "stage_times.json")["runs"]
    stages = list(STAGE_FILES)
    lines = ["| run started (UTC) | " + " | ".join(s[:2] for s in stages) + " | total |",
             "|---|" + "---|" * (len(stages) + 1)]
    for r in runs[-last:]:
        secs = r["stage_seconds"]
        lines.append(f"| {r['started_utc']} | "
                     + " | ".join(f"{secs[s] / 60:.1f} min" if s in secs else "-" for s in stages)
                     + f" | {sum(secs.values()) / 60:.1f} min |")
    return "\n".join(lines)


def stage_times(run: Path = PAPER_RUN) -> str:
    """Each stage's time from scratch (:func:`vinet_utils.common.results.stage_seconds`),
    and their sum."""
    latest = stage_seconds(run)
    stages = sorted(latest)
    return "\n".join(["| " + " | ".join(s[:2] for s in stages) + " | total |",
                      "|" + "---|" * (len(stages) + 1),
                      "| " + " | ".join(f"{latest[s] / 60:.1f} min" for s in stages)
                      + f" | {sum(latest.values()) / 60:.1f} min |"])


def flop_limits(run: Path = RUN) -> str:
    """Each model's measured speed-up beside its FLOP limit, from one interleaved run, and
    the range of the shares of their limits that the cuts reach."""
    rec = read_json(run / "06_throughput.json")
    m = rec["metrics"]
    speed, flops = m["throughput"], m["flops_per_image"]
    full, full_flops = speed["ResNet (full)"]["mean"], flops["ResNet (full)"]
    lines = [f"`{rec['params']['profile']}` profile, base `{run.name}`, {rec['device_name']}, "
             f"{rec['torch_threads']} threads, batch {rec['params']['eval_batch_size']}, "
             f"{rec['params']['repeats']} interleaved repetitions "
             f"(`{run.relative_to(REPO_ROOT)}/06_throughput.json`):", "",
             "| model | MFLOPs per image | images/s | speed-up | FLOP limit | share of the limit | form |",
             "|---|---|---|---|---|---|---|"]
    shares = []
    for name, r in speed.items():
        up, limit = r["mean"] / full, full_flops / flops[name]
        lines.append(f"| {name} | {flops[name] / 1e6:.1f} | {r['mean']:.0f} ± {r['std']:.0f} | "
                     f"{up:.2f}x | {limit:.2f}x | {100 * up / limit:.0f}% | {r.get('form', '-')} |")
        if name != "ResNet (full)":
            shares.append((100 * up / limit, name.removeprefix("VI-Net ")))
    low, high = min(shares), max(shares)
    lines += ["", f"The cuts reach between {low[0]:.0f}% ({low[1]}) and {high[0]:.0f}% "
                  f"({high[1]}) of their FLOP limits here."]
    return "\n".join(lines)


def breakdown(run: Path = RUN) -> str:
    """Where each VI-Net's time goes (``06_breakdown.json``, :func:`vinet_utils.experiments.throughput.breakdown`):
    the VI-Net's share of its FLOP limit beside its truncated base's alone, and the head's
    share of the time and of the FLOPs."""
    path = run / "06_breakdown.json"
    if not path.exists():
        return "No breakdown committed yet (`python -m vinet_utils.experiments.throughput breakdown`)."
    rec = read_json(path)
    lines = [f"`{runnable(rec['command'])}`, {rec['threads']} threads, every network in eager form, "
             f"{len(next(iter(rec['throughput'].values()))['runs'])} interleaved repetitions, "
             f"each head also timed alone on its base's maps of {rec['head_batches']} batches"
             + (f"; {rec['note']}" if rec.get("note") else "") + ":", "",
             "| cut | VI-Net: speed-up (share of its FLOP limit) | its base alone (share) "
             "| head: µs per image (share of the time) | head: share of the FLOPs |",
             "|---|---|---|---|---|"]
    for v, r in rec["cuts"].items():
        lines.append(f"| {v} | {r['speedup']:.2f}x ({r['share_of_limit']:.0%}) | "
                     f"{r['base_speedup']:.2f}x ({r['base_share_of_limit']:.0%}) | "
                     f"{r['head_us_per_image']:.1f} ({r['head_time_fraction']:.1%}) | "
                     f"{r['head_flop_fraction']:.1%} |")
    return "\n".join(lines)


def memory() -> str:
    """The memory estimate of stages 02-05 at full size, and the runs it rests on."""
    if not MEMORY.exists():
        return "No memory measurement committed yet (`python -m vinet_utils.experiments.memory`)."
    m = read_json(MEMORY)
    lines = ["| run | images (train + test) | latents (GiB, from the shapes) | "
             "peak host memory 02 / 03 / 04 / 05 (GiB, measured) |", "|---|---|---|---|"]
    for r in m["runs"]:
        lines.append(f"| width {r['width']}, {r['images']} images | {r['images']} | "
                     f"{r['latents_gb']:.2f} | "
                     + " / ".join(f"{v:.2f}" for v in r["peak_gb"].values()) + " |")
    lines.append("| *full size, read off a line per stage* | " + f"{m['full_images']} | "
                 f"{m['full_latents_gb']:.2f} | " + " / ".join(
                     f"{st['full_peak_gb']:.1f}" for st in m["stages"].values()) + " |")
    lines += ["", f"Per stage, a straight line through the two runs' peaks against their "
                  f"latents' size, read at the full {m['full_images']} images: stages 02-05 "
                  f"peak at about **{m['full_peak_gb']:.1f} GiB** (stage "
                  f"{m['largest_stage'][:2]}), plus {m['extraction_working_gb']:.2f} GiB while "
                  f"stage 02 extracts latents on a CPU (`results/benchmarks/memory.json`; runs "
                  f"made with `{m.get('runs_made_with') or 'the pipeline'}`)."]
    return "\n".join(lines)


def under_way(m: dict) -> str:
    """A sentence counting the trainings a budget curve (``budget.json``'s metrics
    ``m``) holds of each budget it has begun but not finished, or "" when none: those
    rows are kept for a rerun to continue from, not summarised."""
    from vinet_utils.report.evidence import finished_cuts

    done, want = finished_cuts(m), len(m["heads"]) * m["seeds"] * len(m["variants"])
    begun = [(b, sum(r["budget_epochs"] == b for r in m["rows"])) for b in m["budgets"]
             if len(done.get(b, ())) < len(m["variants"])]
    parts = [f"{n} of the {want} trainings of {b} epochs" for b, n in begun if n]
    return (f" Under way: {'; '.join(parts)} are done (`make budget` continues from them)."
            if parts else "")


def budget_curve(run: Path = RUN) -> str:
    """The budget curve (``budget.json``, :mod:`vinet_utils.experiments.budget`): per cut and head,
    the test accuracy frozen and after each end-to-end budget, with its 95% t interval
    over seeds, and the settings each head trained with."""
    from vinet_utils.common.paper import paper_drop

    path = run / "budget.json"
    if not path.exists():
        return "No budget curve committed yet (`make budget`)."
    rec = read_json(path)
    m = rec["metrics"]
    mean = {(s["variant"], s["head"], s["budget_epochs"]): s for s in m["summary"]}
    cols = ["frozen" if b == 0 else f"{b} epochs" for b in m["budgets"]]
    setting = (rec["params"]["dataset"], rec["params"]["arch"])
    lines = [f"`{runnable(m['command'])}` on the `{rec['params']['profile']}` run "
             f"(full network {m['baseline_test_acc']:.2f}%), "
             f"{m['seeds']} seeds, {m['trainings_time_s'] / 3600:.1f} h of training on "
             f"{rec['device_name']}; test accuracy (%) ± its 95% t interval over seeds, '-' where "
             f"that budget has not finished.{under_way(m)}", "",
             "| cut | head | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for v in m["variants"]:
        for h in m["heads"]:
            cells = []
            for b in m["budgets"]:
                s = mean.get((v, h, b))
                hw = "" if s is None or s["half_width"] is None else f" ± {s['half_width']:.2f}"
                cells.append("-" if s is None else f"{s['mean']:.2f}{hw}")
            lines.append(f"| {v} | {h} | " + " | ".join(cells) + " |")
        drop = paper_drop(*setting, v)
        if drop is not None:
            lines.append(f"| {v} | *the full network minus the paper's VI-Net drop* | "
                         f"{m['baseline_test_acc'] - drop:.2f} |"
                         + " |" * (len(cols) - 1))
    drops = []
    for v in m["variants"]:
        done = [b for b in m["budgets"] if all((v, h, b) in mean for h in m["heads"])]
        if not done:
            continue
        b, drop = done[-1], paper_drop(*setting, v)
        each = ", ".join(f"{h} {m['baseline_test_acc'] - mean[v, h, b]['mean']:.2f}"
                         for h in m["heads"])
        theirs = "" if drop is None else f" (the paper's VI-Net: {drop:.2f})"
        drops.append(f"{v}, {'frozen' if b == 0 else f'{b} epochs end to end'}: {each}{theirs}")
    lines += ["", "Each head's drop from the full network at the largest budget every head has "
                  "finished at that cut, in points: " + "; ".join(drops) + "."]
    other = m.get("e2e_settings_from")
    chosen = ("as its validation search chose them" if other is None else
              f"frozen as the `{rec['params']['profile']}` profile trains it, end to end as "
              f"the `{other}` profile's validation search chose for that head (this run had "
              f"no end-to-end search of its own)")
    lines += ["", f"Each head's settings, {chosen} "
                  "(`finetune_lr` frozen; `unfreeze_*` end to end, the base's learning rate "
                  "being `unfreeze_lr` times `unfreeze_base_lr_scale`):", ""]
    for h, s in m["settings"].items():
        lines.append(f"- {h}: " + ", ".join(f"`{k}={v}`" for k, v in s.items()
                                             if k != "train_projection" or h == "VI-Net"))
    return "\n".join(lines)
