"""The budget curve: how each head's test accuracy grows with the end-to-end budget.

    python -m vinet_utils.experiments.budget --profile cpu --variants tiny small --budgets 2 6 18 \\
        --seeds 3 --heads VI-Net "linear (flatten)" MLP

The paper's VI-Net loses far less to its base than a head trained on a frozen base
does. Whether that comes from the polynomial layer or from training the base with it
is a question of budget: this runs every named head, at every cut, first with the
base frozen (budget 0) and then fine-tuned end to end for each budget of epochs, every
head at its own searched settings (the profile's values for VI-Net, its
``rival_settings`` for the others: :mod:`vinet_utils.experiments.protocol`).

Seed ``r`` varies everything random: the head's initial weights and batch order,
the end-to-end training's, and, for ``r`` > 0, the PCA and the per-class subsample
OAVI is fitted on (seed 0 is notebook 03's fit). Accuracies are on the test split;
every choice was made on the validation split before.

The work goes budget by budget: every head, cut and seed finishes a budget before
the next budget starts, and ``<run>/budget.json`` is written after every training, so
a stopped run keeps what it finished. A rerun resumes at two levels:

- every training is checkpointed per epoch under ``<run>/budget/`` (ignored by git);
- every finished training is a row of ``budget.json`` (committed): a rerun keeps the
  rows of a record made on the same base, data and run values (:func:`reusable_rows`),
  for each head whose settings have not changed, and trains only what is missing.
  A machine without the checkpoints (a fresh clone) thus continues a committed curve
  where it stopped; the frozen head an end-to-end training starts from is trained
  again when needed, with the same seed (on another machine its accuracy may differ
  in the second decimal: the row is replaced by the new one).

``budgets_done`` lists the budgets every cut has finished, ``cuts_done`` the cuts
each budget has finished (every head and seed). Writes ``<run>/budget.png`` too.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from vinet_utils.workflow import params as P
from vinet_utils.common.results import checksum, jsonable, portable_params, read_json
from vinet_utils.common.seeds import derive_seed
from vinet_utils.common.stats import mean_interval

#: The heads drawn by default: VI-Net, the paper's ablation head, and a head of VI-Net's
#: size without polynomials.
DEFAULT_HEADS = ("VI-Net", "linear (flatten)", "MLP")


def head_settings(values: dict, head: str, e2e_values: dict | None = None) -> dict:
    """The settings ``head`` trains with (:func:`vinet_utils.experiments.ablations.head_settings`)
    from the profile's ``values``, notebook 05's end-to-end defaults beneath them; with
    ``e2e_values`` (another profile's values), its end-to-end knobs
    (:data:`vinet_utils.experiments.protocol.E2E_SPACE`) come from that profile's search instead."""
    from vinet_utils.experiments.ablations import head_settings as settings_of
    from vinet_utils.experiments.protocol import E2E_SPACE

    own = {"unfreeze_base_lr_scale": 1.0, "unfreeze_bn_stats": "update", **values}
    out = settings_of(head, own, values.get("rival_settings"))
    if e2e_values is not None:
        other = head_settings(e2e_values, head)
        out.update((k, other[k]) for k in E2E_SPACE)
    return out


def stale_heads(rec: dict) -> list[str]:
    """The heads of the budget curve's results record ``rec`` (``budget.json``) that
    trained at settings their profile no longer gives them (it has adopted a newer
    search since, for them or, with ``e2e_settings_from``, for the profile whose
    end-to-end settings they took): their rows stand for the old settings until
    ``make budget`` trains them again. A record that names no profile or settings has
    nothing to be checked against: none."""
    from vinet_utils.workflow.pipeline import load_profile

    m = rec["metrics"]
    if "profile" not in rec.get("params", {}) or "settings" not in m:
        return []
    values = load_profile(rec["params"]["profile"])
    other = load_profile(m["e2e_settings_from"]) if m.get("e2e_settings_from") else None
    return [h for h, s in m["settings"].items() if head_settings(values, h, other) != s]


#: Run values that do not shape a budget row: the heads' own settings are compared one
#: head at a time (``settings``), and a curve may be rerun with other cuts or seeds.
NOT_SHAPING = ("rival_settings", "variants", "seeds")


def identity(params: dict, base: dict, data: dict | None) -> dict:
    """What shapes every row of a curve besides its head's settings: the run's values,
    the base (``{"checksum", "test_acc"}``: its weights' checksum and test accuracy)
    and the data (its provenance)."""
    return {"values": {k: v for k, v in params.items() if k not in NOT_SHAPING},
            "base": base, "data": data}


def reusable_rows(rec: dict | None, ident: dict, settings: dict) -> dict:
    """The rows of an earlier curve's record ``rec`` that a run with identity ``ident``
    (:func:`identity`) and per-head ``settings`` may keep, keyed ``(variant, head,
    seed, budget)``: none when the record was made on another base, other data or
    other run values; else the rows of every head whose recorded settings equal its
    settings now. The base is compared by what the record names of it: its checksum
    over every parameter and buffer (BatchNorm statistics included) where recorded, its
    parameters' checksum in records before that, and its test accuracy alone before
    the checksum was recorded."""
    if not rec or "rows" not in rec.get("metrics", {}):
        return {}
    m = rec["metrics"]
    base = m.get("base") or {"test_acc": m.get("baseline_test_acc")}
    theirs = identity(rec.get("params", {}), base, rec.get("data"))
    ours = {**ident, "base": {k: ident["base"].get(k) for k in base}}
    if theirs != ours:
        return {}
    same = {h for h, s in m.get("settings", {}).items() if settings.get(h) == s}
    return {(r["variant"], r["head"], r["seed"], r["budget_epochs"]): r
            for r in m["rows"] if r["head"] in same}


def fit_seed(seed: int, r: int) -> int:
    """The seed of repetition ``r``'s PCA and OAVI subsample (``r`` = 0: the run's own)."""
    return seed if r == 0 else derive_seed(seed, "budget", "fit", r)



class FrozenHeads:
    """The OAVI fits and frozen heads a curve's end-to-end trainings start from, on the
    finished run of the search ``S`` (:func:`vinet_utils.experiments.sweep.start_search`): each
    head at its own frozen ``settings``, checkpointed under ``cache`` (``<run>/budget``),
    so the budget curve and the reference protocol start from the same heads."""

    def __init__(self, S, settings: dict, cache: Path, progress: bool = False):
        self.S, self.settings, self.cache, self.progress = S, settings, cache, progress
        self.fits, self.heads = {}, {}

    def fit(self, v: str, r: int):
        """Cut ``v``'s latents and OAVI fit for repetition ``r`` (:func:`fit_seed`)."""
        from vinet_utils.method import ideals
        from vinet_utils.method import latents as L
        from vinet_utils.network.models import resolve_cut

        S, values = self.S, self.S.values
        if (v, r) not in self.fits:
            print(f"  {v} seed {r}: latents and the OAVI fit", flush=True)
            lat = L.cached_latents(S.model, values["arch"], v, S.ds, S.run_dir, values["pool"],
                                   progress=self.progress)
            where = S.run_dir if r == 0 else self.cache / f"fit-{r}"
            self.fits[v, r] = ideals.fit_latents(
                lat, v, resolve_cut(values["arch"], v), values["pool"], S.ds.num_classes, where,
                seed=fit_seed(S.seed, r), progress=self.progress, **ideals.fit_settings(values))
        return self.fits[v, r]

    def get(self, v: str, r: int, h: str) -> tuple:
        """``(fit, trained head, tag, train_seeds result)`` of head ``h`` trained on the
        frozen base at cut ``v``, seed ``r`` (from its checkpoint when there is one); the
        result is None when this object trained it before."""
        from vinet_utils.experiments.protocol import head_makers
        from vinet_utils.network.train import TrainConfig, train_seeds
        from vinet_utils.method.vinet import safe_name

        if (v, r, h) in self.heads:
            return (*self.heads[v, r, h], None)
        values = self.S.values
        cf = self.fit(v, r)
        vals = {**values, **self.settings[h]}
        make = head_makers(cf, vals, self.S.ds.num_classes, vals["train_projection"])[h]
        cfg = TrainConfig(epochs=values["finetune_epochs"], lr=self.settings[h]["finetune_lr"],
                          batch_size=values["finetune_batch_size"], seed=self.S.seed)
        tag = f"{cf.layer}-budget-{safe_name(h)}-r{r}"
        res = train_seeds(make, cf.latents, cfg, self.cache, tag, 1, self.S.seed,
                          progress=self.progress)
        self.heads[v, r, h] = (cf, res["heads"][0], tag)
        print(f"  {v} {h} seed {r} frozen: {res['acc']:.2f}", flush=True)
        return cf, res["heads"][0], tag, res


def run(profile: str, dataset: str | None = None, arch: str | None = None,
        variants=("tiny", "small"), budgets=(2, 6, 18), seeds: int = 3, heads=DEFAULT_HEADS,
        results_dir=None, command: str = "", overrides: dict | None = None,
        progress: bool = False, e2e_from: str | None = None) -> Path:
    """The curve on a finished run; returns ``<run>/budget.json``. With ``e2e_from`` (a
    profile's name), every head is fine-tuned end to end as that profile's search chose
    (for a run whose own profile had no end-to-end search)."""
    from vinet_utils.report import figures as plots
    from vinet_utils.experiments.ablations import END_TO_END_HEADS, finetune_end_to_end
    from vinet_utils.network.models import removed_pct
    from vinet_utils.common.paper import ABLATION_SETTING
    from vinet_utils.workflow.pipeline import available_profiles, load_profile
    from vinet_utils.experiments.sweep import start_search
    from vinet_utils.network.train import TrainConfig
    import matplotlib.pyplot as plt  # after plots, which chooses the backend

    other = None  # the profile whose end-to-end search every head takes
    if e2e_from is not None:
        P.choice("--e2e-from", e2e_from, available_profiles())
        other = load_profile(e2e_from)

    def check(values):
        for h in heads:
            P.choice("--heads", h, END_TO_END_HEADS)
        if not budgets or any(not isinstance(b, int) or b < 1 for b in budgets):
            raise ValueError(f"--budgets takes whole numbers of epochs >= 1 (got {budgets})")
        if seeds < 2:
            raise ValueError(f"--seeds must be at least 2 for an interval (got {seeds})")
        unset = [h for h in heads if "unfreeze_lr" not in head_settings(values, h, other)]
        if unset:
            raise ValueError(f"the end-to-end budgets need unfreeze_lr for {', '.join(unset)}, "
                             f"which the profile does not set: search it (make protocol "
                             f"E2E=...) or take another profile's search with --e2e-from")

    S = start_search("budget", profile, dataset, arch, variants, seeds, 0.1, results_dir,
                     overrides, check)
    values, model, seed = S.values, S.model, S.seed
    removed = {v: removed_pct(model, values["arch"], v) for v in variants}
    cache = S.run_dir / "budget"
    path = S.run_dir / "budget.json"
    settings = {h: head_settings(values, h, other) for h in heads}
    base = {"checksum": checksum(model.parameters()),  # kept: earlier records name it
            "state_checksum": checksum(model.state_dict().values()),  # buffers too
            "test_acc": S.baseline["metrics"]["test_acc"]}
    ident = jsonable(identity(portable_params(S.stage.params), base, S.stage.data))
    earlier = reusable_rows(read_json(path) if path.exists() else None, ident, settings)
    all_budgets = [0, *budgets]
    done_rows = {k: r for k, r in earlier.items()
                 if k[0] in variants and k[1] in heads and k[2] < seeds and k[3] in all_budgets}
    if done_rows:
        print(f"  kept {len(done_rows)} finished trainings of {P.shown(path)} "
              f"(same base, data and settings)", flush=True)
    F = FrozenHeads(S, settings, cache, progress)

    def cuts_done() -> dict:
        """Per budget, the cuts at which every head and seed has its row."""
        return {b: [v for v in variants
                    if all((v, h, r, b) in done_rows for h in heads for r in range(seeds))]
                for b in all_budgets}

    def write():
        cuts = cuts_done()
        rows = [done_rows[v, h, r, b] for b in all_budgets for v in variants
                for r in range(seeds) for h in heads if (v, h, r, b) in done_rows]
        S.stage.write(path, {"command": command, "variants": list(variants), "heads": list(heads),
                             "budgets_done": [b for b, c in cuts.items() if len(c) == len(variants)],
                             "cuts_done": {str(b): c for b, c in cuts.items() if c},
                             "budgets": all_budgets, "seeds": seeds,
                             "e2e_settings_from": e2e_from, "removed_pct": removed,
                             "trainings_time_s": sum(r["wall_time_s"] for r in rows),
                             "settings": settings, "base": base,
                             "baseline_test_acc": base["test_acc"],
                             "rows": rows, "summary": summary(rows, cuts)})
        figs = [plots.budget(read_json(path), path=S.run_dir / "budget.png")]
        if (values["dataset"], values["arch"]) == ABLATION_SETTING:
            figs.append(plots.budget_ablation(read_json(path),
                                              path=S.run_dir / "budget_ablation.png"))
        for fig in figs:  # written after every training: a long curve draws hundreds
            plt.close(fig)
        done = ", ".join(str(b) for b, c in cuts.items() if len(c) == len(variants))
        print(f"written: {P.shown(path)} (budgets done: {done})", flush=True)

    def frozen(v, r, h):
        """The head ``h`` frozen at cut ``v``, seed ``r`` (:meth:`FrozenHeads.get`): a
        head trained again for an end-to-end budget (its checkpoint lost) replaces a
        kept frozen row, so that the frozen row is that of the head the newest
        end-to-end trainings start from."""
        cf, head, tag, res = F.get(v, r, h)
        if res is not None:
            done_rows[v, h, r, 0] = {"variant": v, "head": h, "seed": r, "budget_epochs": 0,
                                     "test_acc": res["acc"], "wall_time_s": res["wall_time_s"]}
        return cf, head, tag

    for v in variants:  # budget 0: the base frozen
        for r in range(seeds):
            for h in heads:
                if (v, h, r, 0) not in done_rows:
                    frozen(v, r, h)
    write()
    for b in budgets:
        for v in variants:
            for r in range(seeds):
                for h in heads:
                    if (v, h, r, b) in done_rows:
                        continue
                    cf, head, tag = frozen(v, r, h)
                    hs = settings[h]
                    cfg = TrainConfig(epochs=b, lr=hs["unfreeze_lr"],
                                      batch_size=values["finetune_batch_size"],
                                      seed=derive_seed(seed, tag, "end to end", b))
                    rec = finetune_end_to_end(model, cf, head, S.ds, cfg, cache, f"{tag}-b{b}",
                                              progress=progress,
                                              base_lr_scale=hs["unfreeze_base_lr_scale"],
                                              bn_stats=hs["unfreeze_bn_stats"])
                    done_rows[v, h, r, b] = {"variant": v, "head": h, "seed": r,
                                             "budget_epochs": b,
                                             "test_acc": rec["metrics"]["test_acc"],
                                             "wall_time_s": rec["wall_time_s"]}
                    print(f"  {v} {h} seed {r} end to end, {b} epochs: "
                          f"{rec['metrics']['test_acc']:.2f}", flush=True)
                    write()
    return path


def summary(rows: list[dict], finished: dict | None = None) -> list[dict]:
    """Per cut, head and budget: the mean test accuracy and its 95% t interval; with
    ``finished`` (``{budget: [cuts]}``, as :func:`finished_cuts` gives), only at the
    cuts that have finished that budget (every head and seed), so that a budget under
    way is not drawn or compared on the seeds it has so far."""
    groups: dict = {}
    for r in rows:
        if finished is not None and r["variant"] not in finished.get(r["budget_epochs"], ()):
            continue
        groups.setdefault((r["variant"], r["head"], r["budget_epochs"]), []).append(r["test_acc"])
    return [{"variant": v, "head": h, "budget_epochs": b, **mean_interval(accs)}
            for (v, h, b), accs in groups.items()]


def curve_arguments(description: str) -> argparse.ArgumentParser:
    """The command line every end-to-end curve shares (this budget curve, the reference
    protocol): profile, dataset, arch, cuts, budgets, seeds, results folder."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--arch", default=None)
    ap.add_argument("--variants", nargs="+", default=["tiny", "small"])
    ap.add_argument("--budgets", nargs="+", type=int, default=[2, 6, 18],
                    help="end-to-end epochs, each after the frozen heads (budget 0)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--results-dir", default=None)
    return ap


def main(argv=None) -> None:
    ap = curve_arguments(__doc__.split("\n\n")[0])
    ap.add_argument("--heads", nargs="+", default=list(DEFAULT_HEADS))
    ap.add_argument("--e2e-from", default=None, metavar="PROFILE",
                    help="fine-tune every head end to end as this profile's search chose "
                         "(for a profile without an end-to-end search of its own)")
    a = ap.parse_args(argv)
    cmd = "python -m vinet_utils.experiments.budget " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    try:
        run(a.profile, a.dataset, a.arch, a.variants, a.budgets, a.seeds, a.heads,
            a.results_dir, cmd, e2e_from=a.e2e_from)
    except ValueError as err:
        raise SystemExit(str(err)) from None


if __name__ == "__main__":
    sys.exit(main())
