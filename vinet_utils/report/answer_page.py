"""The README's ``answer`` block: the paper's claim judged reading by reading by one rule
(docs/method.md §7, "The answer"), from :func:`vinet_utils.report.evidence.claims`.

A reading is one way of training the heads: frozen, or end to end at the largest budget
at the 2-epoch search's settings, under the reference protocol, or at each head's
best-known setting. At each cut a reading *holds* the claim when (a) is within (against
the full network as trained, and against the control trained on as long where it has
run), VI-Net is ahead of the linear head (b) and not behind the comparator (c); it
*fails* when (a) is further or VI-Net is behind either head; otherwise it is *open*.
"""

from __future__ import annotations

from pathlib import Path

from vinet_utils.report.common import C100_RUN, PAPER_RUN, RUN, listed
from vinet_utils.report.evidence import epochs_of

#: How the answer names each reading, by the verdict's protocol label (epochs filled in).
TITLES = {"frozen": "Width 0.25 (the `cpu` run), base frozen",
          "end to end": "End to end, {n} epochs, at the settings a 2-epoch search at tiny chose",
          "reference": "End to end, {n} epochs, under the reference protocol",
          "best-known": "End to end, {n} epochs, each head at its best-known setting"}
METHOD = "[method §7](docs/method.md#7-evaluation-comparison-heads-protocols-throughput-the-table)"
CLAIMS = (("(a)", "close"), ("(b)", "vs_linear"), ("(c)", "vs_comparator"))
A_CLASS = {True: "within", False: "further", None: "undecided"}


def holds(row: dict) -> bool | None:
    """Whether one cut of one reading (a row of :func:`~vinet_utils.report.evidence.claims`)
    holds the claim (True), fails it (False) or leaves it open (None)."""
    a = [row["close"]] + ([row["control"]["close"]] if row.get("control") else [])
    b, c = ((row[k] or {}).get("verdict") for k in ("vs_linear", "vs_comparator"))
    if False in a or "behind" in (b, c):
        return False
    if all(x is True for x in a) and b == "ahead" and c in ("ahead", "level"):
        return True
    return None


def grouped(per_cut: dict, words: dict, every: str = "at every cut") -> str:
    """``{cut: value}`` in words, cuts grouped by value: "within at large, further at tiny
    and small"; "{word} at every cut" where all agree."""
    groups: dict = {}
    for cut, value in per_cut.items():
        groups.setdefault(words[value], []).append(cut)
    if len(groups) == 1 and len(per_cut) > 1 and every:
        return f"{next(iter(groups))} {every}"
    return ", ".join(f"{w} at {listed(cs)}" for w, cs in groups.items())


def phrase(per_cut: dict) -> str:
    """The claim over the cuts of a reading, cut by cut: "reproduced at tiny and small",
    "not reproduced at tiny, open at small"."""
    return grouped(per_cut, {True: "reproduced", False: "not reproduced", None: "open"},
                   every="")


def readings(c: dict) -> dict:
    """``{protocol: {cut: row}}`` for the frozen rows and the end-to-end rows at the
    largest budget any end-to-end reading has, in the order of :data:`TITLES`."""
    by: dict = {}
    for r in c["rows"]:
        by.setdefault(r["protocol"], {})[r["variant"]] = r
    top = max((epochs_of(p) for p in by), default=0)
    order = ["frozen"] + [f"{k}, {top} epochs" for k in list(TITLES)[1:]]
    return {p: by[p] for p in order if p in by}


def _title(protocol: str) -> str:
    return TITLES[protocol.partition(", ")[0]].format(n=epochs_of(protocol))


def reading_line(protocol: str, rows: dict, title: str | None = None) -> str:
    """One reading (``{cut: row}`` of :func:`readings`) as a bullet: its seeds, each
    claim's class cut by cut, and the claim per cut (:func:`holds`)."""
    seeds = sorted({r["seeds"] for r in rows.values()})
    parts = [f"(a) {grouped({k: r['close'] for k, r in rows.items()}, A_CLASS)}"]
    if not any(r[key] for r in rows.values() for _, key in CLAIMS[1:]):
        parts.append("(b) and (c) not measured")
    for name, key in CLAIMS[1:] if len(parts) == 1 else ():
        verdicts = {k: (r[key] or {}).get("verdict", "not measured") for k, r in rows.items()}
        parts.append(f"{name} {grouped(verdicts, {v: v for v in verdicts.values()})}")
    control = {k: r["control"]["close"] for k, r in rows.items() if r.get("control")}
    if control:
        parts.append(f"(a) against the control {grouped(control, A_CLASS)}")
    return (f"- **{title or _title(protocol)}** ({'/'.join(map(str, seeds))} seeds): " + "; ".join(parts)
            + f". The claim: {phrase({k: holds(r) for k, r in rows.items()})}.")


def answer(run: Path = RUN, paper_run: Path = PAPER_RUN, c100_run: Path = C100_RUN) -> str:
    """The first screen's answer: the claim with the base frozen and end to end, then one
    line per reading with each claim's class per cut, the paper's width (``paper_run``)
    frozen, and the paper's ablation setting (``c100_run``), as far as each has run."""
    from vinet_utils.report import evidence as V
    from vinet_utils.report.claims import size_and_speed

    if not (run / "05_ablations.json").exists():
        return "*The cpu run has no notebook 05 results yet: `make reproduce PROFILE=cpu`.*"
    c = V.claims(run)
    landed = c["landed"]
    reads = {p: rows for p, rows in readings(c).items()  # once landed, no searched reading
             if not (landed and p.startswith("end to end,"))}
    e2e = [p for p in reads if p != "frozen"]
    top = e2e[0].split(", ")[1] if e2e else None
    frozen = {k: holds(r) for k, r in reads.get("frozen", {}).items()}
    lines = []
    head = (f"**Our answer{'' if landed else ' so far'}, on the `cpu` run: with the base frozen, the claim is "
            f"{phrase(frozen)}")
    if landed and {f"reference, {top}", f"best-known, {top}"} <= set(reads):
        ref_rows, best_rows = reads[f"reference, {top}"], reads[f"best-known, {top}"]
        pairs = {k: (holds(r), holds(best_rows[k])) for k, r in ref_rows.items() if k in best_rows}
        both = {k: a if a == b else None for k, (a, b) in pairs.items()}
        head += (f"; end to end after {top}, read under the reference protocol and at each "
                 f"head's best-known setting, it is {phrase(both)}.**")
        differ = [k for k, (a, b) in pairs.items() if a != b]
        head += (f" The two readings differ at {listed(differ)}, and a cut where they differ is open."
                 if differ else " The two readings agree at every cut.")
    elif reads.get(f"end to end, {top}"):
        searched = reads[f"end to end, {top}"]
        head += (f"; end to end after {top}, at the settings a search chose for 2 epochs at tiny, "
                 f"it is {phrase({k: holds(r) for k, r in searched.items()})}.** A reference protocol "
                 f"that trains every head alike, fixed in advance ({METHOD}), is under way (`make "
                 "reference`) and will decide the end-to-end answer.")
    else:
        head += ".**"
    speed = size_and_speed(run)
    if speed and all(s < 1 and x > 1 for s, x, _ in speed.values()):
        head += " On the `cpu` run VI-Net is smaller and faster than its full network at every cut."
    lines.append(head)
    pending = e2e and not any(r.get("control") for p in e2e for r in reads[p].values())
    comp = c["comparator"] or "comparator"
    lines += ["", "A cut holds the claim where VI-Net's drop from the full network is within "
              f"{c['close']:g} point "
              f"of the paper's (a), VI-Net is ahead of the linear head (b) and not behind the {comp} "
              f"of its size (c); it fails where (a) is further or VI-Net behind either ({METHOD})"
              + ("; end to end, (a) is against the full network as trained until the control has "
                 "run." if pending else "."), ""]
    lines += [reading_line(p, rows) for p, rows in reads.items()]
    if (paper_run / "04_vinet.json").exists():
        wide = readings(V.claims(paper_run)).get("frozen")
        if wide:
            lines.append(reading_line("frozen", wide, "Width 1.0 (the `paper` run), base frozen"))
    return "\n".join(lines + ablation_setting(c100_run))


#: docs/results.md's section on the CIFAR-100 run, as the README links it.
C100_SECTION = "docs/results.md#the-cpu-cifar100-run-cifar-100-resnet-34-at-width-025-2-cpu-cores"


def ablation_setting(run: Path = C100_RUN) -> list[str]:
    """The answer's lines on the paper's ablation setting (CIFAR-100 / ResNet-34): one per
    reading by the same rule, base frozen and end to end as far as each has run, each cut
    named by the share of layers it removes ((a) reads the paper's table at its four cuts,
    its ablation figure at the others); before notebook 05, what runs next."""
    from vinet_utils.common.results import read_json
    from vinet_utils.report import evidence as V

    if not (run / "01_baseline.json").exists():
        return []
    base = read_json(run / "01_baseline.json")
    held = base["params"].get("holdout_frac")
    name = (f"CIFAR-100 / ResNet-34 at width {base['params']['width']}]({C100_SECTION}) (the paper's "
            f"ablation setting, base {base['metrics']['test_acc']:.2f}%"
            + (f", {held:.0%} of each class held out" if held else "") + ")")
    if not (run / "05_ablations.json").exists():
        return [f"- **[{name}**: being remade by these rules; its search, its ablation at 8 cuts and "
                "its end-to-end curve run next."]
    c = V.claims(run)
    removed = V.removed_pct(run)
    lines = []
    for protocol, rows in readings(c).items():
        order = sorted(rows, key=lambda k: removed.get(k, 100))
        by_share = {f"{removed[k]:.0f}%" if k in removed else k: rows[k] for k in order}
        title = (f"[{name}, base frozen, cuts by share of layers removed" if protocol == "frozen"
                 else "CIFAR-100, " + _title(protocol).replace("End to end", "end to end", 1))
        lines.append(reading_line(protocol, by_share, title))
    return lines
