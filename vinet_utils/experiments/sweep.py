"""Choose a profile's VI-Net hyperparameters on a validation split, never the test split.

    python -m vinet_utils.experiments.sweep --profile cpu --variants tiny small

The sweep works on a finished run's cached latents with the base frozen, so it costs
minutes. It carves a stratified, seeded validation split (``--val-frac`` of each
class) out of the *training* latents. PCA, OAVI and the heads are fitted on the rest,
and every accuracy it reports is validation accuracy. The test split is never read.

The search is one factor at a time, greedy and in a fixed order. Starting from the
profile's values, each factor's candidates are tried with the others held, the
value with the best mean validation accuracy over the swept cuts is kept, and the
next factor starts from there. Two reference heads are trained on the same split
with the same budget: a linear head on the same latents, and the projection ->
tanh -> linear head without polynomials.

Writes ``<run>/sweep.json`` (every trial, the choice per factor, the references, the
command) and ``<run>/sweep.png``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from vinet_utils.network import data as D
from vinet_utils.workflow import params as P
from vinet_utils.common.results import Stage, read_json
from vinet_utils.network.data import validation_split
from vinet_utils.network.train import train_seeds

#: Factors in the order they are swept, with their candidate values.
FACTORS = {
    "train_projection": [False, True],
    "psi": [0.02, 0.05, 0.1, 0.2],
    "keep_per_class": [25, 50, 100, 200],
    "pca_dim": [16, 32, 64],
    "max_degree": [2, 3],
    "samples_per_class": [1000, 2500],
    "oracle": ["ihb", "abm", "bpcg"],
    "finetune_epochs": [10, 20],
}
SWEPT = tuple(FACTORS)


def split_latents(lat: dict, frac: float, seed: int) -> dict:
    """The training latents of ``lat`` as a fit part ("train") and a validation part
    (under "test", where the head trainers look for their evaluation split)."""
    fit, val = validation_split(lat["train_y"], frac, seed)
    return {"train": lat["train"][fit], "train_y": lat["train_y"][fit],
            "test": lat["train"][val], "test_y": lat["train_y"][val],
            "key": {**lat["key"], "validation_frac": frac, "validation_seed": seed}}


def trial(model, arch: str, variant: str, lat: dict, num_classes: int, cache: Path,
          values: dict, seeds: int, seed: int, progress: bool = False) -> dict:
    """Validation accuracy (mean, std over ``seeds``) of the VI-Net built with ``values``."""
    from vinet_utils.method import vinet
    from vinet_utils.network.models import resolve_cut
    layer = resolve_cut(arch, variant)
    cf = fit_cut(lat, arch, variant, values, num_classes, cache, seed, progress)
    cfg = head_config(values, seed)
    t0 = time.perf_counter()
    make, template, _ = vinet.vinet_heads(cf, values["keep_per_class"], num_classes,
                                          values["train_projection"])
    res = train_seeds(make, cf.latents, cfg, cache, _trial_tag(layer, values), seeds,
                            seed, progress=progress)
    return {"val_acc": res["acc"], "val_acc_std": res["acc_std"], "val_acc_per_seed": res["acc_per_seed"],
            "generators": sum(m.n_generators_ for m in cf.models),
            "generators_kept": template.poly.out_features, "head_params": res["params"],
            "oavi_fit_time_s": cf.fit_time_s, "train_time_s": time.perf_counter() - t0}


def greedy(factors: dict, current: dict, score, variants) -> dict:
    """One factor at a time, in order: score every candidate with the others at their
    current values (``score(values) -> {variant: validation accuracy}``), keep the best
    mean (ties keep the current value) and move on. ``current`` ends at the choices;
    returns what each factor scored."""
    from vinet_utils.common.progress import tqdm

    choices = {}
    for name in tqdm(list(factors), desc="factors"):
        accs = {value: score({**current, name: value}) for value in factors[name]}
        mean = {value: sum(a.values()) / len(a) for value, a in accs.items()}
        best = max(mean, key=lambda x: (mean[x], x == current[name]))
        choices[name] = {"candidates": factors[name], "mean_val_acc": list(mean.values()),
                         "per_variant": {v: [accs[c][v] for c in factors[name]] for v in variants},
                         "chosen": best}
        current[name] = best
        print(f"{name}: chose {best!r} ({mean[best]:.2f})", flush=True)
    return choices


def fit_cut(lat: dict, arch: str, variant: str, values: dict, num_classes: int, cache: Path,
         seed: int, progress: bool = False):
    """The fits of one trial's ``values`` on the validation-split latents ``lat``."""
    from vinet_utils.method import ideals
    from vinet_utils.network.models import resolve_cut

    return ideals.fit_latents(lat, variant, resolve_cut(arch, variant), values["pool"],
                              num_classes, cache, seed=seed, progress=progress,
                              **ideals.fit_settings(values))


def head_config(values: dict, seed: int):
    """The fine-tuning budget of a trial's heads."""
    from vinet_utils.network.train import TrainConfig

    return TrainConfig(epochs=values["finetune_epochs"], lr=values["finetune_lr"],
                       batch_size=values["finetune_batch_size"], seed=seed)


def _trial_tag(layer: str, values: dict) -> str:
    return layer + "-" + "-".join(f"{k}{values[k]}" for k in SWEPT)


def references(lat: dict, cf, values: dict, num_classes: int, cache: Path, seeds: int,
               seed: int) -> dict:
    """Validation accuracy of the linear head and the projection + linear head."""
    from vinet_utils.method import vinet
    from vinet_utils.method.heads import LinearHead, ProjectionHead

    cfg = head_config(values, seed)
    d = lat["train"].shape[1]
    makers = {f"linear ({values['pool']})": lambda: LinearHead(d, num_classes),
              "projection + linear": lambda: ProjectionHead(
                  copy.deepcopy(cf.preprocess).trainable(True), num_classes)}
    out = {}
    for name, make in makers.items():
        tag = f"{cf.layer}-ref-{vinet.safe_name(name)}-e{values['finetune_epochs']}"
        res = train_seeds(make, lat, cfg, cache, tag, seeds, seed, progress=False)
        out[name] = {"val_acc": res["acc"], "val_acc_std": res["acc_std"]}
    return out


@dataclass
class Search:
    """What every validation search (this sweep, the protocol search) starts from: the
    profile's values, the finished run's base, its data, and a results record."""
    values: dict
    run_dir: Path
    model: torch.nn.Module
    baseline: dict
    ds: D.Dataset
    stage: Stage
    val_frac: float

    @property
    def seed(self) -> int:
        return self.values.get("seed", 0)

    @property
    def val_seed(self) -> int:
        """The seed of the validation split, the same at every cut and for the images."""
        return D.holdout_seed(self.seed)

    @property
    def held_out(self) -> bool:
        """Whether the run held images out of all its training (``holdout_frac``)."""
        return self.ds.holdout_y is not None

    def latents(self, variant: str) -> dict:
        """The cut's training latents to fit on (``train``) and the validation latents
        (``test``): the held-out images where the run has them, else a stratified split
        carved out of the training latents; the same split at every cut."""
        from vinet_utils.method import latents as L
        full = L.cached_latents(self.model, self.values["arch"], variant, self.ds, self.run_dir,
                                self.values["pool"])
        if self.held_out:
            held = L.cached_latents(self.model, self.values["arch"], variant, self.ds,
                                    self.run_dir, self.values["pool"], holdout=True)
            return {"train": full["train"], "train_y": full["train_y"], "test": held["holdout"],
                    "test_y": held["holdout_y"],
                    "key": {**full["key"], "validation": "holdout", "holdout": held["key"]}}
        return split_latents({k: full[k] for k in ("train", "train_y", "key")}, self.val_frac,
                             self.val_seed)

    def image_split(self):
        """The dataset with the images to fit on as its training split and the
        validation images as its test split (the end-to-end trials')."""
        if self.held_out:
            return dataclasses.replace(self.ds, test_x=self.ds.holdout_x, test_y=self.ds.holdout_y)
        fit, val = validation_split(self.ds.train_y, self.val_frac, self.val_seed)
        ds = self.ds
        return dataclasses.replace(ds, train_x=ds.train_x[fit], train_y=ds.train_y[fit],
                                   test_x=ds.train_x[val], test_y=ds.train_y[val])

    def validation_record(self, lat: dict) -> dict:
        """What a results file says of the validation split."""
        if self.held_out:
            return {"source": "holdout", "holdout_frac": self.values.get("holdout_frac"),
                    "n_fit": len(lat["train"]), "n_val": len(lat["test"]),
                    "overlaps_base_training": False}
        return {"source": "carved from the training split", "frac": self.val_frac,
                "per_class_stratified": True, "n_fit": len(lat["train"]),
                "n_val": len(lat["test"]), "overlaps_base_training": True}


def start_search(name: str, profile: str, dataset: str | None, arch: str | None, variants,
                 seeds: int, val_frac: float, results_dir=None, overrides: dict | None = None,
                 check=None) -> Search:
    """Load what a search named ``name`` needs, after checking its arguments (and
    ``check(values)``, for the search's own) before any expensive work."""
    from vinet_utils.network.models import VARIANTS
    from vinet_utils.workflow.pipeline import profile_parameters
    from vinet_utils.network.train import load_baseline

    values = profile_parameters(profile, dataset, arch, overrides)
    profile, dataset, arch = values["profile"], values["dataset"], values["arch"]
    cuts = values.get("ablation_cuts") or []  # layer names the profile also cuts at
    if not variants or any(v not in (*VARIANTS, *cuts) for v in variants):
        raise ValueError(f"--variants must be drawn from {', '.join((*VARIANTS, *cuts))} "
                         f"(the cut variants and the profile's ablation_cuts; got {list(variants)})")
    P.validate(dataset=dataset, arch=arch, seeds=seeds)
    validation_split(torch.zeros(2), val_frac, 0)  # a bad val_frac stops here
    if check is not None:
        check(values)
    run_dir = P.run_path(results_dir, profile, dataset, arch)
    model, baseline = load_baseline(run_dir)
    stage = Stage(name, {**values, "variants": list(variants), "seeds": seeds,
                         "val_frac": val_frac}, "cpu")
    ds = D.load_dataset(dataset, values.get("data_dir"), n_train=values.get("n_train"),
                        n_test=values.get("n_test"), seed=values.get("seed", 0),
                        holdout_frac=values.get("holdout_frac") or 0.0)
    stage.data = ds.provenance()
    return Search(values, run_dir, model, baseline, ds, stage, val_frac)


def run(profile: str, dataset: str | None = None, arch: str | None = None, variants=("tiny", "small"),
        seeds: int = 2, val_frac: float = 0.1, results_dir=None, factors: dict | None = None,
        command: str = "") -> Path:
    """Sweep ``factors`` (default :data:`FACTORS`) on ``variants`` of a finished run."""
    from vinet_utils.report import figures as plots

    factors = factors or FACTORS

    def check(_values):
        unknown = set(factors) - set(FACTORS)
        if unknown:
            raise ValueError(f"factors must be drawn from {', '.join(FACTORS)} "
                             f"(got {sorted(unknown)})")

    S = start_search("sweep", profile, dataset, arch, variants, seeds, val_frac, results_dir,
                     check=check)
    values, run_dir, model, baseline, ds, stage = (S.values, S.run_dir, S.model, S.baseline,
                                                   S.ds, S.stage)
    arch, seed, cache = values["arch"], S.seed, run_dir / "sweep"
    lats = {v: S.latents(v) for v in variants}
    current = {k: values[k] for k in ("pool", "pca_dim", "samples_per_class", "psi", "tau",
                                      "max_degree", "oracle", "keep_per_class", "finetune_epochs",
                                      "finetune_lr", "finetune_batch_size", "train_projection")}
    trials, seen = [], {}

    def score(vals) -> dict:
        """Validation accuracy per cut of the VI-Net built with ``vals`` (each trial once)."""
        key = _trial_tag("", vals)
        if key not in seen:
            rows = {v: trial(model, arch, v, lats[v], ds.num_classes, cache, vals, seeds, seed)
                    for v in variants}
            seen[key] = rows
            print(f"  {', '.join(f'{k}={vals[k]}' for k in SWEPT)}: "
                  + ", ".join(f"{v} {r['val_acc']:.2f}" for v, r in rows.items()), flush=True)
            trials.append({"values": {k: vals[k] for k in SWEPT}, "per_variant": rows,
                           "mean_val_acc": sum(r["val_acc"] for r in rows.values()) / len(rows)})
        return {v: r["val_acc"] for v, r in seen[key].items()}

    choices = greedy(factors, current, score, variants)
    refs = {v: references(lats[v], fit_cut(lats[v], arch, v, current, ds.num_classes, cache, seed),
                          current, ds.num_classes, cache, seeds, seed) for v in variants}
    final = seen[_trial_tag("", current)]
    stage.write(run_dir / "sweep.json", {
        "command": command, "validation": S.validation_record(next(iter(lats.values()))),
        "order": list(factors), "factors": choices, "chosen": current, "trials": trials,
        "chosen_val_acc": {v: final[v]["val_acc"] for v in variants},
        "references": refs, "baseline_test_acc_not_used": baseline["metrics"]["test_acc"]})
    plots.sweep(read_json(run_dir / "sweep.json"), path=run_dir / "sweep.png")
    print(f"chosen: {current}\nwritten: {P.shown(run_dir / 'sweep.json')}")
    return run_dir / "sweep.json"


def search_arguments(description: str, seeds: int) -> argparse.ArgumentParser:
    """The command line every validation search shares (this sweep, the protocol
    search): profile, dataset, arch, cuts, seeds per trial, validation share, results."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--dataset", default=None, help="default: the profile's, else cifar10")
    ap.add_argument("--arch", default=None, help="default: the profile's, else resnet18")
    ap.add_argument("--variants", nargs="+", default=["tiny", "small"])
    ap.add_argument("--seeds", type=int, default=seeds)
    ap.add_argument("--val-frac", type=float, default=0.1)
    ap.add_argument("--results-dir", default=None)
    return ap


def main(argv=None) -> None:
    ap = search_arguments(__doc__.split("\n\n")[0], seeds=2)
    ap.add_argument("--factors", nargs="*", default=None,
                    help=f"a subset of {', '.join(FACTORS)} (default: all, in that order)")
    a = ap.parse_args(argv)
    try:
        factors = {f: FACTORS[f] for f in a.factors} if a.factors else None
    except KeyError as err:
        raise SystemExit(f"--factors must be drawn from {', '.join(FACTORS)} (got {err})") from None
    cmd = "python -m vinet_utils.experiments.sweep " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    run(a.profile, a.dataset, a.arch, a.variants, a.seeds, a.val_frac, a.results_dir, factors, cmd)


if __name__ == "__main__":
    main()
