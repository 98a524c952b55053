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

import types
from dataclasses import dataclass
from pathlib import Path

import torch

from vinet_utils.network import data
from vinet_utils.method import ideals
from vinet_utils.workflow import params as P
from vinet_utils.common.results import Stage
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
        """Write the stage's results file ``<run>/<filename>``."""
        return self.record.write(self.run / filename, metrics)


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
