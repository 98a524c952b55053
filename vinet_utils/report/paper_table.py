"""The paper-style table (docs/method.md §7), built from a run's results files alone.

Our numbers come from ``01_baseline.json``, ``04_vinet.json``, ``05_ablations.json``
and ``06_throughput.json``; the paper's published numbers stand beside them, and both
get the throughput ratio to their own baseline. "Acc" is the paper's protocol as we
read it (head fine-tuned, base frozen), the mean over the run's seeds with their
standard deviation beside it: notebook 05's VI-Net where it ran (the reading its rivals
are compared with), else notebook 04's. "Best without poly" is the best head at the same cut
that has no polynomial layer (linear, projection + linear, MLP), trained as notebook 05 did:
the number VI-Net has to beat. End-to-end fine-tuning, when it was run, has columns
of its own. The header says what was run (profile, dataset, width, epochs,
device), so a scaled-down run is never mistaken for the paper's setting.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vinet_utils.common.paper import paper_row
from vinet_utils.common.results import read_json

VARIANTS = ("tiny", "small", "medium", "large")
#: The comparison heads without a polynomial layer (notebook 05), on the run's pool.
WITHOUT_POLY = ("linear", "projection + linear", "MLP")


def heads_without_poly(rows: list[dict], variant: str, protocol: str, pool: str) -> list[dict]:
    """Notebook 05's rows of the heads without polynomials at ``variant`` and ``pool``."""
    return [r for r in rows if r["variant"] == variant and r.get("protocol", "frozen") == protocol
            and r["pool"] == pool and r["acc"] is not None
            and (r["head"] in WITHOUT_POLY or r["head"] == f"linear ({pool})")]


def best_without_poly(rows: list[dict], variant: str, protocol: str, pool: str) -> dict | None:
    """The most accurate of :func:`heads_without_poly`, or None."""
    found = heads_without_poly(rows, variant, protocol, pool)
    return max(found, key=lambda r: r["acc"]) if found else None


def head_row(rows: list[dict], variant: str, head: str, protocol: str) -> dict | None:
    """Notebook 05's row of ``head`` at ``variant`` under ``protocol``, or None."""
    return next((r for r in rows if r["variant"] == variant and r["head"] == head
                 and r.get("protocol", "frozen") == protocol), None)


def _frozen_acc(row: dict | None) -> dict:
    """Notebook 05's frozen VI-Net accuracy where it ran, to replace notebook 04's: one
    frozen reading per head and cut, the one its rivals are compared with."""
    return {k: row[k] for k in ("acc", "acc_std", "acc_per_seed") if k in row} if row else {}


def _pct(x) -> str:
    return "-" if x is None or pd.isna(x) else f"{x:.2f}"


def _m(n) -> str:
    return "-" if n is None or pd.isna(n) else f"{n / 1e6:.3f}M" if n < 1e6 else f"{n / 1e6:.2f}M"


def build(run_dir: str | Path) -> tuple[pd.DataFrame, str]:
    """``(table, header)`` for the run in ``run_dir``."""
    run_dir = Path(run_dir)
    base = read_json(run_dir / "01_baseline.json")
    vi = {r["variant"]: r for r in read_json(run_dir / "04_vinet.json")["metrics"]["variants"]}
    tp = read_json(run_dir / "06_throughput.json")
    abl = (read_json(run_dir / "05_ablations.json")["metrics"]["rows"]
           if (run_dir / "05_ablations.json").exists() else [])
    speed = tp["metrics"]["throughput"]
    flops = tp["metrics"].get("flops_per_image")  # runs before it was recorded have none
    limits = {k: flops["ResNet (full)"] / n for k, n in flops.items()} if flops else {}
    p = base["params"]
    dataset, arch = p["dataset"], p["arch"]
    full = next(r["base_params"] for r in base["cuts"] if r["variant"] == "full")
    name = "ResNet18" if arch == "resnet18" else "ResNet34"
    tag = "VI-Net18" if arch == "resnet18" else "VI-Net34"
    rows = []
    for v in [v for v in VARIANTS if v in vi] + ["baseline"]:
        r = vi.get(v)
        r = {**r, **_frozen_acc(head_row(abl, v, "VI-Net", "frozen"))} if r else None
        key = f"VI-Net {v}" if r else "ResNet (full)"
        other = best_without_poly(abl, v, "frozen", r.get("pool", "flatten")) if r else None
        e2e = head_row(abl, v, "VI-Net", "end to end") if r else None
        other_e2e = best_without_poly(abl, v, "end to end", r.get("pool", "flatten")) if r else None
        ours = {"Model": f"{tag}-{v.capitalize()}" if r else name,
                "Total Params": r["total_params"] if r else full,
                "Base Params": r["base_params"] if r else full,
                "Poly Params": r["poly_params"] if r else None,
                "Acc (%)": r["acc"] if r else base["metrics"]["test_acc"],
                "Acc std": r.get("acc_std") if r else None,
                "Seeds": len(r.get("acc_per_seed", [])) if r else None,
                "Best without poly (%)": other["acc"] if other else None,
                "Best without poly": other["head"] if other else None,
                "Acc end to end (%)": e2e["acc"] if e2e else None,
                "Best without poly end to end (%)": other_e2e["acc"] if other_e2e else None,
                "Throughput (img/s)": speed[key]["mean"] if key in speed else None,
                "Throughput std": speed[key]["std"] if key in speed else None,
                "FLOP limit": limits.get(key),
                "Form": speed[key].get("form") if key in speed else None}
        paper = paper_row(dataset, arch, v) or {}
        ours.update({"Paper Total": paper.get("total_M"), "Paper Acc (%)": paper.get("acc"),
                     "Paper Throughput": paper.get("throughput")})
        rows.append(ours)
    df = pd.DataFrame(rows)
    base_row = df.iloc[-1]
    df["Speed-up"] = df["Throughput (img/s)"] / base_row["Throughput (img/s)"]
    df["Paper Speed-up"] = df["Paper Throughput"] / base_row["Paper Throughput"]
    df["Acc vs baseline"] = df["Acc (%)"] - base_row["Acc (%)"]
    header = (f"{dataset} / {arch} at width {p['width']}, {p['epochs']} training epochs, "
              f"profile '{p['profile']}', throughput on {tp['device_name']} "
              f"({tp['torch_threads']} threads, batch {tp['params'].get('eval_batch_size', 256)}, "
              f"torch {tp['torch_version']}{', compiled' if tp['params'].get('compile') else ''})")
    smaller = scaled_down(base, vi)
    if smaller or p["profile"] != "paper":
        header += (". Scaled down: " + "; ".join(smaller or ["the " + p["profile"] + " profile"])
                   + ". Not the paper's setting")
    return df, header


def scaled_down(base: dict, vinet: dict) -> list[str]:
    """Every way the run in these records is smaller than the paper's setting: width,
    training and test subsets, and fits on fewer points than a class has."""
    p, m = base["params"], base["metrics"]
    out = [f"width {p['width']} (the paper's is 1.0)"] if p["width"] != 1.0 else []
    if p.get("n_train") is not None:
        out.append(f"{m['n_train']} training images")
    if p.get("n_test") is not None:
        out.append(f"{m['n_test']} test images")
    return out


def to_markdown(df: pd.DataFrame, header: str) -> str:
    """The table as Markdown: ours, then the paper's numbers beside them."""
    lines = [f"**{header}**", "",
             "| Model | Total Params | Base Params | Poly Params | Acc (%) | Best without poly (%) "
             "| Acc end to end (%) | Best without poly, end to end (%) "
             "| Throughput (img/s) | Speed-up | FLOP limit | Paper: Total | Paper: Acc (%) | Paper: Speed-up |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in df.iterrows():
        tput = ("-" if pd.isna(r["Throughput (img/s)"])
                else f"{r['Throughput (img/s)']:.0f} ± {r['Throughput std']:.0f}")
        paper_tot = "-" if pd.isna(r["Paper Total"]) else f"{r['Paper Total']:.2f}M"
        paper_acc = "-" if pd.isna(r["Paper Acc (%)"]) else f"{r['Paper Acc (%)']:.2f}"
        paper_su = "-" if pd.isna(r["Paper Speed-up"]) else f"{r['Paper Speed-up']:.2f}x"
        su = "-" if pd.isna(r["Speed-up"]) else f"{r['Speed-up']:.2f}x"
        limit = "-" if pd.isna(r["FLOP limit"]) else (
            f"{r['FLOP limit']:.2f}x ({100 * r['Speed-up'] / r['FLOP limit']:.0f}%)")
        acc = f"{r['Acc (%)']:.2f}" + ("" if pd.isna(r["Acc std"]) else f" ± {r['Acc std']:.2f}")
        cells = [_pct(r["Best without poly (%)"]) + ("" if pd.isna(r["Best without poly"])
                                                     else f" ({r['Best without poly']})"),
                 _pct(r["Acc end to end (%)"]), _pct(r["Best without poly end to end (%)"])]
        lines.append(f"| {r['Model']} | {_m(r['Total Params'])} | {_m(r['Base Params'])} | "
                     f"{_m(r['Poly Params'])} | {acc} | {' | '.join(cells)} | {tput} | {su} | {limit} | "
                     f"{paper_tot} | {paper_acc} | {paper_su} |")
    seeds = df["Seeds"].dropna()
    if len(seeds):
        lines += ["", f"Acc: head fine-tuned with the base frozen (the paper's protocol as we "
                      f"read it), mean ± std over {int(seeds.iloc[0])} seeds (notebook 05's VI-Net "
                      f"where it ran, beside its rivals; else notebook 04's). Best without poly: "
                      f"the best of the linear, projection + linear and MLP heads at the same cut, "
                      f"trained for as many epochs on the same latents (notebook 05; where "
                      f"the profile sets rival_settings, each at the settings its own "
                      f"validation search chose). End to end: the trained heads "
                      f"fine-tuned further with the base unfrozen, every head with the same "
                      f"budget; '-' where that was not run. FLOP limit: the full ResNet's "
                      f"FLOPs per image over the model's, the speed-up it would reach if every "
                      f"layer ran at the same rate (in brackets, the share of it reached)."]
    forms = df["Form"].dropna() if "Form" in df else []
    if len(forms):
        lines += ["", "Throughput: every network prepared for inference alike (BatchNorm folded); "
                      "each in the faster of the forms it was timed in: "
                      + ", ".join(f"{m} {f}" for m, f in zip(df["Model"], df["Form"]) if f) + "."]
    return "\n".join(lines) + "\n"


def write(run_dir: str | Path) -> tuple[Path, Path]:
    """Write ``table.md`` and ``table.csv`` into ``run_dir``; returns their paths."""
    run_dir = Path(run_dir)
    df, header = build(run_dir)
    md, csv = run_dir / "table.md", run_dir / "table.csv"
    md.write_text(to_markdown(df, header))
    df.to_csv(csv, index=False, float_format="%.4g")
    return md, csv
