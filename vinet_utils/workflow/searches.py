"""What a protocol search chose, read from its results record (``protocol.json``):
the best trial of a study, the settings a profile adopts, a grid trial's label. The
search (:mod:`vinet_utils.experiments.protocol`), the profiles and the pages all read
a search's choices here."""

from __future__ import annotations

from vinet_utils.workflow.params import rival_of


def best(trials: list[dict]) -> dict:
    """The trial with the best objective (ties: the earlier trial)."""
    return max(trials, key=lambda t: (t["objective"], -t.get("round", 0), -t["number"]))


def chosen_settings(result: dict) -> dict:
    """What a profile adopts from a protocol search's results ``result``: VI-Net's
    chosen values as the profile's own (``finetune_lr``, ``train_projection``, ``psi``
    and, searched end to end, ``unfreeze_lr``, ``unfreeze_base_lr_scale``,
    ``unfreeze_bn_stats``), and every other head's as its ``rival_settings`` entry
    (:data:`vinet_utils.workflow.params.RIVAL_SETTINGS`), rounded to 3 significant digits."""
    if "frozen" not in result:
        return _grid_chosen_settings(result)
    out = {}
    for head in result["frozen"]:
        vals = dict(best(result["frozen"][head])["values"])
        if head in result.get("end_to_end", {}):
            vals.update(best(result["end_to_end"][head])["values"])
        vals = {k: float(f"{v:.3g}") if isinstance(v, float) else v for k, v in vals.items()}
        if head == "VI-Net":
            out.update(vals)
        else:
            out.setdefault("rival_settings", {})[rival_of(head)] = vals
    return out


def grid_label(trial: dict) -> str:
    """A trial of the grid search made before the Optuna studies, as its results file
    names it: ``train_projection=slow``, ``finetune_lr=0.02``."""
    return ", ".join(f"{k}={v}" for k, v in trial.items())


def _grid_chosen_settings(result: dict) -> dict:
    """:func:`chosen_settings` of a search made before the Optuna studies (a fixed grid
    of 4 trials per head, ``per_cut`` rows): each head's trial with the best mean over
    the cuts, and the end-to-end rule whose worst head gained most."""
    cuts = list(result["per_cut"].values())
    best_of = {}
    for head in cuts[0]:
        trials = [r["trial"] for r in cuts[0][head]]
        means = [sum(c[head][i]["val_acc"] for c in cuts) / len(cuts) for i in range(len(trials))]
        best_of[head] = trials[means.index(max(means))]
    vinet = best_of.pop("VI-Net")
    out = {"train_projection": vinet["train_projection"],
           "rival_settings": {rival_of(h): t for h, t in best_of.items()}}
    e2e = result.get("end_to_end") or {}
    if e2e:
        worst = {}
        for res in e2e.values():
            for label, gain in res["worst_gain"].items():
                worst[label] = min(worst.get(label, gain), gain)
        rule = max(worst, key=worst.get)
        out.update(next(t for t in result["end_to_end_trials"] if grid_label(t) == rule))
    return out
