"""The opening of every stage notebook after the first (02-06), in one call.

    S = stage.begin("03_ideals", globals())

takes the notebook's parameters (the names its parameters cell sets, which papermill
may have overridden), validates all of them before any work, and returns what every
stage needs: the run folder, the device, the baseline notebook 01 trained there, the
dataset, and the record the stage's results file is written with. ``S.fit(variant)``
fits (or reloads) the per-class ideals at a cut with the run's OAVI parameters, so
those are spelled in one place.
"""

from __future__ import annotations

import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vinet_utils.network import data
from vinet_utils.method import ideals
from vinet_utils.workflow import params as P
from vinet_utils.common.results import (FOLDER_PARAMS, Stage, checksum, environment, jsonable,
                                        read_json, write_json)
from vinet_utils.common.seeds import seed_everything
from vinet_utils.network.train import TrainConfig, load_baseline

@dataclass
class StageRun:
    """One notebook stage of a run: its parameters and what it works on."""

    name: str
    params: dict
    device: str
    run: Path
    model: torch.nn.Module
    baseline: dict
    ds: data.Dataset
    record: Stage
    by_cut_files: list[Path] = field(default_factory=list)  # written by by_cut, gone with write

    def fit(self, variant: str, pool: str | None = None, progress: bool = True) -> ideals.CutFit:
        """The latents, preprocessing and per-class ideals at ``variant``'s cut, with
        this run's parameters (``pool`` overrides the run's own)."""
        p = self.params
        return ideals.fit_cut(self.model, p["arch"], variant, self.ds, self.run,
                              pool=pool or p["pool"], device=self.device, progress=progress,
                              seed=p["seed"], **ideals.fit_settings(p))

    def head_config(self, epochs: int | None = None, lr: float | None = None) -> TrainConfig:
        """The head fine-tuning schedule (``finetune_*``), or another budget on it."""
        p = self.params
        return TrainConfig(epochs=epochs or p["finetune_epochs"], lr=lr or p["finetune_lr"],
                           batch_size=p["finetune_batch_size"], seed=p["seed"])

    def write(self, filename: str, metrics: dict) -> Path:
        """Write the stage's results file ``<run>/<filename>``; the files :meth:`by_cut`
        kept its finished cuts in go once it is written."""
        out = self.record.write(self.run / filename, metrics)
        for path in self.by_cut_files:
            path.unlink(missing_ok=True)
        return out

    def identity(self) -> dict:
        """What this stage's work depends on: its parameters (not the folders they name),
        the base's every parameter and buffer, and the data."""
        params = {k: v for k, v in self.params.items() if k not in FOLDER_PARAMS}
        return {"stage": self.name, "params": params,
                "base": checksum(self.model.state_dict().values()),
                "data": self.ds.provenance()}

    def by_cut(self, filename: str, cuts: list[str], work) -> tuple[list[dict], dict]:
        """``work(cut)``'s rows for every cut in ``cuts``, and per cut how it was made
        (its wall_time_s, device and commit). Each finished cut is written at once to
        ``<run>/<filename>`` (a file to commit, so a stage longer than a session keeps
        what it finished); a rerun with the same :meth:`identity` takes the cuts found
        there and works only on the rest. The file goes when :meth:`write` has written
        the stage's results file, which then holds the rows and this record."""
        path, ident = self.run / filename, jsonable(self.identity())
        saved = read_json(path) if path.exists() else {}
        done = saved.get("cuts", {}) if saved.get("identity") == ident else {}
        rows = []
        for cut in cuts:
            if cut not in done:
                t0, env = time.perf_counter(), environment(self.device)
                out = work(cut)
                done[cut] = {"rows": out, "wall_time_s": round(time.perf_counter() - t0, 1),
                             **{k: env[k] for k in ("device_name", "git_commit", "created_utc")}}
                write_json(path, {"identity": ident, "cuts": done})
            else:
                print(f"{cut}: kept from {P.shown(path)} (made {done[cut]['created_utc']})")
            rows += done[cut]["rows"]
        self.by_cut_files.append(path)
        return rows, {cut: {k: v for k, v in done[cut].items() if k != "rows"} for cut in cuts}


def begin(name: str, namespace: dict) -> StageRun:
    """Validate the notebook parameters found in ``namespace`` (every name of
    :data:`vinet_utils.workflow.params.RULES` it defines), then load the run's baseline and
    the dataset. Raises a ``ValueError`` naming the first bad parameter before any
    work, and another naming every parameter in which the run's baseline differs."""
    params = P.validate(**{k: v for k, v in namespace.items()
                           if k in P.RULES and not isinstance(v, types.ModuleType)})
    device = P.resolve_device(params["device"])
    run = P.run_dir(params["results_dir"], params["profile"], params["dataset"], params["arch"],
                    params.get("run_name"))
    record = Stage(name, params, device)  # environment and clock, taken now
    seed_everything(params["seed"])
    model, baseline = load_baseline(run, device=device, params=params)
    ds = data.load_dataset(params["dataset"], params["data_dir"], n_train=params["n_train"],
                           n_test=params["n_test"], seed=params["seed"],
                           holdout_frac=params.get("holdout_frac", 0.0))
    record.data = ds.provenance()
    print(f"{params['profile']}: {params['arch']} x{baseline['params']['width']} on "
          f"{params['dataset']}, baseline test accuracy {baseline['metrics']['test_acc']:.2f}%; "
          f"results -> {P.shown(run)}")
    return StageRun(name, params, device, run, model, baseline, ds, record)
