"""The reference protocol: every head fine-tuned end to end by one recipe fixed before
any result, and a sweep of its one learning rate at the budget the heads are compared at.

    python -m vinet_utils.experiments.reference --profile cpu

A comparison of heads is only as good as the worst-trained head. The budget curve
(:mod:`vinet_utils.experiments.budget`) trains each head end to end as a 2-epoch search at one cut
chose for it; this trains every head the same way (docs/method.md §7):

- the base's own recipe: SGD with Nesterov momentum, its weight decay, its label
  smoothing and its one-cycle schedule;
- one learning rate for the head and the base, by :data:`RULE` (:func:`reference_lr`);
- BatchNorm statistics updated;
- each head starting from its own searched frozen head, the same heads the budget
  curve starts from (:class:`vinet_utils.experiments.budget.FrozenHeads`).

The work, in this order, every training a row of ``<run>/reference.json`` (written after
each, with its validation accuracy on the images the base never saw, its test accuracy,
and a checksum of the frozen head it started from; ``<run>/reference.png`` draws it):

1. **The sweep** at the first cut, seed 0, for the largest budget: each of
   :data:`CURVE_HEADS` at the reference rate, a quarter of it, four times it, and at its
   own settings from the 2-epoch search. A head's best on validation is its
   *best-known* setting; a head whose best rate sits at either end of its rates is
   widened once more by the same factor, until it does not (at most :data:`MAX_POWER`
   steps of 4), whatever its best setting overall (:func:`widen`).
2. **Best-known rows**: a head whose best-known rate is not the reference's is trained
   at it with every seed, at every cut, for the largest budget (a head whose
   best-known setting is its 2-epoch search already has those rows in ``budget.json``).
3. **The curve** under the reference protocol: :data:`CURVE_HEADS` at every cut and
   seed, frozen and then for each budget (largest first), and :data:`ABLATION_HEADS`
   at the first cut for the largest budget.
4. **The control**, after the curve heads' rows at the largest budget and before the
   ablation heads (the verdict reads it, not them): the whole network (:data:`CONTROL`)
   trained on by the same recipe for the largest budget, every seed, at the reference
   rate and at VI-Net's best-known rate. An end-to-end head trains its cut network for
   that many more epochs than the base had; claim (a)'s drop is also read against a
   full network that had as many.

``--curve-only`` runs the curve heads at the reference rate alone (no sweep, no
best-known rows, no ablation heads): the reference protocol on a second data set, where
the sweep of the first already showed what the rate changes.

A rerun keeps every row of a record made on the same base (all its parameters and
buffers), data, run values and rule, trained at the same settings, and trains only
what is missing; per-epoch checkpoints live under ``<run>/budget/heads`` (ignored).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from vinet_utils.workflow import params as P
from vinet_utils.experiments.budget import (FrozenHeads, curve_arguments, fit_seed, head_settings,
                                            identity)
from vinet_utils.common.results import checksum, jsonable, portable_params, read_json
from vinet_utils.common.seeds import derive_seed
from vinet_utils.common.stats import mean_interval

#: The rule that fixes the reference learning rate, as every results file records it.
RULE = ("a tenth of the base's peak learning rate, scaled linearly to the fine-tuning "
        "batch size")
#: The share of the base's peak rate that :data:`RULE` takes.
RULE_SHARE = 0.1
#: The heads of the curve and of the sweep; the paper's ablation heads join at one cut.
CURVE_HEADS = ("VI-Net", "linear (flatten)", "MLP")
ABLATION_HEADS = ("projection + linear", "random monomials")
#: The control: the full network trained on by the reference recipe, as a row of its own
#: "cut" (:func:`control_settings`).
CONTROL, CONTROL_CUT = "full network", "full"
#: The setting that takes each head's own 2-epoch-searched end-to-end values.
SEARCHED = "searched at 2 epochs"
#: The sweep's rates are the reference's times 4**k, |k| <= MAX_POWER.
MAX_POWER = 3


def reference_lr(base: dict, batch_size: int) -> float:
    """The one learning rate of head and base at ``batch_size``: :data:`RULE` on the
    base's own training config ``base`` (its ``train_config`` record: ``lr`` at
    ``batch_size``)."""
    from vinet_utils.network.train import scaled_lr
    return RULE_SHARE * scaled_lr(base["lr"], batch_size, base["batch_size"])


def label(power: int) -> str:
    """``reference``, ``reference x 4``, ``reference / 16``: the rate 4**power times the
    reference's."""
    if power == 0:
        return "reference"
    return f"reference {'x' if power > 0 else '/'} {4 ** abs(power)}"


def searched_heads(values: dict) -> tuple:
    """The curve heads with end-to-end settings of their own, chosen by a 2-epoch search of
    the profile ``values`` (``unfreeze_lr``, VI-Net's in the profile, the others' in
    ``rival_settings``): the heads the sweep also tries at :data:`SEARCHED`. A profile
    without such a search (``cpu-cifar100``) sweeps the reference's rates alone."""
    return tuple(h for h in CURVE_HEADS if "unfreeze_lr" in head_settings(values, h))


def setting(values: dict, base: dict, head: str, name: str) -> dict:
    """What setting ``name`` (:func:`label` or :data:`SEARCHED`) trains ``head`` with,
    on the profile's ``values`` and the base's training config ``base``: the recipe
    (``base``: the base's; ``search``: the 2-epoch search's, label smoothing 0), the
    learning rate, the base's share of it and the BatchNorm rule."""
    if name == SEARCHED:
        own = head_settings(values, head)
        if "unfreeze_lr" not in own:
            raise ValueError(f"setting {SEARCHED!r} needs {head}'s end-to-end settings from a 2-epoch search "
                             f"of this profile (unfreeze_lr), and the profile '{values.get('profile')}' has "
                             f"none; its sweep trains it at the reference's rates alone")
        return {"recipe": "search", "lr": own["unfreeze_lr"],
                "base_lr_scale": own["unfreeze_base_lr_scale"],
                "bn_stats": own["unfreeze_bn_stats"]}
    power = next((k for k in range(-MAX_POWER, MAX_POWER + 1) if label(k) == name), None)
    if power is None:
        raise ValueError(f"setting must be {SEARCHED!r} or one of "
                         f"{', '.join(label(k) for k in range(-MAX_POWER, MAX_POWER + 1))} "
                         f"(got {name!r})")
    lr = reference_lr(base, values["finetune_batch_size"]) * 4.0 ** power
    return {"recipe": "base", "lr": lr, "base_lr_scale": 1.0,
            "bn_stats": "update"}


#: What the reference recipe takes from the base's own training config.
BASE_RECIPE = ("momentum", "weight_decay", "label_smoothing", "schedule", "warmup_frac")


def train_config(values: dict, base: dict, s: dict, epochs: int, seed: int):
    """The :class:`~vinet_utils.network.train.TrainConfig` of setting ``s`` (:func:`setting`):
    the base's :data:`BASE_RECIPE` for the ``base`` recipe, the defaults the 2-epoch
    search trained with for ``search``."""
    from vinet_utils.network.train import TrainConfig
    own = {k: base[k] for k in BASE_RECIPE} if s["recipe"] == "base" else {}
    return TrainConfig(epochs=epochs, lr=s["lr"], batch_size=values["finetune_batch_size"],
                       seed=seed, **own)


def recipe(values: dict, base: dict) -> dict:
    """The reference recipe as results files record it."""
    return {"rule": RULE, "rule_share": RULE_SHARE,
            "reference_lr": reference_lr(base, values["finetune_batch_size"]),
            "base_lr": base["lr"], "base_batch_size": base["batch_size"],
            "batch_size": values["finetune_batch_size"], "optimizer": "SGD (Nesterov)",
            **{k: base[k] for k in BASE_RECIPE}, "base_lr_scale": 1.0, "bn_stats": "update",
            "starts_from": "each head's own searched frozen head"}


def best_known(rows: list[dict], head: str) -> dict | None:
    """``{"setting", "val_acc", "at_edge"}``: ``head``'s best sweep row on validation
    (ties: the reference first, then the smaller rate), and whether its rate is at an
    end of the rates tried; None before the head has a sweep row."""
    mine = [r for r in rows if r["head"] == head and r.get("sweep")]
    if not mine:
        return None
    top = _top(mine)
    rates = [r for r in mine if r.get("power") is not None]
    return {"setting": top["setting"], "val_acc": top["val_acc"], "power": top.get("power"),
            "at_edge": top.get("power") is not None and _at_end(top["power"], rates)}


def _top(rows: list[dict]) -> dict:
    """The best of sweep ``rows`` on validation; ties: the reference first, then the smaller rate."""
    return min(rows, key=lambda r: (-r["val_acc"], r["setting"] != "reference", r["lr"]))


def _at_end(power: int, rates: list[dict]) -> bool:
    """Whether ``power`` is the lowest or highest of the sweep ``rates`` tried (of two or
    more), other than the reference's own."""
    powers = sorted(r["power"] for r in rates)
    return len(powers) > 1 and power in (powers[0], powers[-1]) and power != 0


def widen(rows: list[dict], head: str) -> int | None:
    """The next power of the reference rate to try for ``head``, given its finished sweep
    rows: one step beyond its best *rate* where that sits at an end of the rates tried
    (not the reference's own), whatever its best setting overall; None otherwise. A
    head whose 2-epoch-searched setting edges out its best rate is still widened: the
    rates must not stop short where they were still rising."""
    rates = [r for r in rows if r["head"] == head and r.get("sweep") and r.get("power") is not None]
    if not rates:
        return None
    power = _top(rates)["power"]
    if not _at_end(power, rates) or abs(power) >= MAX_POWER:
        return None
    return power + (1 if power > 0 else -1)


def sweep_trainings(rows: dict, variants, budgets, searched=CURVE_HEADS) -> list[tuple]:
    """The sweep's trainings, done or not, given the finished ``rows``: every curve head
    at the reference rate, a quarter of it, four times it and, for the ``searched`` heads
    (:func:`searched_heads`), its 2-epoch search's settings, at the first cut for the
    largest budget, seed 0; and one step further out for a head whose best rate sits at an
    end of its rates (:func:`widen`)."""
    cut, top = variants[0], max(budgets)
    done = [r for r in rows.values() if r.get("sweep")]
    todo = []
    for name in [label(0), label(-1), label(1), SEARCHED]:
        todo += [(cut, h, 0, top, name) for h in CURVE_HEADS if name != SEARCHED or h in searched]
    for h in CURVE_HEADS:  # widen an edge once more by the same factor
        step = widen(done, h)
        if step is not None:
            todo.append((cut, h, 0, top, label(step)))
    return todo


def control_settings(done: list[dict]) -> list[str]:
    """The rates the full network is trained on at (:data:`CONTROL`): the reference's, and
    VI-Net's best-known rate in the finished sweep rows ``done`` where that is another
    rate (a best at its 2-epoch search's settings has no one rate for the whole network)."""
    best = best_known(done, "VI-Net")
    extra = [] if best is None or best["power"] in (None, 0) else [best["setting"]]
    return [label(0), *extra]


def plan(rows: dict, variants, seeds: int, budgets, curve_only: bool = False,
         whole: bool = False, searched=CURVE_HEADS) -> list[tuple]:
    """The trainings still to run, in order, as ``(variant, head, seed, budget, setting)``,
    given the finished ``rows`` (keyed the same way): the sweep first, widened where a
    best sits at an end; then the best-known rows; then the curve, with the control
    after the curve heads at the largest budget, before the ablation heads. With
    ``curve_only``, :data:`CURVE_HEADS` at the reference rate alone, largest budget first.
    Until the sweep is done only its missing trainings are returned (what comes after
    depends on them); with ``whole``, everything still to run as the sweep stands now.
    ``searched``: the heads with a 2-epoch search of their own (:func:`sweep_trainings`)."""
    if curve_only:
        todo = [(v, h, r, b, label(0)) for b in sorted(budgets, reverse=True) for v in variants
                for r in range(seeds) for h in CURVE_HEADS]
        return [k for k in todo if k not in rows]
    cut, top = variants[0], max(budgets)  # where the sweep trains, and how long
    done = [r for r in rows.values() if r.get("sweep")]
    todo = sweep_trainings(rows, variants, budgets, searched)
    missing = [k for k in todo if k not in rows]
    if missing and not whole:
        return missing
    for h in CURVE_HEADS:
        best = best_known(done, h)
        if best and best["setting"] not in (label(0), SEARCHED):
            todo += [(v, h, r, top, best["setting"]) for v in variants
                     for r in range(seeds)]
    for b in sorted(budgets, reverse=True):
        todo += [(v, h, r, b, label(0)) for v in variants for r in range(seeds)
                 for h in CURVE_HEADS]
        if b == top:  # what the verdict reads at the largest budget first: the control
            todo += [(CONTROL_CUT, CONTROL, r, b, s) for s in control_settings(done)
                     for r in range(seeds)]
            todo += [(cut, h, r, b, label(0)) for r in range(seeds) for h in ABLATION_HEADS]
    return [k for k in dict.fromkeys(todo) if k not in rows]


def summary(rows: list[dict], seeds: int) -> list[dict]:
    """Per cut, head, budget and setting with every seed: the mean test and validation
    accuracies and their 95% t intervals."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["variant"], r["head"], r["budget_epochs"], r["setting"]), []).append(r)
    out = []
    for (v, h, b, s), rs in groups.items():
        if len(rs) < seeds:
            continue
        out.append({"variant": v, "head": h, "budget_epochs": b, "setting": s,
                    **mean_interval([r["test_acc"] for r in rs]),
                    "val": mean_interval([r["val_acc"] for r in rs])})
    return out


def run(profile: str = "cpu", dataset: str | None = None, arch: str | None = None,
        variants=("tiny", "small"), budgets=(2, 6, 18), seeds: int = 3, results_dir=None,
        command: str = "", overrides: dict | None = None, progress: bool = False,
        stop_after: int | None = None, curve_only: bool = False) -> Path:
    """Run what :func:`plan` says is missing (at most ``stop_after`` trainings; the curve
    alone with ``curve_only``); returns ``<run>/reference.json``."""
    import matplotlib.pyplot as plt

    from vinet_utils.method import latents as L
    from vinet_utils.report import figures
    from vinet_utils.experiments.ablations import finetune_end_to_end, train_whole
    from vinet_utils.experiments.sweep import start_search
    from vinet_utils.common.paper import ABLATION_SETTING
    from vinet_utils.network.models import removed_pct
    from vinet_utils.network.train import evaluate, latent_batches
    from vinet_utils.report.cifar100 import reference_curve

    def check(values):
        if not budgets or any(not isinstance(b, int) or b < 1 for b in budgets):
            raise ValueError(f"--budgets takes whole numbers of epochs >= 1 (got {list(budgets)})")
        if seeds < 2:
            raise ValueError(f"--seeds must be at least 2 for an interval (got {seeds})")
        if not values.get("holdout_frac"):
            raise ValueError("the reference protocol scores its sweep on held-out images: "
                             "the run needs holdout_frac > 0 (the cpu profile holds 10% out)")

    S = start_search("reference", profile, dataset, arch, variants, seeds, 0.1, results_dir,
                     overrides, check)
    values, model, seed = S.values, S.model, S.seed
    removed = {v: removed_pct(model, values["arch"], v) for v in variants}
    path, cache = S.run_dir / "reference.json", S.run_dir / "budget"
    heads = (*CURVE_HEADS, *ABLATION_HEADS)
    searched = searched_heads(values)  # the heads with a 2-epoch end-to-end search of their own
    frozen_settings = {h: head_settings(values, h) for h in heads}
    base = {"state_checksum": checksum(model.state_dict().values()),
            "test_acc": S.baseline["metrics"]["test_acc"]}
    cfg0 = S.baseline["train_config"]  # the base's own recipe
    ident = jsonable({**identity(portable_params(S.stage.params), base, S.stage.data),
                      "recipe": recipe(values, cfg0), "frozen_settings": frozen_settings})
    old = read_json(path) if path.exists() else None
    rows = {}
    if old and old["metrics"].get("identity") == ident:
        rows = {(r["variant"], r["head"], r["seed"], r["budget_epochs"], r["setting"]): r
                for r in old["metrics"]["rows"]
                if r["setting"] == "frozen" or jsonable(setting(values, cfg0, r["head"], r["setting"]))
                == {k: r[k] for k in ("recipe", "lr", "base_lr_scale", "bn_stats")}}
        print(f"  kept {len(rows)} finished trainings of {P.shown(path)}", flush=True)
    F = FrozenHeads(S, frozen_settings, cache, progress)
    held = {}

    def frozen(v, r, h):
        cf, head, tag, res = F.get(v, r, h)
        if (v, h, r, 0, "frozen") not in rows or res is not None:
            if v not in held:
                held[v] = L.cached_latents(model, values["arch"], v, S.ds, S.run_dir,
                                           values["pool"], progress=progress, holdout=True)
            val = evaluate(head, latent_batches(held[v]["holdout"], held[v]["holdout_y"], 4096,
                                                shuffle=False), amp=False)["acc"]
            acc = res["acc"] if res is not None else rows[v, h, r, 0, "frozen"]["test_acc"]
            rows[v, h, r, 0, "frozen"] = {
                "variant": v, "head": h, "seed": r, "budget_epochs": 0, "setting": "frozen",
                "fit_seed": fit_seed(seed, r), "test_acc": acc, "val_acc": val,
                "frozen_head": checksum(head.state_dict().values()),
                "wall_time_s": res["wall_time_s"] if res is not None else 0.0}
        return cf, head, tag

    def write():
        left = plan(rows, variants, seeds, budgets, curve_only, whole=True, searched=searched)
        ordered = sorted(rows.values(), key=lambda r: (r["budget_epochs"], r["variant"],
                                                       r["setting"], r["head"], r["seed"]))
        sweep = {h: {"rows": [{k: r[k] for k in ("setting", "lr", "val_acc", "test_acc")}
                              for r in ordered if r["head"] == h and r.get("sweep")],
                     "best_known": best_known(ordered, h)} for h in CURVE_HEADS}
        S.stage.write(path, {"command": command, "identity": ident, "recipe": recipe(values, cfg0),
                             "variants": list(variants), "budgets": [0, *budgets],
                             "seeds": seeds, "sweep_at": {"cut": variants[0], "budget": max(budgets),
                                                          "seed": 0, "scored_on": "holdout"},
                             "sweep": sweep, "frozen_settings": frozen_settings,
                             "trainings_time_s": sum(r["wall_time_s"] for r in ordered),
                             "rows": ordered, "summary": summary(ordered, seeds),
                             "still_to_run": len(left),
                             "still_to_run_by_budget": {str(b): sum(k[3] == b for k in left)
                                                        for b in budgets},
                             "curve_only": curve_only, "removed_pct": removed,
                             "sweep_done": not curve_only and all(k in rows for k in
                                                                  sweep_trainings(rows, variants, budgets, searched))})
        rec = read_json(path)
        plt.close(figures.reference(rec, path=S.run_dir / "reference.png"))
        if (values["dataset"], values["arch"]) == ABLATION_SETTING:  # the paper's ablation axes
            plt.close(figures.budget_ablation({"metrics": reference_curve(rec["metrics"])},
                                              path=S.run_dir / "reference_ablation.png"))
        print(f"written: {P.shown(path)} ({len(rows)} trainings)", flush=True)

    n = 0
    while True:
        todo = plan(rows, variants, seeds, budgets, curve_only, searched=searched)
        if not todo or (stop_after is not None and n >= stop_after):
            break
        v, h, r, b, name = todo[0]
        s = setting(values, cfg0, h, name)
        rate = "" if name == SEARCHED else f"-{name.replace(' ', '').replace('/', 'over')}"
        if h == CONTROL:
            tag, start = f"full-r{r}", base["state_checksum"]
        else:
            cf, head, tag = frozen(v, r, h)
            start = rows[v, h, r, 0, "frozen"]["frozen_head"]
        cfg = train_config(values, cfg0, s, b, derive_seed(seed, tag, "end to end", b))
        if h == CONTROL:
            rec = train_whole(model, S.ds, cfg, cache, f"{tag}-b{b}{rate}", progress=progress)
        else:
            rec = finetune_end_to_end(model, cf, head, S.ds, cfg, cache, f"{tag}-b{b}{rate}",
                                      progress=progress, base_lr_scale=s["base_lr_scale"],
                                      bn_stats=s["bn_stats"], validate=True)
        power = next((k for k in range(-MAX_POWER, MAX_POWER + 1) if label(k) == name), None)
        rows[v, h, r, b, name] = {
            "variant": v, "head": h, "seed": r, "budget_epochs": b, "setting": name, **s,
            "power": power,
            "sweep": (v, r, b) == (variants[0], 0, max(budgets)) and h in CURVE_HEADS,
            "test_acc": rec["metrics"]["test_acc"], "val_acc": rec["metrics"]["val_acc"],
            "frozen_head": start,
            "wall_time_s": rec["metrics"]["train_time_s"]}  # every epoch, over every session
        print(f"  {v} {h} seed {r}, {b} epochs, {name} (lr {s['lr']:.4g}): "
              f"val {rec['metrics']['val_acc']:.2f}, test {rec['metrics']['test_acc']:.2f}",
              flush=True)
        write()
        n += 1
    write()
    return path


def main(argv=None) -> None:
    ap = curve_arguments(__doc__.split("\n\n")[0])
    ap.add_argument("--stop-after", type=int, default=None,
                    help="stop after this many end-to-end trainings (a later run goes on)")
    ap.add_argument("--curve-only", action="store_true",
                    help="the curve heads at the reference rate alone: no sweep, no best-known "
                         "rows, no ablation heads")
    a = ap.parse_args(argv)
    args = list(argv or sys.argv[1:])
    if "--results-dir" in args:  # a folder of this machine is not the run's business
        i = args.index("--results-dir")
        del args[i:i + 2]
    cmd = "python -m vinet_utils.experiments.reference " + " ".join(shlex.quote(x) for x in args)
    try:
        run(a.profile, a.dataset, a.arch, a.variants, a.budgets, a.seeds, a.results_dir, cmd,
            stop_after=a.stop_after, curve_only=a.curve_only)
    except ValueError as err:
        raise SystemExit(str(err)) from None


if __name__ == "__main__":
    sys.exit(main())
