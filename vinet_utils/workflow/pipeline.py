"""Run the numbered notebooks headlessly with papermill: ``make reproduce`` calls this.

    python -m vinet_utils.workflow.pipeline --profile cpu --dataset cifar10 --arch resnet18
    python -m vinet_utils.workflow.pipeline --profile smoke --set seeds=3 --set pool=gap
    python -m vinet_utils.workflow.pipeline --profile cpu --set epochs=45 --set run_name=w0.25-e45
    python -m vinet_utils.workflow.pipeline --tidy notebooks/0*.ipynb   # executed notebooks, tidied

Each stage is executed with ``-f params/<profile>.yaml`` plus the dataset/arch
overrides and saved, executed, into the run's results folder. Stages reuse their own
finished work from that folder (trained weights, fits, measurements), so a rerun
re-executes the notebooks quickly without retraining, and an interrupted stage
resumes from its checkpoint.

Where papermill is not installed (a bare GPU host, say), ``--engine inline`` runs the
same notebooks' code cells in this process, the parameters injected after the
``parameters`` cell as papermill would: the results files are the same, only the
executed notebooks are not saved.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import time
from pathlib import Path

import yaml

from vinet_utils.workflow import params as P
from vinet_utils.common.results import REPO_ROOT, read_json, stage_seconds, write_json

STAGES = ("01_baseline_training", "02_latent_features", "03_vanishing_ideals",
          "04_vinet_construction", "05_evaluation_ablations", "06_throughput_table")
NOTEBOOKS = REPO_ROOT / "notebooks"
RESULTS = REPO_ROOT / "results"
PROFILES = REPO_ROOT / "params"
ENGINES = ("auto", "papermill", "inline")


def _code_cells(path: Path) -> list[tuple[str, bool]]:
    """``(source, is_parameters_cell)`` of each code cell of the notebook at ``path``."""
    nb = json.loads(Path(path).read_text())
    return [("".join(c["source"]), "parameters" in c.get("metadata", {}).get("tags", []))
            for c in nb["cells"] if c["cell_type"] == "code"]


def notebook_parameters(path: Path) -> set[str]:
    """The names the ``parameters`` cell of the notebook at ``path`` assigns."""
    names = set()
    for source, is_params in _code_cells(path):
        if is_params:
            for node in ast.parse(source).body:
                if isinstance(node, ast.Assign):
                    names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def notebook_namespace(stage: str, profile: str) -> dict:
    """The parameters notebook ``stage`` runs with under ``profile``: its own defaults
    (its ``parameters`` cell), then the profile's values of the names it declares, as
    ``make reproduce`` would give them."""
    namespace: dict = {}
    for source, is_params in _code_cells(NOTEBOOKS / f"{stage}.ipynb"):
        if is_params:
            exec(compile(source, f"{stage} [parameters]", "exec"), namespace)
    parameters = profile_parameters(profile)
    declared = notebook_parameters(NOTEBOOKS / f"{stage}.ipynb")
    namespace.update({k: v for k, v in parameters.items() if k in declared})
    return {k: v for k, v in namespace.items() if not k.startswith("__")}


def execute_inline(path: Path, parameters: dict) -> None:
    """Run the notebook's code cells in order in a fresh namespace of this process, with
    ``parameters`` set right after its ``parameters`` cell (papermill's injection)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    namespace = {"__name__": "__main__"}
    cwd = os.getcwd()
    os.chdir(NOTEBOOKS)
    try:
        for i, (source, is_params) in enumerate(_code_cells(path)):
            exec(compile(source, f"{Path(path).name} [cell {i + 1}]", "exec"), namespace)
            if is_params:
                namespace.update(parameters)
    finally:
        os.chdir(cwd)
        plt.close("all")


def resolve_engine(engine: str) -> str:
    """``auto`` -> papermill when it is installed, else inline."""
    P.choice("engine", engine, ENGINES)
    if engine == "auto":
        try:
            import papermill  # noqa: F401
            return "papermill"
        except ImportError:
            print("papermill is not installed: running the notebooks' code inline "
                  "(same results files; the executed notebooks are not saved)")
            return "inline"
    return engine


def tidy_notebook(path: Path) -> None:
    """Make an executed notebook fit to read and commit: papermill's input and output
    paths relative to the repository (no machine-specific paths), and each cell's
    streams as one output per stream with every progress bar in its final state."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if meta.get(key):
            meta[key] = P.shown(meta[key])
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = _one_output_per_stream(cell.outputs)
    if nb.cells and nb.cells[0].cell_type == "markdown" and str(path.resolve()).startswith(
            str(RESULTS)):  # an executed run is not the template's smoke run: drop its note
        cell = nb.cells[0]
        cell.source = re.sub(r"\n*> \*\*Smoke outputs\.\*\*.*?(?=\n\n(?!>)|\Z)", "",
                             cell.source, flags=re.S).rstrip() + "\n"
    nbformat.write(nb, path)


#: What training code once printed on replacing another run's checkpoint: not an error,
#: and dropped from executed notebooks.
RESTARTED = re.compile(r"\.ckpt: made by another run, starting over$")


def _one_output_per_stream(outputs: list) -> list:
    """Merge a cell's stream outputs by stream (each where it first appeared); keep of
    each line what follows its last carriage return, and drop lines left blank (a
    progress bar that cleared itself) and restart notes (:data:`RESTARTED`)."""
    merged, out = {}, []
    for o in outputs:
        if o.get("output_type") != "stream":
            out.append(o)
        elif o["name"] in merged:
            merged[o["name"]]["text"] += o["text"]
        else:
            merged[o["name"]] = o
            out.append(o)
    for o in merged.values():
        lines = [line.rsplit("\r", 1)[-1] for line in o["text"].split("\n")]
        o["text"] = "\n".join(line for line in lines
                              if line.strip() and not RESTARTED.search(line)) + "\n"
    return [o for o in out if o.get("output_type") != "stream" or o["text"].strip()]


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES.glob("*.yaml"))


def load_profile(profile: str) -> dict:
    """The parameters of ``params/<profile>.yaml``, validated."""
    path = PROFILES / f"{profile}.yaml"
    if not path.exists():
        raise SystemExit(f"PROFILE must be one of {', '.join(available_profiles())} "
                         f"(got {profile!r}: no file {P.shown(path)})")
    values = yaml.safe_load(path.read_text()) or {}
    source = values.pop("heads_from", None)
    if source is not None:  # every head's settings as that profile's committed search chose
        values.update(searched_settings(source))
    try:
        P.validate(**values)
    except ValueError as err:
        raise SystemExit(f"{P.shown(path)}: {err}") from None
    return values


def searched_settings(profile: str) -> dict:
    """What the committed protocol search of ``profile``'s run chose for every head
    (:func:`vinet_utils.workflow.searches.chosen_settings` of its ``protocol.json``): a
    profile with ``heads_from: <profile>`` takes them from there, not from a copy."""
    from vinet_utils.workflow.searches import chosen_settings

    if not (PROFILES / f"{profile}.yaml").exists():
        raise SystemExit(f"heads_from must be one of {', '.join(available_profiles())} "
                         f"(got {profile!r})")
    run = committed_run(profile)
    if not (run / "protocol.json").exists():
        raise SystemExit(f"heads_from: {profile} has no committed search ({P.shown(run)}/protocol.json)")
    return chosen_settings(read_json(run / "protocol.json")["metrics"])


def committed_run(profile: str) -> Path:
    """The folder of ``profile``'s committed run: ``results/<profile>/<dataset>-<arch>``."""
    own = yaml.safe_load((PROFILES / f"{profile}.yaml").read_text()) or {}
    return P.run_path(RESULTS, profile, own.get("dataset", "cifar10"), own.get("arch", "resnet18"))


def heads_source(profile: str) -> str | None:
    """The profile whose committed search trains ``profile``'s heads (its ``heads_from``);
    None for a profile with its own settings, or no such profile."""
    path = PROFILES / f"{profile}.yaml"
    return (yaml.safe_load(path.read_text()) or {}).get("heads_from") if path.exists() else None


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


def stage_minutes(run: Path, stages=STAGES) -> dict | None:
    """``{stage: minutes}`` a committed run took
    (:func:`vinet_utils.common.results.stage_seconds`); None when it records no time for
    one of ``stages``."""
    longest = stage_seconds(run)
    if any(st not in longest for st in stages):
        return None
    return {st: longest[st] / 60 for st in stages}


def announcement(out: Path, profile: str, dataset: str, arch: str, stages=STAGES) -> str:
    """What a run says before it starts: where it writes, whether that is the committed
    results, and how long the committed run of the same profile took."""
    committed = P.run_path(REPO_ROOT / "results", profile, dataset, arch)
    where = f"writing to {P.shown(out)}"
    if out.resolve() == committed.resolve():
        where += " (the committed results: they are remade in place)"
    elif committed.exists():
        where += f" (the committed run {P.shown(committed)} is left as it is)"
    mins = stage_minutes(committed, stages) if committed.exists() else None
    if mins is None:
        return where + "; no committed timing for this profile"
    return where + (f"; the committed run took {sum(mins.values()):.0f} min for these stages on "
                    f"the machine that made it (its stage_times.json); a finished stage in "
                    f"the folder is reused")


def stage_names(stages) -> list[str]:
    """``stages`` as notebook names, each given whole or by its number ("05"); a
    ``ValueError`` names the allowed values for any other."""
    by_number = {s.split("_")[0]: s for s in STAGES}
    unknown = [s for s in stages if s not in STAGES and s not in by_number]
    if unknown:
        raise ValueError(f"stages must be drawn from {', '.join(STAGES)}, or their numbers "
                         f"{', '.join(by_number)} (got {unknown})")
    return [by_number.get(s, s) for s in stages]


def run(profile: str, dataset: str | None = None, arch: str | None = None, stages=STAGES,
        results_dir=None, overrides: dict | None = None, engine: str = "auto") -> Path:
    """Validate everything, then execute ``stages`` in order; returns the run folder.

    ``dataset`` and ``arch``: ``None`` takes the profile's own (a profile made for one
    setting names them), else cifar10 and resnet18. ``stages``: notebook names or their
    numbers (:func:`stage_names`). ``overrides`` replace single
    parameters of the profile (``--set name=value``); ``engine`` is one of ``ENGINES``."""
    try:
        engine = resolve_engine(engine)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    os.environ["VINET_PLAIN_PROGRESS"] = "1"  # the kernel inherits it: text bars in saved notebooks
    parameters = profile_parameters(profile, dataset, arch, overrides)
    profile, dataset, arch = parameters["profile"], parameters["dataset"], parameters["arch"]
    chosen = Path(results_dir).resolve() if results_dir else None
    if chosen and chosen != P.resolve_results_dir(None).resolve():  # the default stays unset:
        parameters["results_dir"] = str(chosen)  # executed notebooks then name no machine path
    try:
        P.validate(**parameters)
        stages = stage_names(stages)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    declared = {s: notebook_parameters(NOTEBOOKS / f"{s}.ipynb") for s in STAGES}
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
    print(announcement(out, profile, dataset, arch, stages), flush=True)
    timing_path = out / "stage_times.json"
    history = read_json(timing_path).get("runs", []) if timing_path.exists() else []
    timings = {}
    history.append({"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "engine": engine, "stage_seconds": timings})
    for stage in stages:
        print(f"== {stage}  [{profile} / {dataset} / {arch}]", flush=True)
        t0 = time.perf_counter()
        given = {k: v for k, v in parameters.items() if k in declared[stage]}
        if engine == "inline":
            execute_inline(NOTEBOOKS / f"{stage}.ipynb", given)
        else:
            import papermill as pm
            pm.execute_notebook(NOTEBOOKS / f"{stage}.ipynb", out / f"{stage}.ipynb",
                                parameters=given, cwd=str(NOTEBOOKS), progress_bar=False,
                                log_output=True)
            tidy_notebook(out / f"{stage}.ipynb")
        timings[stage] = round(time.perf_counter() - t0, 1)
        write_json(timing_path, {"runs": history})
        print(f"   done in {timings[stage] / 60:.1f} min", flush=True)
    refresh_table(out, stages)
    return out


def refresh_table(out: Path, stages) -> None:
    """Notebook 06 writes ``table.md`` from the results of notebooks 04-06; when stages
    ran without 06 (a rerun of 05, the study's 01-05), an existing table is rebuilt from
    the results files, so it never shows rows those stages replaced."""
    if "06_throughput_table" not in stages and (out / "table.md").exists():
        from vinet_utils.report import paper_table as table
        table.write(out)


def profile_parameters(profile: str, dataset: str | None = None, arch: str | None = None,
                       overrides: dict | None = None) -> dict:
    """Every parameter a run of ``profile`` has: the profile's values, ``overrides`` over
    them (an ``lr`` given without ``lr_batch_size`` is used as given), and its
    ``profile``, ``dataset`` and ``arch`` (:func:`profile_setting`); a relative data
    folder made absolute (:func:`absolute_data_dirs`). The pipeline, a notebook's
    namespace and the searches all start from it."""
    profile = resolve_profile(profile)
    parameters = {**load_profile(profile), **(overrides or {})}
    if "lr" in (overrides or {}) and "lr_batch_size" not in overrides:
        parameters["lr_batch_size"] = None  # an lr set by hand is used as given
    dataset, arch = profile_setting(parameters, dataset, arch)
    parameters.update(profile=profile, dataset=dataset, arch=arch)
    absolute_data_dirs(parameters)
    return parameters


def absolute_data_dirs(parameters: dict) -> None:
    """Make a relative ``data_dir`` parameter and ``$VINET_DATA_DIR`` absolute, from the
    folder the pipeline was started in: the notebooks run in ``notebooks/``, where a
    relative path would find nothing."""
    if os.environ.get("VINET_DATA_DIR"):
        os.environ["VINET_DATA_DIR"] = str(Path(os.environ["VINET_DATA_DIR"]).resolve())
    if parameters.get("data_dir"):
        parameters["data_dir"] = str(Path(parameters["data_dir"]).resolve())


def profile_setting(parameters: dict, dataset: str | None, arch: str | None) -> tuple[str, str]:
    """The dataset and arch a run uses: those asked for, else the profile's, else
    cifar10 and resnet18."""
    return (dataset or parameters.get("dataset") or "cifar10",
            arch or parameters.get("arch") or "resnet18")


def table_only(profile: str, dataset: str | None = None, arch: str | None = None,
               results_dir=None, run_name: str | None = None) -> Path:
    """Rebuild ``table.md``/``table.csv`` from a finished run's results files."""
    from vinet_utils.report import paper_table as table

    p = profile_parameters(profile, dataset, arch)
    out = P.run_path(results_dir, p["profile"], p["dataset"], p["arch"], run_name)
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
    ap.add_argument("--dataset", default=None, help="default: the profile's, else cifar10")
    ap.add_argument("--arch", default=None, help="default: the profile's, else resnet18")
    ap.add_argument("--stages", nargs="*", default=list(STAGES))
    ap.add_argument("--results-dir", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override one parameter of the profile (repeatable)")
    ap.add_argument("--engine", default="auto", help=f"one of {', '.join(ENGINES)}")
    ap.add_argument("--tidy", nargs="+", type=Path, metavar="NOTEBOOK",
                    help="only tidy these executed notebooks (make notebooks does)")
    a = ap.parse_args(argv)
    if a.tidy:
        for nb in a.tidy:
            tidy_notebook(nb)
        return
    out = run(a.profile, a.dataset, a.arch, a.stages, a.results_dir, parse_overrides(a.set),
              a.engine)
    if (out / "table.md").exists():
        show_table(out / "table.md")


if __name__ == "__main__":
    sys.exit(main())
