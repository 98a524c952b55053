"""How each head is trained, chosen on a validation split with the same number of
trials for every head: one Optuna study per head.

    python -m vinet_utils.protocol --profile cpu --variants tiny small --trials 8 \\
        --end-to-end tiny --e2e-trials 4 [--storage sqlite:///shared.db]

A verdict that ranks heads is only as good as the training of the worst-trained
head. This search gives every compared head (VI-Net, the linear head on the flattened
map, projection + linear, an MLP of VI-Net's size, random monomials) the same number
of trials, each the mean validation accuracy of ``--seeds`` trainings (at least 2)
over the searched cuts. Each head searches its own knobs (:data:`SPACES`): the
learning rate over four decades for all; the projection mode for the heads that
start with the projection; and, for VI-Net, its vanishing tolerance ``psi``, so the
one structural value it is tuned by counts against the same budget as everyone's.

With ``--end-to-end`` cuts, each head of notebook 05's end-to-end protocol then
starts from its best frozen trial's trained heads and is fine-tuned with the base
unfrozen, in a study of its own over :data:`E2E_SPACE` (the learning rate, the base's
share of it, whether the base's BatchNorm statistics move), again the same number of
trials for every head.

Where the run held images out of all training (``holdout_frac``; the ``cpu``
profile does), they are the validation split: the base never saw them. Otherwise a
stratified split is carved out of the training images and the results file says
that it overlaps the base's training. The test split is never read.

A chosen value in the outer tenth of its (log) range is flagged (:func:`edge_flags`):
the range stopped short, and the search must be widened and run again.

The studies live in ``--storage`` (default: ``<run>/protocol.db``, SQLite), so an
interrupted search resumes, a finished one replays, and several machines pointed at
one database share the trials. With one machine, the same seed gives the same choices.

Writes ``<run>/protocol.json`` (every trial per cut, each head's choice, flags, the
command) and ``<run>/protocol.png``.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
import statistics
import sys
from pathlib import Path

from . import params as P
from .results import read_json
from .polynomial import NoGenerators
from .train import TrainingDiverged

#: Heads that start with the projection, and so have a ``train_projection`` mode.
PROJECTED = ("VI-Net", "projection + linear", "random monomials")
#: Heads on the raw latents.
PLAIN = ("linear (flatten)", "MLP")
HEADS = PROJECTED + PLAIN
#: The projection modes (:data:`vinet_utils.latents.PROJECTION_MODES`).
MODES = (False, True, "slow", "normalized")
_LR = ("log", 1e-4, 1.0)
#: Each head's knobs with the base frozen: ``("log", low, high)`` or ``("cat", choices)``.
SPACES = {
    "VI-Net": {"finetune_lr": _LR, "train_projection": ("cat", MODES), "psi": ("log", 0.01, 0.5)},
    "projection + linear": {"finetune_lr": _LR, "train_projection": ("cat", MODES)},
    "random monomials": {"finetune_lr": _LR, "train_projection": ("cat", MODES)},
    "linear (flatten)": {"finetune_lr": _LR},
    "MLP": {"finetune_lr": _LR},
}
#: Every end-to-end head's knobs (the base unfrozen).
E2E_SPACE = {"unfreeze_lr": ("log", 1e-4, 1.0), "unfreeze_base_lr_scale": ("log", 0.01, 10.0),
             "unfreeze_bn_stats": ("cat", ("update", "frozen"))}
#: A chosen value this close to either end of its log range (as a share of it) is flagged.
EDGE = 0.1


def trial_label(trial: dict) -> str:
    """A trial as it is shown and tagged: ``train_projection=slow, finetune_lr=0.1``."""
    return ", ".join(f"{k}={_short(v)}" for k, v in trial.items())


def _short(v):
    return f"{v:.4g}" if isinstance(v, float) else v


def suggest(trial, space: dict) -> dict:
    """One Optuna ``trial``'s values over ``space``."""
    out = {}
    for name, spec in space.items():
        if spec[0] == "log":
            out[name] = trial.suggest_float(name, spec[1], spec[2], log=True)
        else:
            out[name] = trial.suggest_categorical(name, list(spec[1]))
    return out


def edge_flags(values: dict, space: dict, edge: float = EDGE) -> list[str]:
    """The knobs of ``values`` that sit in the outer ``edge`` of their log range."""
    flags = []
    for name, spec in space.items():
        if spec[0] == "log" and name in values:
            pos = (math.log(values[name]) - math.log(spec[1])) / (math.log(spec[2]) - math.log(spec[1]))
            if pos < edge or pos > 1 - edge:
                flags.append(name)
    return flags


def head_makers(cf, values: dict, num_classes: int, mode) -> dict:
    """Every compared head at ``cf``'s cut, its projection (where it has one) in
    ``mode``: name -> a function that makes a fresh head."""
    from .ablations import ablation_heads
    from .vinet import vinet_heads

    make, template, pr = vinet_heads(cf, values["keep_per_class"], num_classes, mode)
    return {"VI-Net": make, **ablation_heads(cf, pr.kept, template.count_params(),
                                             num_classes, mode)}


def open_study(storage: str, name: str, seed: int, startup: int):
    """The Optuna study ``name`` in ``storage`` (made when missing), TPE seeded by ``seed``.
    A stored study that is resumed gets a seed drawn from ``seed`` and the number of its
    stored trials: seeded as at its start, the sampler would draw its first points again,
    and the resumed study would repeat trials it already holds."""
    import optuna

    from .seeds import derive_seed

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                direction="maximize", load_if_exists=True)
    stored = len(study.trials)
    if stored:
        study.sampler = optuna.samplers.TPESampler(
            seed=derive_seed(seed, "resumed", stored), n_startup_trials=startup)
    return study


def open_e2e_study(storage: str, name: str, seed: int, startup: int, start: str):
    """An end-to-end study, which is only valid for the frozen trial its trials started
    from: ``start``'s label is stored with the study, and a stored study that started
    from another frozen trial is left as it is, the trials going to a study named after
    ``start`` instead (a frozen choice that changes never inherits the trials of the
    old one). A study stored before starts were recorded takes ``start`` as its own."""
    study = open_study(storage, name, seed, startup)
    began = study.user_attrs.get("start")
    if began is None:
        study.set_user_attr("start", start)
    elif began != start:
        study = open_study(storage, f"{name}/from {start}", seed, startup)
        study.set_user_attr("start", start)
    return study


def finished(study) -> list:
    """``study``'s finished trials, a trial that repeats the values of an earlier one left
    out: it retrains from the same checkpoints, so it is the same trial again (a study
    resumed before :func:`open_study` reseeded resumed studies could draw one)."""
    import optuna

    seen, out = set(), []
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE and _key(t.params) not in seen:
            seen.add(_key(t.params))
            out.append(t)
    return out


def optimize(study, objective, n_trials: int) -> None:
    """Run ``study`` until it holds ``n_trials`` finished trials of distinct values
    (resuming a stored one)."""
    for _ in range(3):  # a repeated draw is drawn again, a few times at most
        missing = n_trials - len(finished(study))
        if missing <= 0:
            return
        study.optimize(objective, n_trials=missing)


def _record(study, per_cut_of: dict) -> list[dict]:
    """Every finished trial of ``study`` (:func:`finished`): its values, objective and
    per-cut rows."""
    return [{"number": t.number, "values": t.params, "label": trial_label(t.params),
             "objective": t.value, "per_cut": per_cut_of.get(t.number) or t.user_attrs["per_cut"]}
            for t in finished(study)]


class Searcher:
    """The searches of one finished run: its validation latents per cut, the fits, the
    Optuna storage, and the trained heads of each trial (for the end-to-end studies)."""

    def __init__(self, S, variants, seeds: int, storage: str, progress: bool = False):
        self.S, self.variants, self.seeds, self.storage = S, list(variants), seeds, storage
        self.progress = progress
        self.lat = {v: S.latents(v) for v in self.variants}
        self.cache = S.run_dir / "protocol"
        self.trained = {}  # (head, its values) -> {cut: (fit, [trained heads])}

    def name(self, *parts) -> str:
        return "/".join([self.S.run_dir.name, *map(str, parts)])

    def fit(self, variant: str, values: dict):
        from .sweep import _fit
        return _fit(self.lat[variant], self.S.values["arch"], variant, values,
                    self.S.ds.num_classes, self.S.run_dir / "sweep", self.S.seed)

    def failed(self, reason: str = "diverged") -> dict:
        """A trial that trained no head (its training diverged, or no generator is left
        to build VI-Net from): it scores chance accuracy, and says why."""
        return {"val_acc": 100.0 / self.S.ds.num_classes, "val_acc_per_seed": None,
                "saturation": None, reason: True}

    def train_frozen(self, head: str, values: dict, variant: str):
        """``head`` trained ``seeds`` times with the base frozen at ``variant``, with the
        trial's ``values`` over the profile's: ``(fit, train_seeds result)``, kept for
        the end-to-end studies (checkpointed, so a resumed search reads them back)."""
        from .sweep import _head_config
        from .train import train_seeds

        vals = {**self.S.values, **values}
        cf = self.fit(variant, vals)
        make = head_makers(cf, vals, self.S.ds.num_classes, vals["train_projection"])[head]
        res = train_seeds(make, cf.latents, _head_config(vals, self.S.seed), self.cache,
                          _tag(cf, head, values), self.seeds, self.S.seed, progress=self.progress)
        self.trained.setdefault((head, _key(values)), {})[variant] = (cf, res["heads"])
        return cf, res

    def frozen(self, head: str, n_trials: int, space: dict | None = None,
               round_: int = 0) -> list[dict]:
        """``head``'s frozen-base study: ``n_trials`` trials, each scored by the mean over
        cuts of the mean validation accuracy of ``seeds`` trainings."""
        from .ablations import saturation

        space, rows = space or SPACES[head], {}

        def objective(trial):
            suggest(trial, space)
            per_cut = {}
            for v in self.variants:
                try:
                    cf, res = self.train_frozen(head, trial.params, v)
                except NoGenerators:  # psi so small that nothing vanishes: no VI-Net
                    per_cut[v] = self.failed("no_generators")
                    continue
                except TrainingDiverged:
                    per_cut[v] = self.failed()
                    continue
                per_cut[v] = {"val_acc": res["acc"], "val_acc_per_seed": res["acc_per_seed"],
                              "saturation": saturation(res["heads"][0], cf.latents["test"]),
                              "params": res["params"]}
            trial.set_user_attr("per_cut", per_cut)
            rows[trial.number] = per_cut
            score = statistics.fmean(r["val_acc"] for r in per_cut.values())
            print(f"  {head} #{trial.number} [{trial_label(trial.params)}]: {score:.2f}", flush=True)
            return score

        study = open_study(self.storage, self.name("frozen", head, *_round(round_)),
                           _seed(self.S.seed, "frozen", head, *_round(round_)),
                           startup=max(2, n_trials // 2))
        optimize(study, objective, n_trials)
        return _record(study, rows)

    def end_to_end(self, head: str, start: dict, cuts, n_trials: int, space: dict | None = None,
                   round_: int = 0) -> list[dict]:
        """``head``'s end-to-end study at ``cuts``, every trial starting from the trained
        heads of its best frozen trial ``start``: base unfrozen, on the images outside
        the validation split, scored on the validation images."""
        from .ablations import finetune_end_to_end
        from .train import TrainConfig

        ds_split, rows = self.S.image_split(), {}
        vals0 = {**self.S.values, **start["values"]}

        def objective(trial):
            knobs = suggest(trial, space or E2E_SPACE)
            per_cut = {}
            for v in cuts:
                cf, heads = self._start_heads(head, start, v)
                accs = []
                for r, trained in enumerate(heads):
                    cfg = TrainConfig(epochs=vals0["unfreeze_epochs"], lr=knobs["unfreeze_lr"],
                                      batch_size=vals0["finetune_batch_size"],
                                      seed=_seed(self.S.seed, "e2e", head, r))
                    tag = _tag(cf, head, {**start["values"], **knobs}) + f"-s{r}"
                    try:
                        rec = finetune_end_to_end(
                            self.S.model, cf, trained, ds_split, cfg, self.cache, tag,
                            progress=self.progress, base_lr_scale=knobs["unfreeze_base_lr_scale"],
                            bn_stats=knobs["unfreeze_bn_stats"])
                    except TrainingDiverged:
                        accs = None
                        break
                    accs.append(rec["metrics"]["test_acc"])  # the validation images
                frozen = start["per_cut"][v]["val_acc"]
                per_cut[v] = {**(self.failed() if accs is None else {
                    "val_acc": statistics.fmean(accs), "val_acc_per_seed": accs}),
                    "frozen_val_acc": frozen}
                per_cut[v]["gain"] = per_cut[v]["val_acc"] - frozen
            trial.set_user_attr("per_cut", per_cut)
            rows[trial.number] = per_cut
            score = statistics.fmean(r["val_acc"] for r in per_cut.values())
            print(f"  {head} end to end #{trial.number} [{trial_label(knobs)}]: {score:.2f}",
                  flush=True)
            return score

        study = open_e2e_study(self.storage, self.name("end to end", head, *cuts, *_round(round_)),
                               _seed(self.S.seed, "e2e", head, *_round(round_)),
                               max(2, n_trials // 2), start["label"])
        optimize(study, objective, n_trials)
        return _record(study, rows)

    def _start_heads(self, head: str, start: dict, variant: str):
        """The fit and the trained heads of ``head``'s frozen trial ``start`` at
        ``variant`` (retrained from their checkpoints when this process did not train
        them: a resumed search)."""
        got = self.trained.get((head, _key(start["values"])), {}).get(variant)
        if got is not None:
            return got
        cf, res = self.train_frozen(head, start["values"], variant)
        return cf, res["heads"]


def _tag(cf, head: str, values: dict) -> str:
    """A trial's checkpoint tag (and seed name): the cut, the head, a hash of its values."""
    import hashlib
    import json

    from .vinet import safe_name
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]
    return f"{cf.layer}-search-{safe_name(head)}-{digest}"


def _key(values: dict) -> str:
    import json
    return json.dumps(values, sort_keys=True)


def _round(round_: int) -> tuple:
    """The name part of a widened study (none for the first range: stored studies of
    the first range keep their names)."""
    return (f"widened {round_}",) if round_ else ()


#: How far a range may be widened, per knob.
LIMITS = {"finetune_lr": (1e-6, 10.0), "unfreeze_lr": (1e-6, 10.0), "psi": (1e-4, 1.0),
          "unfreeze_base_lr_scale": (1e-4, 100.0)}
#: How many times a flagged head's range is widened and searched again.
MAX_WIDEN = 2


def widen(space: dict, values: dict, flags: list[str]) -> dict:
    """``space`` with every flagged knob's range carried one decade further past the end
    its chosen value sat at (within :data:`LIMITS`)."""
    out = dict(space)
    for k in flags:
        _, lo, hi = space[k]
        pos = (math.log(values[k]) - math.log(lo)) / (math.log(hi) - math.log(lo))
        low, high = LIMITS.get(k, (0.0, math.inf))
        out[k] = ("log", max(lo / 10, low), hi) if pos < 0.5 else ("log", lo, min(hi * 10, high))
    return out


def search_widening(study, space: dict, n_trials: int, rounds: int = 1) -> dict:
    """Run ``study(space, round) -> trials`` and, while the best trial so far sits at an
    edge of the range and the range can still grow, widen it and search again with as
    many trials; a head whose range needs no widening still gets ``rounds`` rounds in
    its own range, so that every head can be given as many trials. The choice is the
    best trial of every round, judged against the last range: ``{"trials" (every round's, each with its "round"), "space", "flags",
    "earlier": [{"space", "best", "objective", "flags", "trials"}, ...]}``."""
    earlier, every = [], []
    for round_ in range(MAX_WIDEN + 1):
        trials = [{**t, "round": round_} for t in study(space, round_)]
        every += trials
        top = best(every)
        flags = edge_flags(top["values"], space)
        wider = widen(space, top["values"], flags) if flags else space
        if (not flags or wider == space or round_ == MAX_WIDEN) and round_ + 1 >= rounds:
            return {"trials": every, "space": space, "flags": flags, "earlier": earlier}
        if not flags or wider == space:  # as many rounds as the other heads: same range
            earlier.append({"space": space, "best": top["label"], "objective": top["objective"],
                            "flags": flags, "trials": len(trials)})
            continue
        earlier.append({"space": space, "best": top["label"], "objective": top["objective"],
                        "flags": flags, "trials": len(trials)})
        print(f"  flagged {flags}: searching again in {wider}", flush=True)
        space = wider


def equal_rounds(found: dict, studies: dict, spaces: dict, n_trials: int, kind: str = "") -> dict:
    """Give every head of ``studies`` (head -> ``study(space, round)``) as many rounds, so
    as many trials, as the most widened head of ``found`` (head -> its
    :func:`search_widening` result; heads kept from an earlier search count too), and
    again until no head is behind: a head searched again to catch up can be widened
    itself, and then the others catch up with it (rounds end at :data:`MAX_WIDEN`).
    Updates ``found`` and returns it."""
    while True:
        most = max((len(f["earlier"]) + 1 for f in found.values()), default=1)
        behind = [h for h in studies if len(found[h]["earlier"]) + 1 < most]
        if not behind:
            return found
        for head in behind:
            print(f"{head}: {most} rounds of {n_trials} {kind}trials, as the most widened head",
                  flush=True)
            found[head] = search_widening(studies[head], spaces[head], n_trials, rounds=most)


def _keep_recorded(path: Path, found: dict, heads, trials: int, seeds: int, variants) -> list:
    """Fill ``found`` with the frozen searches of the heads not searched now (not in
    ``heads``) as the results file at ``path`` recorded them, so that a search of some
    heads (``--heads``) updates their entries and keeps the others'. An earlier search
    with other trials per head, trainings per trial or cuts is not comparable: it
    raises instead. Returns the heads kept."""
    rest = [h for h in HEADS if h not in heads]
    if not rest or not path.exists():
        return []
    old = read_json(path)["metrics"]
    same = (old.get("trials_per_head") == trials and old.get("trainings_per_trial") == seeds
            and old.get("variants") == list(variants))
    if not same:
        raise ValueError(
            f"--heads {' '.join(heads)} keeps the other heads' searches from {P.shown(path)}, "
            f"which ran {old.get('trials_per_head')} trials of {old.get('trainings_per_trial')} "
            f"trainings on {old.get('variants')}; this search runs {trials} of {seeds} on "
            f"{list(variants)}: search every head, or match them")
    for h in rest:
        if h in old.get("frozen", {}):
            found[h] = {"trials": old["frozen"][h], "space": old["spaces"][h],
                        "flags": old.get("flags", {}).get(h, []),
                        "earlier": old.get("widened", {}).get(h, [])}
    return [h for h in rest if h in found]


def _seed(seed: int, *names) -> int:
    from .seeds import derive_seed
    return derive_seed(seed, "protocol", *names)


def best(trials: list[dict]) -> dict:
    """The trial with the best objective (ties: the earlier trial)."""
    return max(trials, key=lambda t: (t["objective"], -t.get("round", 0), -t["number"]))


def chosen_settings(result: dict) -> dict:
    """What a profile adopts from a protocol search's results ``result``: VI-Net's
    chosen values as the profile's own (``finetune_lr``, ``train_projection``, ``psi``
    and, searched end to end, ``unfreeze_lr``, ``unfreeze_base_lr_scale``,
    ``unfreeze_bn_stats``), and every other head's as its ``rival_settings`` entry
    (:data:`vinet_utils.params.RIVAL_SETTINGS`), rounded to 3 significant digits."""
    from .ablations import rival_of

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
    from .ablations import rival_of

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


def run(profile: str, dataset: str | None = None, arch: str | None = None,
        variants=("tiny", "small"), seeds: int = 2, val_frac: float = 0.1, results_dir=None,
        command: str = "", end_to_end=(), overrides: dict | None = None, trials: int = 8,
        e2e_trials: int = 4, storage: str | None = None, heads=HEADS,
        e2e_heads=None) -> Path:
    """The search on ``variants`` of a finished run, and end to end on the cuts
    ``end_to_end`` (among ``variants``); ``overrides`` replace profile values (as
    ``--set`` does for the pipeline). Returns the results file."""
    from . import plots
    from .ablations import END_TO_END_HEADS
    from .sweep import start_search

    def check(values):
        if not set(end_to_end) <= set(variants):
            raise ValueError(f"--end-to-end must be drawn from --variants {' '.join(variants)} "
                             f"(got {' '.join(end_to_end)})")
        missing = [k for k in ("unfreeze_epochs",) if k not in values]
        if end_to_end and missing:
            raise ValueError(f"--end-to-end needs the end-to-end budget, and params/{profile}.yaml "
                             f"sets no {' or '.join(missing)}")
        if seeds < 2:
            raise ValueError(f"--seeds must be at least 2: every trial is the mean of several "
                             f"trainings (got {seeds})")
        if trials < 2 or (end_to_end and e2e_trials < 2):
            raise ValueError(f"--trials and --e2e-trials must be at least 2 (got {trials}, "
                             f"{e2e_trials})")
        for h in heads:
            P.choice("--heads", h, HEADS)
        for h in e2e_heads or ():
            P.choice("--e2e-heads", h, END_TO_END_HEADS)
        recorded = P.run_path(results_dir, profile, values["dataset"], values["arch"]) / "protocol.json"
        _keep_recorded(recorded, {}, heads, trials, seeds, variants)  # one it cannot keep stops here

    S = start_search("protocol", profile, dataset, arch, variants, seeds, val_frac, results_dir,
                     overrides, check)
    storage = storage or f"sqlite:///{S.run_dir / 'protocol.db'}"
    search = Searcher(S, variants, seeds, storage)
    found, found_e2e = {}, {}
    kept = _keep_recorded(S.run_dir / "protocol.json", found, heads, trials, seeds, variants)
    for head in heads:
        print(f"{head}: {trials} trials with the base frozen", flush=True)
        found[head] = search_widening(
            lambda space, r, h=head: search.frozen(h, trials, space, r), SPACES[head], trials)
    equal_rounds(found, {h: (lambda space, r, h=h: search.frozen(h, trials, space, r))
                         for h in heads}, SPACES, trials)
    found = {h: found[h] for h in HEADS if h in found}  # kept or searched, in one order
    frozen = {h: f["trials"] for h, f in found.items()}
    e2e_study = {h: (lambda space, r, h=h: search.end_to_end(h, best(frozen[h]), list(end_to_end),
                                                            e2e_trials, space, r))
                 for h in END_TO_END_HEADS if h in heads and end_to_end
                 and (e2e_heads is None or h in e2e_heads)}
    for head, study in e2e_study.items():
        print(f"{head}: {e2e_trials} trials end to end at {' '.join(end_to_end)}", flush=True)
        found_e2e[head] = search_widening(study, E2E_SPACE, e2e_trials)
    equal_rounds(found_e2e, e2e_study, {h: E2E_SPACE for h in e2e_study}, e2e_trials,
                 "end-to-end ")
    e2e = {h: f["trials"] for h, f in found_e2e.items()}
    flags = {h: f["flags"] for h, f in found.items()}
    flags_e2e = {h: f["flags"] for h, f in found_e2e.items()}
    lat = search.lat[variants[0]]
    path = S.stage.write(S.run_dir / "protocol.json", {
        "command": command, "validation": S.validation_record(lat),
        "storage": storage if storage != f"sqlite:///{S.run_dir / 'protocol.db'}" else "protocol.db",
        "trials_per_head": trials, "e2e_trials_per_head": e2e_trials if e2e else 0,
        "e2e_heads": list(e2e),
        "trainings_per_trial": seeds, "variants": list(variants), "end_to_end_cuts": list(end_to_end),
        "kept_from_earlier_run": kept,
        "spaces": {h: f["space"] for h, f in found.items()},
        "e2e_spaces": {h: f["space"] for h, f in found_e2e.items()}, "edge": EDGE,
        "widened": {h: f["earlier"] for h, f in found.items() if f["earlier"]},
        "widened_end_to_end": {h: f["earlier"] for h, f in found_e2e.items() if f["earlier"]},
        "frozen": frozen, "end_to_end": e2e,
        "best": {h: best(t)["label"] for h, t in frozen.items()},
        "best_end_to_end": {h: best(t)["label"] for h, t in e2e.items()},
        "flags": {h: f for h, f in flags.items() if f},
        "flags_end_to_end": {h: f for h, f in flags_e2e.items() if f},
        "baseline_test_acc_not_used": S.baseline["metrics"]["test_acc"]})
    rec = read_json(path)
    plots.protocol(rec, path=S.run_dir / "protocol.png")
    for h, t in frozen.items():
        b = best(t)
        print(f"{h}: {b['label']} ({b['objective']:.2f})" + (f"  FLAGGED: {flags[h]}" if flags[h] else ""))
    for h, t in e2e.items():
        b = best(t)
        print(f"{h} end to end: {b['label']} ({b['objective']:.2f})"
              + (f"  FLAGGED: {flags_e2e[h]}" if flags_e2e[h] else ""))
    chosen = chosen_settings(rec["metrics"])
    print(f"for params/{profile}.yaml: " + "; ".join(f"{k}: {v}" for k, v in chosen.items()))
    print(f"written: {P.shown(path)}")
    return path


def main(argv=None) -> None:
    from .sweep import search_arguments

    ap = search_arguments(__doc__.split("\n\n")[0], seeds=2)
    ap.add_argument("--trials", type=int, default=8, help="trials per head, base frozen")
    ap.add_argument("--end-to-end", nargs="*", default=[], metavar="CUT",
                    help="cuts (among --variants) where each head's end-to-end study runs")
    ap.add_argument("--e2e-trials", type=int, default=4, help="trials per head, end to end")
    ap.add_argument("--storage", default=None,
                    help="an Optuna storage URL shared by several machines "
                         "(default: sqlite in the run folder, protocol.db)")
    ap.add_argument("--heads", nargs="+", default=list(HEADS), help=f"a subset of {', '.join(HEADS)}; the others keep their searches as the "
                         f"run's protocol.json recorded them")
    ap.add_argument("--e2e-heads", nargs="+", default=None,
                    help="the heads searched end to end (default: every head that goes end to end)")
    a = ap.parse_args(argv)
    cmd = "python -m vinet_utils.protocol " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    try:
        run(a.profile, a.dataset, a.arch, a.variants, a.seeds, a.val_frac, a.results_dir,
            cmd, a.end_to_end, trials=a.trials, e2e_trials=a.e2e_trials, storage=a.storage,
            heads=a.heads, e2e_heads=a.e2e_heads)
    except ValueError as err:
        raise SystemExit(str(err)) from None


if __name__ == "__main__":
    sys.exit(main())
