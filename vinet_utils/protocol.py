"""How each head is trained, chosen on a validation split with the same number of
trials for every head.

    python -m vinet_utils.protocol --profile cpu --variants tiny small

A verdict that ranks heads is only as good as the training of the worst-trained
head. This search gives every head of notebook 05 (VI-Net, the linear head on the
flattened map, projection + linear, an MLP of VI-Net's size, random monomials) the
same number of trials, each over the knobs that apply to it:

- heads that start with the projection (VI-Net, projection + linear, random
  monomials) try every ``train_projection`` mode: frozen, trained, trained at a tenth
  of the learning rate ("slow"), and trained behind a normalising BatchNorm
  ("normalized"), at the profile's learning rate;
- heads on the raw latents (linear, MLP) try as many learning rates.

With ``--end-to-end`` cuts, each of the four heads that notebook 05 fine-tunes end to
end then starts from its best frozen-base trial and is fine-tuned with the base
unfrozen on the training images outside the validation split, under every rule of
:data:`E2E_TRIALS` (the base's learning rate as a share of the head's, and whether
its BatchNorm statistics move), and is scored on the validation images. A rule is
only as good as its worst head: the chosen rule is the one whose smallest gain over
the frozen head is largest.

It works like the sweep (:mod:`vinet_utils.sweep`): on a finished run's cached
latents with the base frozen, a stratified validation split carved out of the
training latents, PCA and OAVI fitted on the rest; the test split is never read.
Every trial reports its validation accuracy and, for the projected heads, the share
of projected coordinates stuck beyond +-0.99 after training (its saturation).

Writes ``<run>/protocol.json`` (every trial, each head's best, the command) and
``<run>/protocol.png``.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from pathlib import Path

from . import data as D
from . import params as P
from .results import Stage, read_json

#: Heads that start with the projection, and so have a ``train_projection`` mode.
PROJECTED = ("VI-Net", "projection + linear", "random monomials")
#: Heads on the raw latents.
PLAIN = ("linear (flatten)", "MLP")
#: The trials: as many for every head, over the knob that applies to it.
TRIALS = {
    "projected": [{"train_projection": m} for m in (False, True, "slow", "normalized")],
    "plain": [{"finetune_lr": lr} for lr in (0.02, 0.05, 0.1, 0.2)],
}
#: End-to-end rules, tried by every head that goes end to end.
E2E_TRIALS = [{"unfreeze_base_lr_scale": s, "unfreeze_bn_stats": b}
              for s in (1.0, 0.1) for b in ("update", "frozen")]


def trial_label(trial: dict) -> str:
    """A trial as it is shown and tagged: ``train_projection=slow``, ``finetune_lr=0.1``."""
    return ", ".join(f"{k}={v}" for k, v in trial.items())


def head_makers(cf, values: dict, num_classes: int, mode) -> dict:
    """Every compared head at ``cf``'s cut, its projection (where it has one) in
    ``mode``: name -> a function that makes a fresh head."""
    from .ablations import ablation_heads
    from .vinet import vinet_heads

    make, template, pr = vinet_heads(cf, values["keep_per_class"], num_classes, mode)
    return {"VI-Net": make, **ablation_heads(cf, pr.kept, template.count_params(),
                                             num_classes, mode)}


def run_cut(cf, values: dict, num_classes: int, cache: Path, seeds: int, seed: int,
            progress: bool = False, trials: dict | None = None,
            heads: dict | None = None) -> tuple[dict, dict]:
    """Every head's trials at one cut: ``{head: [{"trial", "val_acc", ...}, ...]}``, and
    the first trained head of each trial, ``{head: {label: head}}``. ``trials`` and
    ``heads`` (per kind, ``projected`` and ``plain``) default to the whole search."""
    from .ablations import saturation
    from .sweep import _head_config
    from .train import train_seeds
    from .vinet import safe_name

    out, trained = {}, {}
    trials = TRIALS if trials is None else trials
    heads = {"projected": PROJECTED, "plain": PLAIN} if heads is None else heads
    for kind, names in heads.items():
        for trial in trials[kind]:
            vals = {**values, **trial}
            makers = head_makers(cf, vals, num_classes, vals["train_projection"])
            cfg = _head_config(vals, seed)
            for head in names:
                tag = f"{cf.layer}-protocol-{safe_name(head)}-" + safe_name(trial_label(trial))
                res = train_seeds(makers[head], cf.latents, cfg, cache, tag, seeds, seed,
                                  progress=progress)
                out.setdefault(head, []).append({
                    "trial": trial, "label": trial_label(trial), "val_acc": res["acc"],
                    "val_acc_std": res["acc_std"], "val_acc_per_seed": res["acc_per_seed"],
                    "saturation": saturation(res["heads"][0], cf.latents["test"]),
                    "params": res["params"]})
                trained.setdefault(head, {})[trial_label(trial)] = res["heads"][0]
                print(f"  {cf.variant} {head} [{trial_label(trial)}]: {res['acc']:.2f}", flush=True)
    return out, trained


def image_split(ds, frac: float, seed: int):
    """``ds`` with its training images split as the latents are (:func:`sweep.split_latents`):
    the fit part as the training split and the validation part as the test split."""
    from .sweep import validation_split

    fit, val = validation_split(ds.train_y, frac, seed)
    return dataclasses.replace(ds, train_x=ds.train_x[fit], train_y=ds.train_y[fit],
                               test_x=ds.train_x[val], test_y=ds.train_y[val])


def run_end_to_end(model, cf, ds_split, rows: dict, trained: dict, values: dict, cache: Path,
                   seed: int, progress: bool = False) -> dict:
    """Every rule of :data:`E2E_TRIALS` for every head of ``END_TO_END_HEADS``, each
    starting from its best frozen trial: ``{"per_head", "worst_gain", "chosen"}``."""
    from .ablations import END_TO_END_HEADS, finetune_end_to_end
    from .train import TrainConfig
    from .vinet import safe_name

    best = best_trials(rows)
    cfg = TrainConfig(epochs=values["unfreeze_epochs"], lr=values["unfreeze_lr"],
                      batch_size=values["finetune_batch_size"], seed=seed)
    per_head = {}
    for trial in E2E_TRIALS:
        label = trial_label(trial)
        for head in END_TO_END_HEADS:
            start = best[head]
            rec = finetune_end_to_end(
                model, cf, trained[head][start["label"]], ds_split, cfg, cache,
                f"{cf.layer}-protocol-{safe_name(head)}-{safe_name(start['label'])}-"
                + safe_name(label), progress=progress,
                base_lr_scale=trial["unfreeze_base_lr_scale"], bn_stats=trial["unfreeze_bn_stats"])
            frozen = start["val_acc_per_seed"][0]
            acc = rec["metrics"]["test_acc"]  # the validation images: the test split of ds_split
            per_head.setdefault(head, []).append({"trial": trial, "label": label,
                                                  "from": start["label"], "frozen_val_acc": frozen,
                                                  "val_acc": acc, "gain": acc - frozen})
            print(f"  {cf.variant} end to end {head} [{label}]: {frozen:.2f} -> {acc:.2f}",
                  flush=True)
    worst = worst_gains(per_head)
    return {"per_head": per_head, "worst_gain": worst, "chosen": max(worst, key=worst.get)}


def worst_gains(per_head: dict) -> dict:
    """Per end-to-end rule, the smallest gain over the frozen head among all heads."""
    worst = {}
    for rows in per_head.values():
        for r in rows:
            worst[r["label"]] = min(worst.get(r["label"], r["gain"]), r["gain"])
    return worst


def best_trials(per_head: dict) -> dict:
    """Each head's best trial by validation accuracy (ties: the earlier trial)."""
    return {head: max(rows, key=lambda r: r["val_acc"]) for head, rows in per_head.items()}


def chosen_settings(result: dict) -> dict:
    """What a profile adopts from a protocol search's results ``result``: each head's
    trial with the best mean validation accuracy over the searched cuts, as
    ``{"train_projection": VI-Net's mode, "rival_settings": {rival: trial}}`` (the
    notebook parameters of that name; :data:`vinet_utils.params.RIVAL_SETTINGS`), and,
    where end-to-end rules were tried, the rule whose worst head gained most
    (``unfreeze_base_lr_scale``, ``unfreeze_bn_stats``)."""
    from .ablations import rival_of

    cuts = list(result["per_cut"].values())
    best = {}
    for head in cuts[0]:
        trials = [r["trial"] for r in cuts[0][head]]
        means = [sum(c[head][i]["val_acc"] for c in cuts) / len(cuts) for i in range(len(trials))]
        best[head] = trials[means.index(max(means))]  # ties: the earlier trial
    vinet = best.pop("VI-Net")
    out = {"train_projection": vinet["train_projection"],
           "rival_settings": {rival_of(h): t for h, t in best.items()}}
    e2e = result.get("end_to_end") or {}
    if e2e:  # the rule whose worst head, over every cut tried end to end, gains most
        worst = {}
        for res in e2e.values():
            for label, gain in res["worst_gain"].items():
                worst[label] = min(worst.get(label, gain), gain)
        rule = max(worst, key=worst.get)
        out.update(next(t for t in result["end_to_end_trials"] if trial_label(t) == rule))
    return out


def run(profile: str, dataset: str | None = None, arch: str | None = None,
        variants=("tiny", "small"), seeds: int = 1, val_frac: float = 0.1, results_dir=None,
        command: str = "", end_to_end=(), overrides: dict | None = None) -> Path:
    """The search on ``variants`` of a finished run, and end to end on the cuts
    ``end_to_end`` (among ``variants``); ``overrides`` replace profile values (as
    ``--set`` does for the pipeline). Returns the results file."""
    from . import plots
    from .sweep import _fit, start_search

    def check(values):
        if not set(end_to_end) <= set(variants):
            raise ValueError(f"--end-to-end must be drawn from --variants {' '.join(variants)} "
                             f"(got {' '.join(end_to_end)})")
        missing = [k for k in ("unfreeze_epochs", "unfreeze_lr") if k not in values]
        if end_to_end and missing:
            raise ValueError(f"--end-to-end needs the end-to-end budget, and params/{profile}.yaml "
                             f"sets no {' or '.join(missing)}")

    S = start_search("protocol", profile, dataset, arch, variants, seeds, val_frac, results_dir,
                     overrides, check)
    values, run_dir, model, baseline, ds, stage = (S.values, S.run_dir, S.model, S.baseline,
                                                   S.ds, S.stage)
    seed, cache = S.seed, run_dir / "protocol"
    per_cut, e2e, split = {}, {}, None
    for v in variants:
        lat = S.latents(v)
        split = {"frac": val_frac, "per_class_stratified": True, "n_fit": len(lat["train"]),
                 "n_val": len(lat["test"])}
        cf = _fit(lat, values["arch"], v, values, ds.num_classes, run_dir / "sweep", seed)
        per_cut[v], trained = run_cut(cf, values, ds.num_classes, cache, seeds, seed)
        if v in end_to_end:
            e2e[v] = run_end_to_end(model, cf, image_split(ds, val_frac, S.val_seed), per_cut[v],
                                    trained, values, cache, seed)
    best = {v: {h: r["label"] for h, r in best_trials(rows).items()} for v, rows in per_cut.items()}
    path = stage.write(run_dir / "protocol.json", {
        "command": command, "validation": split, "trials": TRIALS,
        "heads": {"projected": PROJECTED, "plain": PLAIN}, "per_cut": per_cut, "best": best,
        "end_to_end_trials": E2E_TRIALS, "end_to_end": e2e,
        "baseline_test_acc_not_used": baseline["metrics"]["test_acc"]})
    plots.protocol(read_json(path), path=run_dir / "protocol.png")
    for v, rows in best.items():
        print(f"{v}: " + "; ".join(f"{h}: {t}" for h, t in rows.items()))
    chosen = chosen_settings(read_json(path)["metrics"])
    print(f"for params/{profile}.yaml: " + "; ".join(f"{k}: {v}" for k, v in chosen.items()))
    for v, res in e2e.items():
        print(f"{v} end to end: {res['chosen']} (smallest gain {res['worst_gain'][res['chosen']]:+.2f})")
    print(f"written: {P.shown(path)}")
    return path


def edge(profile: str, lrs: list[float], head: str = "linear (flatten)",
         dataset: str | None = None, arch: str | None = None, variants=("tiny", "small"),
         seeds: int = 1, val_frac: float = 0.1, results_dir=None, command: str = "",
         overrides: dict | None = None) -> Path:
    """A check beside the search, not a part of it: ``head`` at the learning rates
    ``lrs``, trained and scored exactly as the search's trials (a head with a projection
    in the mode its profile adopted; a plain head's rate that the search tried is read
    back from its cache), for a head whose best trial lies at the edge of its grid, or
    whose rate the search never varied. It changes no choice; it says whether the grid
    stopped short. Writes ``<run>/protocol_edge-<head>.json``."""
    from .ablations import rival_of
    from .sweep import _fit, start_search
    from .vinet import safe_name

    def check(values):
        P.choice("--edge-head", head, PROJECTED + PLAIN)
        if not lrs or any(not isinstance(lr, (int, float)) or lr <= 0 for lr in lrs):
            raise ValueError(f"--edge-lrs takes positive learning rates (got {lrs})")

    S = start_search("protocol_edge", profile, dataset, arch, variants, seeds, val_frac,
                     results_dir, overrides, check)
    kind = "plain" if head in PLAIN else "projected"
    mode = {} if kind == "plain" else {"train_projection": (
        (S.values.get("rival_settings") or {}).get(rival_of(head), {}).get(
            "train_projection", S.values["train_projection"]))}
    trials = {kind: [{**mode, "finetune_lr": lr} for lr in lrs]}
    per_cut = {}
    for v in variants:
        lat = S.latents(v)
        cf = _fit(lat, S.values["arch"], v, S.values, S.ds.num_classes, S.run_dir / "sweep", S.seed)
        per_cut[v], _ = run_cut(cf, S.values, S.ds.num_classes, S.run_dir / "protocol", seeds,
                                S.seed, trials=trials, heads={kind: (head,)})
    searched = S.run_dir / "protocol.json"
    rows = read_json(searched)["metrics"]["per_cut"] if searched.exists() else {}
    search_best = {v: best_trials(rows[v])[head] for v in variants if head in rows.get(v, {})}
    path = S.stage.write(S.run_dir / f"protocol_edge-{safe_name(head)}.json", {
        "command": command, "head": head, "lrs": list(lrs), "mode": mode,
        "search_grid": [t.get("finetune_lr", S.values["finetune_lr"]) for t in TRIALS[kind]],
        "per_cut": per_cut,
        "search_best": {v: {"label": r["label"], "val_acc": r["val_acc"]}
                        for v, r in search_best.items()}})
    for v, res in per_cut.items():
        best = max(res[head], key=lambda r: r["val_acc"])
        print(f"{v}: {head} best at {best['label']} ({best['val_acc']:.2f})"
              + (f"; the search's best: {search_best[v]['label']} ({search_best[v]['val_acc']:.2f})"
                 if v in search_best else ""))
    print(f"written: {P.shown(path)}")
    return path


def main(argv=None) -> None:
    from .sweep import search_arguments

    ap = search_arguments(__doc__.split("\n\n")[0], seeds=1)
    ap.add_argument("--end-to-end", nargs="*", default=[], metavar="CUT",
                    help="cuts (among --variants) where the end-to-end rules are tried too")
    ap.add_argument("--edge-lrs", nargs="+", type=float, default=None, metavar="LR",
                    help="instead of the search: --edge-head at these learning rates (edge)")
    ap.add_argument("--edge-head", default="linear (flatten)",
                    help=f"one of {', '.join(PROJECTED + PLAIN)}")
    a = ap.parse_args(argv)
    cmd = "python -m vinet_utils.protocol " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    try:
        if a.edge_lrs:
            edge(a.profile, a.edge_lrs, a.edge_head, a.dataset, a.arch, a.variants, a.seeds,
                 a.val_frac, a.results_dir, cmd)
        else:
            run(a.profile, a.dataset, a.arch, a.variants, a.seeds, a.val_frac, a.results_dir,
                cmd, a.end_to_end)
    except ValueError as err:
        raise SystemExit(str(err)) from None


if __name__ == "__main__":
    sys.exit(main())
