"""Host memory of stages 02-05: what their cached latents need, computed from the cut
shapes, and what scaled-down runs measured, carried to the full dataset.

    python -m vinet_utils.experiments.memory RUN_DIR RUN_DIR [--out results/benchmarks/memory.json]

Each run folder is a finished run of notebooks 01-05 (with papermill, so that each
stage ran in a process of its own and its results file holds that stage's peak).
Where a run's latents were already cached, stage 02's peak leaves out the extraction's
own working memory (a batch through the base), which is measured here apart.
Stages 02-05 keep the float16 latents of every cut in memory, so their peak is a
fixed part (python, torch, the images, the model) plus a part that grows with the
latents; a straight line through the measured runs, against their latents' size,
is read at the full dataset's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vinet_utils.method.latents import latent_bytes
from vinet_utils.common.results import REPO_ROOT, environment, read_json, write_json

STAGES = ("02_latents", "03_ideals", "04_vinet", "05_ablations")
FULL_IMAGES = {"cifar10": 60_000, "cifar100": 60_000, "fashionmnist": 70_000}


def measured(run: Path) -> dict:
    """One run's images, latents (GiB, from the shapes) and peak host memory per stage."""
    base = read_json(run / "01_baseline.json")
    p = base["params"]
    n = base["metrics"]["n_train"] + base["metrics"]["n_test"]
    peaks = {s: read_json(run / f"{s}.json").get("peak_host_memory_gb") for s in STAGES
             if (run / f"{s}.json").exists()}
    return {"run": run.name, "images": n, "width": p["width"], "arch": p["arch"],
            "dataset": p["dataset"],
            "latents_gb": latent_bytes(p["arch"], p["width"], read_json(
                run / "02_latents.json")["params"]["variants"], n) / 2**30,
            "peak_gb": peaks, "max_peak_gb": max(v for v in peaks.values() if v is not None)}


def extraction_working_gb(arch: str = "resnet18", width: float = 1.0, cut: str = "tiny",
                          n: int = 1000) -> float:
    """Host memory that extracting latents needs beyond the latents themselves (one
    batch through the truncated base on the CPU), measured on ``n`` random images as
    the rise of this process's peak resident memory."""
    import torch

    from vinet_utils.method import latents as L
    from vinet_utils.network import models as M
    from vinet_utils.common.results import peak_host_memory_gb

    base = M.truncate(M.build(arch, 10, 3, width).eval(), cut)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
    before = peak_host_memory_gb()
    z = L.extract(base, x, (0.5,) * 3, (0.25,) * 3, progress=False)
    return peak_host_memory_gb() - before - z.numel() * z.element_size() / 2**30


def summarize(runs: list[Path]) -> dict:
    """Per stage, the line ``peak = fixed + slope * latents`` through the smallest and the
    largest run, read at the full dataset of the same arch, width and cuts; the estimate
    is the largest stage's."""
    rows = sorted((measured(Path(r)) for r in runs), key=lambda r: r["images"])
    if len(rows) < 2 or len({(r["arch"], r["width"], r["dataset"]) for r in rows}) != 1:
        raise SystemExit("give at least two finished runs of one arch, width and dataset")
    small, large = rows[0], rows[-1]
    full = FULL_IMAGES[small["dataset"]]
    full_latents = small["latents_gb"] * full / small["images"]
    stages = {}
    for stage in STAGES:
        (x0, y0), (x1, y1) = [(r["latents_gb"], r["peak_gb"][stage]) for r in (small, large)]
        slope = (y1 - y0) / (x1 - x0)
        stages[stage] = {"fixed_gb": y0 - slope * x0, "slope": slope,
                         "full_peak_gb": y0 + slope * (full_latents - x0)}
    top = max(stages, key=lambda k: stages[k]["full_peak_gb"])
    return {"runs": rows, "stages": stages, "largest_stage": top, "full_images": full,
            "full_latents_gb": full_latents, "full_peak_gb": stages[top]["full_peak_gb"],
            "made_with": environment("cpu")}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "benchmarks" / "memory.json")
    ap.add_argument("--runs-made-with", default="", help="how the run folders were made")
    a = ap.parse_args(argv)
    out = summarize(a.runs)
    out["extraction_working_gb"] = extraction_working_gb(out["runs"][0]["arch"],
                                                         out["runs"][0]["width"])
    out["command"] = "python -m vinet_utils.experiments.memory " + " ".join(r.name for r in a.runs)
    out["runs_made_with"] = a.runs_made_with
    write_json(a.out, out)
    print(f"peak host memory of stages 02-05 at {out['full_images']} images: about "
          f"{out['full_peak_gb']:.1f} GiB ({out['full_latents_gb']:.1f} GiB of latents); "
          f"written to {a.out}")


if __name__ == "__main__":
    sys.exit(main())
