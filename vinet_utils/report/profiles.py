"""The README's ``where`` block and docs/profiles.md's ``profiles`` block: the
profiles, from ``params/*.yaml``."""

from __future__ import annotations


from vinet_utils.common.results import REPO_ROOT, read_json, stage_seconds
from vinet_utils.report.common import DEFAULT_ARCH, DEFAULT_DATA, MEMORY, PROFILES, VARIANTS, profile_values


def where() -> str:
    """The profiles in one small table: data, network, and where the committed run of
    each ran and how long its stages took from scratch (each stage's longest run: a
    rerun that reuses its caches is shorter; a run may span several pipeline
    invocations, and one may not have every stage yet)."""
    from vinet_utils.method.latents import latent_bytes

    mem = read_json(MEMORY) if MEMORY.exists() else None
    lines = ["| profile | data (train / test images) | network | committed run ran on | "
             "stages 01-06 from scratch | host memory, stages 02-05 |",
             "|---|---|---|---|---|---|"]
    for name in PROFILES:
        p = profile_values(name)
        n = lambda k: "all" if p.get(k) is None else str(p[k])  # noqa: E731
        run = REPO_ROOT / "results" / name / f"{p['dataset']}-{p['arch']}"
        if (run / "stage_times.json").exists():
            first = stage_seconds(run)
            on = read_json(run / "01_baseline.json")["device_name"]
            took = f"{sum(first.values()) / 60:.1f} min"
            if len(first) < 6:
                took += f" (stages {', '.join(sorted(s[:2] for s in first))} so far)"
        elif name == "smoke":
            on, took = "no committed run (the notebooks' defaults)", "a few minutes on any CPU"
        else:
            on, took = "no committed run yet", "-"
        images = (p.get("n_train") or 50_000) + (p.get("n_test") or 10_000)
        cuts = list(p.get("variants", VARIANTS)) + list(p.get("ablation_cuts", []))
        gib = latent_bytes(p["arch"], p["width"], cuts, images) / 2**30
        memory = f"{gib:.2f} GiB of latents"
        if (mem and mem["runs"][0]["width"] == p["width"] and p.get("n_train") is None
                and p["arch"] == "resnet18"):
            memory = f"about {mem['full_peak_gb']:.0f} GiB ({gib:.1f} GiB of latents)"
        held = f", {p['holdout_frac']:.0%} held out" if p.get("holdout_frac") else ""
        lines.append(f"| `{name}` | {DEFAULT_DATA[p['dataset']]} ({n('n_train')}{held} / {n('n_test')}) | "
                     f"{DEFAULT_ARCH[p['arch']]}, width {p['width']}, {p['epochs']} epochs | {on} | "
                     f"{took} | {memory} |")
    return "\n".join(lines)


def profiles() -> str:
    """Every profile parameter side by side, read from ``params/*.yaml``."""
    prof = {n: profile_values(n) for n in PROFILES}
    keys = list(dict.fromkeys(k for n in ("paper", *PROFILES) for k in prof[n] if k != "profile"))
    lines = ["| parameter | " + " | ".join(PROFILES) + " |", "|---|" + "---|" * len(PROFILES)]

    def show(v):
        if v is None:  # n_train, n_test, throughput_batches: the whole split
            return "all"
        if isinstance(v, list):
            return ", ".join(map(str, v))
        if isinstance(v, dict):  # rival_settings: head: setting=value
            return "; ".join(f"{h}: " + ", ".join(f"{k}={show(x)}" for k, x in s.items())
                             for h, s in v.items())
        return str(v).lower() if isinstance(v, bool) else str(v)

    for k in keys:
        lines.append(f"| `{k}` | " + " | ".join(show(prof[n].get(k, "-")) for n in PROFILES) + " |")
    return "\n".join(lines)
