"""Run the numbered notebooks headlessly with papermill: ``make reproduce`` calls this.

    python -m vinet_utils.pipeline --profile cpu --dataset cifar10 --arch resnet18
    python -m vinet_utils.pipeline --profile smoke --set seeds=3 --set pool=gap
    python -m vinet_utils.pipeline --profile cpu --set epochs=45 --set run_name=w0.25-e45

Each stage is executed with ``-f params/<profile>.yaml`` plus the dataset/arch
overrides and saved, executed, into the run's results folder. Stages reuse their own
finished work from that folder (trained weights, fits, measurements), so a rerun
re-executes the notebooks quickly without retraining, and an interrupted stage
resumes from its checkpoint.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import yaml

from . import params as P
from .results import REPO_ROOT, read_json, write_json

STAGES = ("01_baseline_training", "02_latent_features", "03_vanishing_ideals",
          "04_vinet_construction", "05_evaluation_ablations", "06_throughput_table")
NOTEBOOKS = REPO_ROOT / "notebooks"
PROFILES = REPO_ROOT / "params"


def strip_machine_paths(path: Path) -> None:
    """Record papermill's input and output paths relative to the repository, so an
    executed notebook carries no machine-specific paths."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if meta.get(key):
            meta[key] = P.shown(meta[key])
    nbformat.write(nb, path)


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES.glob("*.yaml"))


def load_profile(profile: str) -> dict:
    """The parameters of ``params/<profile>.yaml``, validated."""
    path = PROFILES / f"{profile}.yaml"
    if not path.exists():
        raise SystemExit(f"PROFILE must be one of {', '.join(available_profiles())} "
                         f"(got {profile!r}: no file {P.shown(path)})")
    values = yaml.safe_load(path.read_text()) or {}
    try:
        P.validate(**values)
    except ValueError as err:
        raise SystemExit(f"{P.shown(path)}: {err}") from None
    return values


def resolve_profile(profile: str) -> str:
    if profile in ("", "auto"):
        import torch
        profile = "paper" if torch.cuda.is_available() else "cpu"
        print(f"PROFILE not given: using '{profile}' "
              f"({'CUDA is available' if profile == 'paper' else 'no CUDA device'})")
    return profile


def parse_overrides(items: list[str]) -> dict:
    """``["name=value", ...]`` -> ``{name: value}``, each value read as YAML."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--set takes name=value (got {item!r})")
        out[name.strip()] = yaml.safe_load(value)
    return out


def run(profile: str, dataset: str, arch: str, stages=STAGES, results_dir=None,
        overrides: dict | None = None) -> Path:
    """Validate everything, then execute ``stages`` in order; returns the run folder.

    ``overrides`` replace single parameters of the profile (``--set name=value``)."""
    import papermill as pm

    os.environ["VINET_PLAIN_PROGRESS"] = "1"  # the kernel inherits it: text bars in saved notebooks
    profile = resolve_profile(profile)
    parameters = load_profile(profile)
    parameters.update(overrides or {})
    parameters.update(profile=profile, dataset=dataset, arch=arch)
    if results_dir:
        parameters["results_dir"] = str(Path(results_dir).resolve())
    try:
        P.validate(**parameters)
        unknown = [s for s in stages if s not in STAGES]
        if unknown:
            raise ValueError(f"stages must be drawn from {', '.join(STAGES)} (got {unknown})")
    except ValueError as err:
        raise SystemExit(str(err)) from None
    declared = {s: set(pm.inspect_notebook(NOTEBOOKS / f"{s}.ipynb")) for s in STAGES}
    known = set().union(*declared.values())
    unused = sorted(set(parameters) - known)
    if unused:
        raise SystemExit(f"params/{profile}.yaml sets {', '.join(unused)}, which no notebook "
                         f"declares; known: {', '.join(sorted(known))}")
    out = P.run_dir(parameters.get("results_dir"), profile, dataset, arch,
                    parameters.get("run_name"))
    try:
        P.check_same_base(out, parameters)  # a different base stops here, not in a notebook
    except ValueError as err:
        raise SystemExit(str(err)) from None
    timing_path = out / "stage_times.json"
    history = read_json(timing_path).get("runs", []) if timing_path.exists() else []
    timings = {}
    history.append({"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "stage_seconds": timings})
    for stage in stages:
        print(f"== {stage}  [{profile} / {dataset} / {arch}]", flush=True)
        t0 = time.perf_counter()
        pm.execute_notebook(NOTEBOOKS / f"{stage}.ipynb", out / f"{stage}.ipynb",
                            parameters={k: v for k, v in parameters.items() if k in declared[stage]},
                            cwd=str(NOTEBOOKS), progress_bar=False, log_output=True)
        strip_machine_paths(out / f"{stage}.ipynb")
        timings[stage] = round(time.perf_counter() - t0, 1)
        write_json(timing_path, {"runs": history})
        print(f"   done in {timings[stage] / 60:.1f} min -> {P.shown(out / (stage + '.ipynb'))}")
    return out


def table_only(profile: str, dataset: str, arch: str, results_dir=None,
               run_name: str | None = None) -> Path:
    """Rebuild ``table.md``/``table.csv`` from a finished run's results files."""
    from . import table

    profile = resolve_profile(profile)
    out = P.run_path(results_dir, profile, dataset, arch, run_name)
    missing = [f for f in ("01_baseline.json", "04_vinet.json", "06_throughput.json")
               if not (out / f).exists()]
    if missing:
        raise SystemExit(f"{P.shown(out)} lacks {', '.join(missing)}: run make reproduce first")
    md, _ = table.write(out)
    show_table(md)
    return md


def show_table(md: Path) -> None:
    """Print a written table and where it is."""
    print(md.read_text())
    print(f"table: {P.shown(md)}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default=os.environ.get("PROFILE", "auto"),
                    help=f"one of {', '.join(available_profiles())}, or auto")
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--stages", nargs="*", default=list(STAGES))
    ap.add_argument("--results-dir", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override one parameter of the profile (repeatable)")
    a = ap.parse_args(argv)
    out = run(a.profile, a.dataset, a.arch, a.stages, a.results_dir, parse_overrides(a.set))
    if (out / "table.md").exists():
        show_table(out / "table.md")


if __name__ == "__main__":
    sys.exit(main())
